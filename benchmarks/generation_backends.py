"""Completions per second: Hugging Face ``generate`` (deltapref's ``--backend hf``) against a vLLM
engine (``--backend vllm``), same model, prompts, lengths and greedy decoding, in one session.

SmolLM2-135M-Instruct (fp32 on a CPU) completes the 48 shipped HH prompts as chat messages
(examples/data/hh-harmless-48.jsonl), twice over (96), up to 48 new tokens, each backend twice
after a warm-up, one after the other (a live vLLM engine keeps a core busy polling, which would
slow a Hugging Face run beside it); loading (for vLLM: its engine start) is timed apart. Printed: seconds and
completions per second per backend, the ratio, and whether the completions are the same text.
Runs where vLLM imports (scripts/vllm_check.sh --bench).

    python benchmarks/generation_backends.py [REPEATS]
"""

import os
import sys
import time
from pathlib import Path


def timed(run, repeats: int) -> tuple[list[float], list[str]]:
    """Seconds of ``repeats`` runs after a warm-up, and the last run's completions."""
    run()
    seconds = []
    for _ in range(repeats):
        started = time.time()
        out = run()
        seconds.append(time.time() - started)
    return seconds, out


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    # vLLM's CPU KV cache in GiB: left to vLLM, a first run with a Hugging Face model beside it ran
    # this 24 GiB machine out of memory
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from deltapref.models.loading import load_causal_lm, load_tokenizer
    from deltapref.models.names import resolve
    from deltapref.policy.generation import generate_completions, read_prompts
    from deltapref.policy.vllm_backend import load_engine, vllm_completions

    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    shipped = Path(__file__).resolve().parent.parent / "examples" / "data" / "hh-harmless-48.jsonl"
    prompts = [row["prompt"] for row in read_prompts(str(shipped), format="hh-chat")] * 2
    model = resolve("smollm2")
    tokenizer = load_tokenizer(model)
    options = dict(max_new_tokens=48, temperature=0.0, max_prompt_length=192, stops=[], progress=False)

    seconds, outputs = {}, {}
    started = time.time()
    policy = load_causal_lm(model, tokenizer)
    load = {"hf": time.time() - started}
    hf = lambda: generate_completions(policy, tokenizer, prompts, batch_size=32, **options)  # noqa: E731
    seconds["hf"], outputs["hf"] = timed(hf, repeats)
    print(f"hf: {seconds['hf']} s", flush=True)
    del policy
    started = time.time()
    engine = load_engine(model, max_model_len=256)  # its processes poll a core while alive: started after hf
    load["vllm"] = time.time() - started
    vllm = lambda: vllm_completions(engine, tokenizer, prompts, **options)  # noqa: E731
    seconds["vllm"], outputs["vllm"] = timed(vllm, repeats)
    print(f"{len(prompts)} prompts, up to 48 new tokens, greedy, fp32, {os.cpu_count()} CPU threads")
    print(f"load: hf {load['hf']:.1f}s, vllm {load['vllm']:.1f}s (engine start)")
    for name in seconds:
        best = min(seconds[name])
        print(f"{name:5s} {' '.join(f'{s:.1f}' for s in seconds[name])} s -> {len(prompts) / best:.2f} completions/s")
    print(f"vllm / hf speed: {min(seconds['hf']) / min(seconds['vllm']):.2f}x")
    same = sum(a == b for a, b in zip(outputs["hf"], outputs["vllm"]))
    print(f"identical completions: {same} / {len(prompts)}")
