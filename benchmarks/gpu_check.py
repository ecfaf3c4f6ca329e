"""The prepared accelerator check: one script, one NVIDIA GPU, about 8 minutes, no network.

    python benchmarks/gpu_check.py --output gpu-check             # on the GPU machine
    python benchmarks/gpu_check.py --dry_run --output gpu-check-dry  # CPU, tiny sizes, fp32 (tested in CI)

It prints, and writes as ``gpu_check.json`` + ``gpu_check.md`` under ``--output`` after every
check (so a run cut short keeps what it measured):
1. the environment: GPU, torch, CUDA, library versions, which of flash-attn / deepspeed / vllm /
   trl / datasets import;
2. per attention implementation (eager, sdpa, flex_attention, flash_attention_2: those that load),
   response log-probs of shared-prefix and of packed batches against the unshared (padded)
   computation, and against eager, in fp32 and (GPU) bf16; an implementation that cannot serve
   their block masks is reported ``unsupported`` with its error;
3. bf16 DPO, DPO+rc and DRDO steps through ``align`` (finite losses);
4. deltapref DPO against TRL's DPOTrainer (both reference modes) in pairs/s on SmolLM2-135M's and
   a ~1B Llama's architecture with random weights (the real weights are not needed for timing);
5. one FSDP and one DeepSpeed ZeRO-2 ``align`` step (one process each) where they import;
6. a whole small run (benchmarks/gpu_whole_run.py): SFT -> reward model and oracle -> score ->
   DPO+rc -> DRDO -> generate (vLLM where it imports), a timed row per stage; with two GPUs the
   DPO+rc stage again under FSDP2.

What is missing is skipped with a line saying so; the exit status is 1 if any check failed.
The GPU machine lent to this project has no datasets / TRL: carry their wheels (fetched here with
``pip download --no-deps --dest wheels datasets trl dill multiprocess xxhash``; pyarrow is a binary
wheel of ~40 MB, inside the 64 MiB carry limit) and ``pip install --no-index wheels/*`` there.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from gpu_whole_run import whole_run  # noqa: E402

from deltapref.artifacts.outputs import write_text  # noqa: E402
from deltapref.columns import DIFF, ORACLE_REWARD  # noqa: E402
from deltapref.report.text import markdown_table  # noqa: E402

# Architectures timed with random weights: SmolLM2-135M's config and a Llama-3.2-1B-like one.
ARCHITECTURES = {
    "smollm2-135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True),
    "llama-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True),
}  # fmt: skip
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=512, tie_word_embeddings=True)  # fmt: skip
ATTENTION = ("eager", "sdpa", "flex_attention", "flash_attention_2")
OPTIONAL = ("flash_attn", "deepspeed", "vllm", "trl", "datasets", "peft", "accelerate", "scipy")
SIZES = {  # pairs, batch, steps, prompt words, response words (± a quarter)
    "gpu": dict(pairs=64, batch=8, steps=8, prompt=160, response=110, repeats=2),
    "dry": dict(pairs=8, batch=4, steps=2, prompt=12, response=8, repeats=1),
}


class Report:
    """Checks in order, each ok / failed / skipped / unsupported with a detail and numbers;
    rewritten (atomically) after each one."""

    def __init__(self, output: Path, budget_s: float):
        self.output, self.deadline, self.rows = output, time.time() + budget_s, []
        output.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, check, *args) -> dict:
        started = time.time()
        if started > self.deadline:
            row = {"status": "skipped", "detail": "out of the time budget"}
        else:
            try:
                row = check(*args)
            except Exception as error:  # a check that breaks is reported, the others still run
                last = traceback.format_exception_only(type(error), error)[-1].strip()
                row = {"status": "failed", "detail": last[:500]}
        row = {"check": name, **row, "seconds": round(time.time() - started, 2)}
        self.rows.append(row)
        numbers = _numbers(row)
        print(f"[{row['status']:>11}] {name}: {row.get('detail', '')} {json.dumps(numbers) if numbers else ''}")
        write_text(self.output / "gpu_check.json", json.dumps(self.rows, indent=2) + "\n")
        write_text(self.output / "gpu_check.md", self.markdown() + "\n")
        return row

    def markdown(self) -> str:
        rows = [
            [
                r["check"],
                r["status"],
                r.get("detail", ""),
                ", ".join(f"{k} {v}" for k, v in _numbers(r).items()),
                r["seconds"],
            ]
            for r in self.rows
        ]
        return "\n".join(markdown_table(["check", "status", "detail", "numbers", "s"], rows))


def _numbers(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("check", "status", "detail", "seconds")}


def _losses_row(run: dict) -> dict:
    finite = bool(run["losses"]) and all(math.isfinite(x) for x in run["losses"])
    return {"status": "ok" if finite else "failed", "detail": f"losses {[round(x, 4) for x in run['losses']]}"}


def environment() -> dict:
    import importlib.metadata as metadata
    import importlib.util

    found = {m: importlib.util.find_spec(m) is not None for m in OPTIONAL}
    versions = {}
    for dist in ("torch", "transformers", "accelerate", "peft", "datasets", "trl", "deepspeed", "flash-attn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else "none"
    detail = f"GPU {gpu}, CUDA {torch.version.cuda}, " + ", ".join(f"{k} {v}" for k, v in versions.items())
    missing = [m for m, ok in found.items() if not ok]
    return {
        "status": "ok",
        "detail": detail + (f"; not importable: {', '.join(missing)}" if missing else ""),
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "cpu_threads": torch.get_num_threads(),
    }


def word_tokenizer(directory: Path):
    from deltapref.data.synthetic import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 4096
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def random_model(architecture: dict, tokenizer, directory: Path, device: str, init_std: float = 0.02) -> Path:
    """A Llama of ``architecture`` with random weights (initialized on ``device``), saved. At the
    default init its log-probs barely depend on the context; the attention check uses 0.5."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        **architecture,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=init_std,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def pairs_file(tokenizer, size: dict, path: Path) -> Path:
    """Random word sequences at the requested lengths, with the columns DPO+rc and DRDO read;
    responses start with a space, so TRL's prompt + completion splits at a word boundary."""
    rng = random.Random(0)
    words = [w for w in tokenizer.get_vocab() if not w.startswith("<")]

    def text(mean: int) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(mean - mean // 4, mean + mean // 4)))

    rows = []
    for _ in range(size["pairs"]):
        rows.append({"prompt": text(size["prompt"]), "chosen": " " + text(size["response"]),
                     "rejected": " " + text(size["response"]), DIFF: rng.gauss(0, 1),
                     ORACLE_REWARD[0]: rng.gauss(0.5, 1), ORACLE_REWARD[1]: rng.gauss(0, 1)})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def attention_check(impl: str, model_dir: Path, size: dict, device: str, dtype: str) -> dict:
    """``attention_worker`` in its own process (an attention kernel may crash the process)."""
    command = [sys.executable, __file__, "--worker", "attention", "--impl", impl, "--dtype", dtype]
    done = subprocess.run(
        command + ["--model_dir", str(model_dir), "--device", device, "--batch", str(size["batch"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return lines[-1]
    why = f"exit {done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1][:200]}"
    if any(line.get("padded") for line in lines):
        return {"status": "unsupported", "detail": f"a block mask (shared prefix or packing) crashes it ({why})"}
    return {"status": "skipped", "detail": f"{impl} does not run here even unshared ({why})"}


def attention_worker(impl: str, model_dir: Path, device: str, dtype_name: str, batch: int) -> dict:
    """Shared-prefix and packed vs unshared response log-probs with ``impl``, all against eager fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from deltapref.data.loading import load_preferences
    from deltapref.data.tokenization import TokenizationConfig
    from deltapref.forward.logprobs import batch_logps
    from deltapref.policy.data import PolicyCollator, tokenize_pairs

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    data, _ = load_preferences(str(model_dir.parent / "pairs.jsonl"))
    rows = list(tokenize_pairs(data.select(range(batch)), tokenizer, TokenizationConfig(4096, 2048)))
    dtype = getattr(torch, dtype_name)

    @functools.cache
    def model(implementation, kind):
        loaded = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation=implementation, dtype=kind)
        return loaded.to(device).eval()

    def logps(implementation, share, kind, pack=False):
        batch = PolicyCollator(tokenizer.pad_token_id, share_prefix=share, pack=pack)(rows)
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            return batch_logps(model(implementation, kind), batch)[0].float().cpu()

    try:
        padded = logps(impl, False, dtype)
    except Exception as error:
        return {"status": "skipped", "detail": f"{impl} does not load or run here: {str(error).splitlines()[0][:200]}"}
    print(json.dumps({"padded": True}), flush=True)
    reference = logps("eager", False, torch.float32)
    try:
        shared = logps(impl, True, dtype)
        packed = logps(impl, True, dtype, pack=True)
    except Exception as error:
        return {"status": "unsupported", "detail": f"block mask: {str(error).splitlines()[0][:200]}"}
    scale = float(reference.abs().mean())
    tolerance = 1e-4 * scale if dtype == torch.float32 else 2e-2 * scale
    gaps = {
        "shared_vs_padded": float((shared - padded).abs().max()),
        "packed_vs_padded": float((packed - padded).abs().max()),
        "vs_eager_fp32": float((shared - reference).abs().max()),
        "padded_vs_eager_fp32": float((padded - reference).abs().max()),
    }
    ok = max(gaps.values()) <= tolerance
    detail = f"tolerance {tolerance:.2e} (mean |log p| sum {scale:.1f})"
    return {"status": "ok" if ok else "failed", "detail": detail, **{k: f"{v:.2e}" for k, v in gaps.items()}}


def trainer_kwargs(size: dict, device: str, **overrides) -> dict:
    """TrainingArguments both peers share: constant rate, no checkpoints, bf16 on a GPU."""
    kwargs = dict(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=size["batch"], learning_rate=1e-5,
                  max_steps=size["steps"], lr_scheduler_type="constant", logging_steps=1, save_strategy="no",
                  report_to="none", disable_tqdm=True, seed=0, use_cpu=device == "cpu", bf16=device == "cuda",
                  remove_unused_columns=False, dataloader_pin_memory=False)  # fmt: skip
    return {**kwargs, **overrides}


def align_run(model_dir: Path, size: dict, device: str, loss: str, coef: str | None = None, **overrides) -> dict:
    from transformers import TrainingArguments

    from deltapref.stages.align import AlignConfig, train_aligned

    config = AlignConfig(model=str(model_dir), train_data=str(model_dir.parent / "pairs.jsonl"), loss=loss, coef=coef,
                         max_length=4096, max_prompt_length=2048,
                         dtype="bfloat16" if device == "cuda" else "float32")  # fmt: skip
    started = time.perf_counter()
    summary = train_aligned(config, TrainingArguments(**trainer_kwargs(size, device, **overrides)))
    losses = [entry["loss"] for entry in summary["log_history"] if "loss" in entry]
    return {"seconds": time.perf_counter() - started, "losses": losses}


def step_check(model_dir: Path, size: dict, device: str, loss: str, coef: str | None) -> dict:
    return _losses_row(align_run(model_dir, size, device, loss, coef))


def trl_run(model_dir: Path, size: dict, device: str, precompute: bool) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = DPOConfig(**trainer_kwargs(size, device, logging_steps=10**6), beta=0.1, max_length=4096,
                       gradient_checkpointing=False, precompute_ref_log_probs=precompute)  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    reference = None if precompute else AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    data = datasets.Dataset.from_json(str(model_dir.parent / "pairs.jsonl")).select_columns(
        ["prompt", "chosen", "rejected"]
    )
    started = time.perf_counter()
    DPOTrainer(model=model, ref_model=reference, args=config, train_dataset=data, processing_class=tokenizer).train()
    return {"seconds": time.perf_counter() - started}


def timing_check(model_dir: Path, size: dict, device: str) -> dict:
    """Pairs/s, from trainer construction (reference passes count), interleaved repeats."""
    import importlib.util
    import statistics

    peers = {"deltapref dpo": lambda: align_run(model_dir, size, device, "dpo", logging_steps=10**6)}
    if importlib.util.find_spec("trl") and importlib.util.find_spec("datasets"):
        peers["trl, reference in memory"] = lambda: trl_run(model_dir, size, device, False)
        peers["trl, precomputed reference"] = lambda: trl_run(model_dir, size, device, True)
    seconds = {name: [] for name in peers}
    for _ in range(size["repeats"]):
        for name, run in peers.items():
            if device == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(run()["seconds"])
    pairs = size["steps"] * size["batch"]
    rates = {name: pairs / statistics.median(values) for name, values in seconds.items()}
    numbers = {f"{name} pairs/s": f"{rate:.2f}" for name, rate in rates.items()}
    trl = [rate for name, rate in rates.items() if name.startswith("trl")]
    detail = (
        f"vs TRL's faster mode {rates['deltapref dpo'] / max(trl):.2f}x"
        if trl
        else "TRL not importable: deltapref only"
    )
    return {"status": "ok", "detail": f"{detail}, median of {size['repeats']}", **numbers}


def sharded_check(kind: str, model_dir: Path, size: dict, device: str) -> dict:
    """One ``align`` run under FSDP or DeepSpeed ZeRO-2 in a fresh single-process group."""
    import importlib.util

    if kind == "deepspeed" and not importlib.util.find_spec("deepspeed"):
        return {"status": "skipped", "detail": "deepspeed does not import"}
    if device != "cuda":
        return {"status": "skipped", "detail": f"{kind} is checked on a GPU only"}
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + random.randint(0, 999)),
               RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")  # fmt: skip
    command = [sys.executable, __file__, "--worker", kind, "--model_dir", str(model_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {
            "status": "failed",
            "detail": done.stderr.strip().splitlines()[-1][:400] if done.stderr else "no output",
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def sharded_worker(kind: str, model_dir: Path) -> dict:
    size = dict(SIZES["gpu"], steps=2)
    if kind == "fsdp":
        overrides = {"fsdp": "full_shard", "fsdp_config": {"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}}
    else:
        zero2 = {"zero_optimization": {"stage": 2}, "bf16": {"enabled": True}}
        overrides = {
            "deepspeed": {**zero2, "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto"}
        }
    return _losses_row(align_run(model_dir, size, "cuda", "dpo", **overrides))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry_run", action="store_true", help="CPU, a tiny model, fp32: checks the script itself")
    parser.add_argument("--output", default="gpu-check", help="directory for gpu_check.json and gpu_check.md")
    parser.add_argument(
        "--budget_s", type=float, default=450, help="checks starting after this many seconds are skipped"
    )
    parser.add_argument("--worker", choices=["attention", "fsdp", "deepspeed"], help=argparse.SUPPRESS)
    for hidden in ("--model_dir", "--impl", "--dtype", "--device", "--batch"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker == "attention":
        print(json.dumps(attention_worker(a.impl, Path(a.model_dir), a.device, a.dtype, int(a.batch))))
        return 0
    if a.worker:
        print(json.dumps(sharded_worker(a.worker, Path(a.model_dir))))
        return 0
    device = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    if device == "cpu" and not a.dry_run:
        print("no CUDA device: run with --dry_run on a CPU")
        return 2
    size = SIZES["dry" if a.dry_run else "gpu"]
    architectures = {"tiny": TINY} if a.dry_run else ARCHITECTURES
    report = Report(Path(a.output), a.budget_s)
    report.run("environment", environment)
    work = Path(tempfile.mkdtemp(prefix="deltapref-gpu-check-"))
    tokenizer = word_tokenizer(work / "tokenizer")
    models = {}
    for name, architecture in architectures.items():
        (work / name).mkdir()
        pairs_file(tokenizer, size, work / name / "pairs.jsonl")
        models[name] = random_model(architecture, tokenizer, work / name / "model", device)
    first = next(iter(models.values()))
    peaked = random_model(next(iter(architectures.values())), tokenizer, first.parent / "peaked", device, 0.5)
    for impl in ATTENTION:
        for dtype in ["float32"] + (["bfloat16"] if device == "cuda" else []):
            report.run(f"attention {impl} {dtype}", attention_check, impl, peaked, size, device, dtype)
    for loss, coef in (("dpo", None), ("dpo", "difference"), ("drdo", None)):
        report.run(f"step {loss}{'+rc' if coef else ''}", step_check, first, size, device, loss, coef)
    for name, model_dir in models.items():
        report.run(f"timing {name}", timing_check, model_dir, size, device)
    for kind in ("fsdp", "deepspeed"):
        report.run(f"{kind} step", sharded_check, kind, first, size, device)
    whole_run(report, first, size, device)
    failed = [row["check"] for row in report.rows if row["status"] == "failed"]
    print(
        f"wrote {report.output / 'gpu_check.json'} and gpu_check.md; "
        + (f"failed: {failed}" if failed else "no check failed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
