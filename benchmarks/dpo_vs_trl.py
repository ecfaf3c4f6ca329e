"""deltapref ``align --loss dpo`` (and DPO+rc) against TRL's DPOTrainer on the same model,
pairs, batch size and hyperparameters, in one session.

Each run is a fresh process (so its peak RSS is its own), repeated; the script prints medians
with min-max, the throughput ratio, a check that both compute the same loss on the same first
batch, and model FLOP utilization against this machine's measured fp32 matmul peak.

    python benchmarks/dpo_vs_trl.py                          # built-in task, small Llama
    python benchmarks/dpo_vs_trl.py --data hh.jsonl.gz --tokenizer gpt2 --hidden 256 --layers 4

TRL runs with ``bf16=False, gradient_checkpointing=False, use_cpu=True`` (its defaults are slow
on a CPU) and a reference model kept in memory (its default); deltapref precomputes reference
log-probs once, and its time includes that pass.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (  # noqa: E402
    benchmark_parser,
    fp32_matmul_peak,
    gpt2_tokenizer,
    hh_like,
    load_pairs,
    peak_rss_mb,
    random_llama,
    run_worker,
    summarize,
)


def training_args(a, output_dir, sampling="sequential"):
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=a.batch_size,
        max_steps=a.pairs // a.batch_size,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=0,
        use_cpu=True,
        dataloader_pin_memory=False,
        train_sampling_strategy=sampling,
    )


def trl_config(a):
    """TRL's DPOConfig with the same hyperparameters as deltapref's run."""
    from trl import DPOConfig

    return DPOConfig(
        **training_args(a, tempfile.mkdtemp()),
        beta=0.1,
        bf16=False,
        gradient_checkpointing=False,
        max_length=a.max_length,
        remove_unused_columns=False,
    )


def worker_trl(a) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
    data = datasets.Dataset.from_json(a.pairs_file)
    config = trl_config(a)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(a.model_dir),
        ref_model=AutoModelForCausalLM.from_pretrained(a.model_dir),
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
    )
    started = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def worker_deltapref(a) -> dict:
    from transformers import TrainingArguments

    from deltapref.policy.commands import AlignConfig, run_policy_training

    config = AlignConfig(
        model=a.model_dir,
        train_data=a.pairs_file,
        loss="dpo",
        beta=0.1,
        coef=a.coef,
        max_length=a.max_length,
        max_prompt_length=a.max_length // 2,
        share_prefix=a.share_prefix,
        ref_batch_size=a.batch_size * 2,
    )
    args = TrainingArguments(**training_args(a, tempfile.mkdtemp(), a.sampling), remove_unused_columns=False)
    summary = run_policy_training(config, args, "dpo")
    return {
        "seconds": summary["reference_seconds"] + summary["train_seconds"],
        "peak_rss_mb": peak_rss_mb(),
        "reference_seconds": summary["reference_seconds"],
    }


def worker_check(a) -> dict:
    """Both trainers' loss on the same first batch, with the policy moved off the reference."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
    from trl import DPOTrainer

    from deltapref.policy.data import PolicyCollator
    from deltapref.policy.reference import add_reference_columns
    from deltapref.policy.trainer import AlignTrainer, LossOptions

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
        options=LossOptions(loss="dpo", beta=0.1),
        data_collator=PolicyCollator(tokenizer.pad_token_id),
    )
    batch = ours.data_collator([ours_rows[i] for i in range(len(ours_rows))])
    with torch.no_grad():
        our_loss = ours.compute_loss(policy, batch).item()
    return {"trl_loss": trl_loss, "deltapref_loss": our_loss}


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=8, max_length=512)
    parser.add_argument("--worker", choices=["trl", "deltapref", "check"])
    parser.add_argument("--model_dir")
    parser.add_argument("--pairs_file")
    parser.add_argument("--coef", default=None)
    parser.add_argument("--sampling", default="sequential", help="train_sampling_strategy of a deltapref worker")
    parser.add_argument("--share_prefix", type=lambda s: s == "true", default=True)
    a = parser.parse_args()
    if a.worker:
        print(json.dumps({"trl": worker_trl, "deltapref": worker_deltapref, "check": worker_check}[a.worker](a)))
        return

    work = Path(tempfile.mkdtemp(prefix="deltapref-bench-"))
    if a.tokenizer == "gpt2":
        tokenizer = gpt2_tokenizer(work / "tokenizer")
    else:
        from deltapref.data.synthetic import build_tokenizer

        tokenizer = build_tokenizer()
    pairs = hh_like(load_pairs(a.data, 100000), tokenizer, a.pairs) if a.hh_like else load_pairs(a.data, a.pairs)
    if len(pairs) < a.pairs:
        raise SystemExit(f"only {len(pairs)} pairs in {a.data}")
    from deltapref.data.tokenization import TokenizationConfig, encode_pair

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
    print(
        f"model: Llama hidden {a.hidden}, {a.layers} layers, vocab {len(tokenizer)}, "
        f"{params / 1e6:.1f}M non-embedding params"
    )
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
    ]
    check = run_worker(__file__, ["--worker", "check"] + common)
    gap = abs(check["trl_loss"] - check["deltapref_loss"])
    print(
        f"same first batch: TRL loss {check['trl_loss']:.6f}, deltapref loss {check['deltapref_loss']:.6f}, "
        f"|diff| {gap:.2e} -> {'OK' if gap < 1e-4 else 'MISMATCH'}"
    )
    runs = {
        "trl DPOTrainer": ["--worker", "trl"],
        "deltapref dpo": ["--worker", "deltapref"],
        "deltapref dpo+rc": ["--worker", "deltapref", "--coef", "difference"],
        "deltapref dpo, no prefix sharing": ["--worker", "deltapref", "--share_prefix", "false"],
        "deltapref dpo, length-grouped": ["--worker", "deltapref", "--sampling", "group_by_length"],
    }
    results = {name: [] for name in runs}
    for _ in range(a.repeats):
        for name, extra in runs.items():  # interleaved so drift hits every peer alike
            results[name].append(run_worker(__file__, extra + common))
    peak = fp32_matmul_peak()
    trl_rate = statistics.median(a.pairs / r["seconds"] for r in results["trl DPOTrainer"])
    print(f"\nmeasured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s; medians of {a.repeats} runs (min, max)")
    for name, rs in results.items():
        rates = [a.pairs / r["seconds"] for r in rs]
        flops = 8 * params * tokens_per_pair  # policy fwd+bwd (6N) + reference fwd (2N) per token, unshared count
        mfu = [rate * flops / peak for rate in rates]
        print(
            f"{name:34s} pairs/s {summarize(rates)}  tokens/s {statistics.median(rates) * tokens_per_pair:.0f}  "
            f"peak RSS MB {summarize([r['peak_rss_mb'] for r in rs])}  MFU {statistics.median(mfu):.1%}  "
            f"ratio vs TRL {statistics.median(rates) / trl_rate:.2f}x"
        )


if __name__ == "__main__":
    main()
