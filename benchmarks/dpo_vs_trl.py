"""deltapref ``align --loss dpo`` (and DPO+rc) against TRL's DPOTrainer on the same model,
pairs, batch size and hyperparameters, in one session.

Each run is a fresh process (so its peak RSS is its own), repeated; the script prints medians
with min-max, the throughput ratio, a check that both compute the same loss on the same first
batch, and model FLOP utilization against this machine's measured fp32 matmul peak.

    python benchmarks/dpo_vs_trl.py                          # built-in task, small Llama
    python benchmarks/dpo_vs_trl.py --data hh.jsonl.gz --tokenizer gpt2 --hidden 256 --layers 4
    python benchmarks/dpo_vs_trl.py --data hh.jsonl.gz --model smollm2 [--lora_r 16]   # the real SmolLM2-135M

TRL runs with ``bf16=False, gradient_checkpointing=False, use_cpu=True`` (its defaults are slow
on a CPU) in both of its modes: a reference model kept in memory (its default) and
``precompute_ref_log_probs=True``; deltapref precomputes reference log-probs once. Every run is
timed from trainer construction, so each precompute counts. With ``--lora_r`` both train LoRA
adapters and the reference is the adapter switched off. TRL also runs once with the allocator
setting deltapref makes on a CPU (``deltapref.training.host_memory``) and deltapref once without it; TRL
with ``padding_free=True`` runs where the installed TRL keeps that option on (1.16 falls back to
padding). MFU is printed by two accountings: 8N per unshared token, and PaLM's with attention and
the LM head on the scored tokens added.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    benchmark_parser,
    cpu_trainer_args,
    fp32_matmul_peak,
    gpt2_tokenizer,
    hh_like,
    load_pairs,
    peak_rss_mb,
    random_llama,
    run_worker,
    summarize,
)

MAIN = ("deltapref dpo", "deltapref dpo, packed", "deltapref dpo, allocator untouched")  # --main_only, besides TRL


def training_args(a, output_dir, sampling="sequential"):
    return cpu_trainer_args(
        output_dir, a.batch_size, 1e-5, max_steps=a.pairs // a.batch_size, train_sampling_strategy=sampling
    )


def trl_config(a, precompute: bool = False, padding_free: bool = False):
    """TRL's DPOConfig with the same hyperparameters as deltapref's run."""
    from trl import DPOConfig

    return DPOConfig(
        **training_args(a, tempfile.mkdtemp()),
        beta=0.1,
        bf16=False,
        gradient_checkpointing=False,
        max_length=a.max_length,
        remove_unused_columns=False,
        precompute_ref_log_probs=precompute,
        **({"padding_free": True} if padding_free else {}),
    )


def trl_padding_free(a, **trainer_kwargs) -> bool:
    """Whether the installed TRL runs DPO padding-free when asked (it may accept the option and
    fall back to padding, as TRL 1.16 does)."""
    import dataclasses

    from trl import DPOConfig, DPOTrainer

    if "padding_free" not in {f.name for f in dataclasses.fields(DPOConfig)}:
        return False
    return bool(getattr(DPOTrainer(args=trl_config(a, padding_free=True), **trainer_kwargs), "padding_free", False))


def lora_config(a):
    from peft import LoraConfig

    return LoraConfig(r=a.lora_r, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def worker_trl(a) -> dict:
    import datasets

    if a.keep_freed_memory:  # the allocator setting deltapref makes on a CPU, for TRL too
        from deltapref.training.host_memory import keep_freed_memory

        keep_freed_memory()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
    data = datasets.Dataset.from_json(a.pairs_file)
    config = trl_config(a, precompute=a.precompute, padding_free=a.padding_free)
    model = AutoModelForCausalLM.from_pretrained(a.model_dir)
    reference = None if a.lora_r else AutoModelForCausalLM.from_pretrained(a.model_dir)
    started = time.perf_counter()
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(a) if a.lora_r else None,
    )
    trainer.train()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def worker_deltapref(a) -> dict:
    from transformers import TrainingArguments

    from deltapref.training.host_memory import OPT_OUT

    if not a.keep_freed_memory:
        os.environ[OPT_OUT] = "0"

    from deltapref.stages.align import AlignConfig, train_aligned

    config = AlignConfig(
        model=a.model_dir,
        train_data=a.pairs_file,
        loss="dpo",
        beta=0.1,
        coef=a.coef,
        max_length=a.max_length,
        max_prompt_length=a.max_length // 2,
        share_prefix=a.share_prefix,
        pack=a.pack,
        ref_batch_size=a.batch_size * 2,
        lora_r=a.lora_r,
    )
    args = TrainingArguments(**training_args(a, tempfile.mkdtemp(), a.sampling), remove_unused_columns=False)
    started = time.perf_counter()
    summary = train_aligned(config, args)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
        "reference_seconds": summary["reference_seconds"],
    }


def worker_check(a) -> dict:
    """Both trainers' loss on the same first batch, with the policy moved off the reference."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
    from trl import DPOTrainer

    from deltapref.objectives import PolicyLossOptions
    from deltapref.policy.data import PolicyCollator
    from deltapref.policy.reference import add_reference_columns
    from deltapref.policy.trainer import AlignTrainer

    tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
    reference = AutoModelForCausalLM.from_pretrained(a.model_dir)
    policy = AutoModelForCausalLM.from_pretrained(a.model_dir)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    config = trl_config(a)
    trl = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=config,
        train_dataset=datasets.Dataset.from_json(a.pairs_file),
        processing_class=tokenizer,
    )
    rows = trl.train_dataset.select(range(a.batch_size))
    trl_batch = trl._prepare_inputs(trl.data_collator([rows[i] for i in range(len(rows))]))
    policy.eval()
    with torch.no_grad():
        trl_loss = trl.compute_loss(policy, trl_batch).item()
    ours_rows = add_reference_columns(rows, reference, tokenizer.pad_token_id)
    ours = AlignTrainer(
        model=policy,
        args=TrainingArguments(
            output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, remove_unused_columns=False
        ),
        options=PolicyLossOptions(loss="dpo", beta=0.1),
        data_collator=PolicyCollator(tokenizer.pad_token_id),
    )
    batch = ours.data_collator([ours_rows[i] for i in range(len(ours_rows))])
    with torch.no_grad():
        our_loss = ours.compute_loss(policy, batch).item()
    padding_free = trl_padding_free(
        a, model=policy, ref_model=reference, train_dataset=trl.train_dataset, processing_class=tokenizer
    )
    return {"trl_loss": trl_loss, "deltapref_loss": our_loss, "trl_padding_free": padding_free}


def extra_flops(config, pair: dict) -> float:
    """A pair's FLOPs beyond 8N per token (policy fwd+bwd, reference fwd), PaLM's accounting
    (Chowdhery et al. 2022, app. B): attention scores and values, 4·L·d·S per token and pass of a
    sequence of S tokens (×3 for fwd+bwd), and the LM head on the tokens it scores, 2·V·d each."""
    prompt = len(pair["prompt_ids"])
    sequences = [prompt + len(pair["chosen_ids"]), prompt + len(pair["rejected_ids"])]
    width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    attention = 4 * config.num_hidden_layers * width * sum(s * s for s in sequences)
    head = 2 * config.vocab_size * config.hidden_size * (len(pair["chosen_ids"]) + len(pair["rejected_ids"]))
    return 4 * (attention + head)  # policy fwd + bwd (3 passes' worth) and the reference fwd (1)


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=8, max_length=512)
    parser.add_argument("--worker", choices=["trl", "deltapref", "check"])
    parser.add_argument("--model_dir")
    parser.add_argument("--pairs_file")
    parser.add_argument("--coef", default=None)
    parser.add_argument("--sampling", default="sequential", help="train_sampling_strategy of a deltapref worker")
    parser.add_argument("--share_prefix", type=lambda s: s == "true", default=True)
    parser.add_argument("--pack", action="store_true", help="deltapref: pack sequences into rows (block mask)")
    parser.add_argument("--precompute", action="store_true", help="a TRL worker with precompute_ref_log_probs")
    parser.add_argument("--padding_free", action="store_true", help="a TRL worker with padding_free=True")
    parser.add_argument(
        "--keep_freed_memory",
        type=lambda s: s == "true",
        default=None,
        help="glibc keeps freed memory (deltapref.training.host_memory): deltapref's default on a CPU, off for TRL",
    )
    parser.add_argument("--model", default="random", help="random (a Llama of --hidden/--layers) or smollm2")
    parser.add_argument("--lora_r", type=int, default=0, help="LoRA rank for both trainers (0: full fine-tune)")
    parser.add_argument("--main_only", action="store_true", help="only TRL's two modes and deltapref dpo (packed too)")
    a = parser.parse_args()
    if a.worker:
        if a.keep_freed_memory is None:
            a.keep_freed_memory = a.worker == "deltapref"
        print(json.dumps({"trl": worker_trl, "deltapref": worker_deltapref, "check": worker_check}[a.worker](a)))
        return

    work = Path(tempfile.mkdtemp(prefix="deltapref-bench-"))
    if a.model == "smollm2":
        from deltapref.models.loading import load_tokenizer
        from deltapref.models.names import resolve

        tokenizer = load_tokenizer("smollm2")
    elif a.tokenizer == "gpt2":
        tokenizer = gpt2_tokenizer(work / "tokenizer")
    else:
        from deltapref.data.synthetic import build_tokenizer

        tokenizer = build_tokenizer()
    pairs = hh_like(load_pairs(a.data, 100000), tokenizer, a.pairs) if a.hh_like else load_pairs(a.data, a.pairs)
    if len(pairs) < a.pairs:
        raise SystemExit(f"only {len(pairs)} pairs in {a.data}")
    from deltapref.data.tokenization import TokenizationConfig, encode_pair

    if a.model == "smollm2":
        from transformers import AutoModelForCausalLM

        (work / "model").symlink_to(resolve("smollm2"), target_is_directory=True)
        model = AutoModelForCausalLM.from_pretrained(str(work / "model"))
    else:
        model = random_llama(tokenizer, a.hidden, a.layers, work / "model")
    scored = []
    for pair in pairs:  # a coefficient column so DPO+rc runs on the same file
        scored.append(dict(pair, diff=float(len(pair["chosen"]) - len(pair["rejected"])) / 100))
    (work / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored))
    lengths = [encode_pair(tokenizer, p, TokenizationConfig(a.max_length, a.max_length // 2)) for p in pairs]
    tokens_per_pair = statistics.mean(
        2 * len(x["prompt_ids"]) + len(x["chosen_ids"]) + len(x["rejected_ids"]) for x in lengths
    )
    params = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    body_flops = 8 * params * tokens_per_pair  # policy fwd+bwd (6N) + reference fwd (2N) per token, unshared
    full_flops = body_flops + statistics.mean(extra_flops(model.config, x) for x in lengths)
    name = "SmolLM2-135M-Instruct" if a.model == "smollm2" else f"Llama hidden {a.hidden}, {a.layers} layers"
    lora = f", LoRA r={a.lora_r}" if a.lora_r else ", full fine-tune"
    print(f"model: {name}, vocab {len(tokenizer)}, {params / 1e6:.1f}M non-embedding params{lora}")
    print(
        f"data: {a.data}, {a.pairs} pairs, batch {a.batch_size}; "
        f"mean tokens per pair (prompt twice) {tokens_per_pair:.0f}; "
        f"prompt {statistics.mean(len(x['prompt_ids']) for x in lengths):.0f}, "
        f"chosen {statistics.mean(len(x['chosen_ids']) for x in lengths):.0f}, "
        f"rejected {statistics.mean(len(x['rejected_ids']) for x in lengths):.0f}"
    )
    common = [
        "--model_dir",
        str(work / "model"),
        "--pairs_file",
        str(work / "pairs.jsonl"),
        "--pairs",
        str(a.pairs),
        "--batch_size",
        str(a.batch_size),
        "--max_length",
        str(a.max_length),
        "--lora_r",
        str(a.lora_r),
    ]
    check = run_worker(__file__, ["--worker", "check"] + common)
    gap = abs(check["trl_loss"] - check["deltapref_loss"])
    print(
        f"same first batch: TRL loss {check['trl_loss']:.6f}, deltapref loss {check['deltapref_loss']:.6f}, "
        f"|diff| {gap:.2e} -> {'OK' if gap < 1e-4 else 'MISMATCH'}"
    )
    runs = {
        "trl DPOTrainer": ["--worker", "trl"],
        "trl DPOTrainer, precomputed ref": ["--worker", "trl", "--precompute"],
        "trl, precomputed ref, freed memory kept": ["--worker", "trl", "--precompute", "--keep_freed_memory", "true"],
        "deltapref dpo": ["--worker", "deltapref"],
        "deltapref dpo, allocator untouched": ["--worker", "deltapref", "--keep_freed_memory", "false"],
        "deltapref dpo+rc": ["--worker", "deltapref", "--coef", "difference"],
        "deltapref dpo, packed": ["--worker", "deltapref", "--pack"],
        "deltapref dpo, no prefix sharing": ["--worker", "deltapref", "--share_prefix", "false"],
        "deltapref dpo, length-grouped": ["--worker", "deltapref", "--sampling", "group_by_length"],
    }
    import trl

    if check["trl_padding_free"]:
        runs["trl DPOTrainer, padding_free"] = ["--worker", "trl", "--precompute", "--padding_free"]
    else:
        print(f"TRL {trl.__version__} takes padding_free=True but falls back to padding: no padding-free TRL run")
    if a.main_only:
        runs = {name: extra for name, extra in runs.items() if name.startswith("trl") or name in MAIN}
    results = {name: [] for name in runs}
    peak_before = fp32_matmul_peak()
    for _ in range(a.repeats):
        for name, extra in runs.items():  # interleaved so drift hits every peer alike
            results[name].append(run_worker(__file__, extra + common))
    peak = max(peak_before, fp32_matmul_peak())
    medians = {name: statistics.median(a.pairs / r["seconds"] for r in rs) for name, rs in results.items()}
    trl_rate = max(rate for name, rate in medians.items() if name.startswith("trl DPOTrainer"))  # as TRL runs
    trl_best = max(rate for name, rate in medians.items() if name.startswith("trl"))
    print(f"\nmeasured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s; medians of {a.repeats} runs (min, max)")
    for name, rs in results.items():
        rates = [a.pairs / r["seconds"] for r in rs]
        mfu = statistics.median(rate * body_flops / peak for rate in rates)
        full_mfu = statistics.median(rate * full_flops / peak for rate in rates)
        print(
            f"{name:40s} pairs/s {summarize(rates)}  tokens/s {medians[name] * tokens_per_pair:.0f}  "
            f"peak RSS MB {summarize([r['peak_rss_mb'] for r in rs])}  "
            f"MFU {mfu:.1%} (with attention + LM head {full_mfu:.1%})  "
            f"vs TRL's faster mode {medians[name] / trl_rate:.2f}x, vs TRL's best run {medians[name] / trl_best:.2f}x"
        )


if __name__ == "__main__":
    main()
