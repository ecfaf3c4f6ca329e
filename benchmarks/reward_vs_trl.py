"""deltapref ``train-scorer --kind reward`` against TRL's RewardTrainer: the same MiniLM encoder
(all-MiniLM-L6-v2, 22M), the same pairs, batch size, max length and learning rate, one epoch,
each run a fresh process timed from trainer construction (tokenization included).

    python benchmarks/reward_vs_trl.py --data hh-rlhf/harmless-base-test.jsonl.gz --pairs 240

Only pairs that fit ``--max_length`` untruncated are used (TRL drops longer pairs, deltapref
truncates and keeps them), so both train on the same pairs and tokens; the pairs each kept are
printed. Prints pairs/s and tokens/s, peak RSS, and model FLOP utilization against this
machine's measured fp32 matmul peak (6·N FLOPs per token, forward and backward, N =
non-embedding parameters), i.e. how near the machine's limit each runs.
TRL runs with ``bf16=False, gradient_checkpointing=False, use_cpu=True`` (its defaults are slow on
a CPU) and its default ``disable_dropout=True``; deltapref runs twice, with the encoder's dropout
(its default) and with ``--disable_dropout`` (TRL's setting, the same work).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import benchmark_parser, cpu_trainer_args, fp32_matmul_peak, load_pairs, peak_rss_mb, run_worker, summarize  # noqa: E402


def arguments(a, output_dir: str) -> dict:
    return cpu_trainer_args(output_dir, a.batch_size, 3e-5, num_train_epochs=1)


def worker_trl(a) -> dict:
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from deltapref.models.names import resolve

    directory = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.eos_token = tokenizer.sep_token  # TRL ends completions with eos; a BERT tokenizer has [SEP]
    data = datasets.Dataset.from_json(a.pairs_file)
    started = time.perf_counter()
    model = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=1)
    config = RewardConfig(
        **arguments(a, tempfile.mkdtemp()),
        max_length=a.max_length,
        bf16=False,
        gradient_checkpointing=False,
        remove_unused_columns=True,
    )
    trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    seconds = time.perf_counter() - started
    kept = len(trainer.train_dataset)  # TRL drops pairs longer than max_length (deltapref truncates them)
    tokens = sum(int(batch["attention_mask"].sum()) for batch in trainer.get_train_dataloader())  # as TRL fed them
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "tokens_per_pair": tokens / kept, "pairs": kept}


def worker_deltapref(a) -> dict:
    from transformers import TrainingArguments

    from deltapref.data.scorer_inputs import pointwise_ids
    from deltapref.models.loading import load_tokenizer
    from deltapref.scorers.run import train_one
    from deltapref.stages.train_scorer import TrainScorerConfig

    config = TrainScorerConfig(
        kind="reward",
        model="minilm",
        train_data=a.pairs_file,
        max_length=a.max_length,
        max_prompt_length=a.max_length // 2,
        disable_dropout=a.disable_dropout,
    )
    args = TrainingArguments(**arguments(a, tempfile.mkdtemp()), remove_unused_columns=False)
    started = time.perf_counter()
    train_one(config, args)
    seconds = time.perf_counter() - started
    tokenizer = load_tokenizer("minilm")
    rows = [json.loads(line) for line in open(a.pairs_file)]
    lengths = [
        sum(len(pointwise_ids(tokenizer, r["prompt"], r[k], config.tokenization)[0]) for k in ("chosen", "rejected"))
        for r in rows
    ]
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "tokens_per_pair": statistics.mean(lengths),
        "pairs": len(rows),
    }


def fitting_pairs(source: str, n: int, max_length: int) -> list[dict]:
    """The first ``n`` pairs whose every sequence fits ``max_length`` with room for TRL's specials."""
    from deltapref.config.commands import TokenizationConfig
    from deltapref.data.scorer_inputs import pointwise_ids
    from deltapref.models.loading import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    whole = TokenizationConfig(max_length=10**6, max_prompt_length=10**5)

    def fits(pair):  # untruncated in deltapref (prompt within max_length // 2) and kept by TRL
        ids = [pointwise_ids(tokenizer, pair["prompt"], pair[k], whole) for k in ("chosen", "rejected")]
        return all(len(seq) <= max_length - 8 and start <= max_length // 2 for seq, start in ids)

    kept = [p for p in load_pairs(source, 10 * n) if fits(p)]
    if len(kept) < n:
        raise SystemExit(f"only {len(kept)} pairs of {source} fit --max_length {max_length}")
    return kept[:n]


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=8, max_length=256)
    parser.add_argument("--worker", choices=["trl", "deltapref"])
    parser.add_argument("--pairs_file")
    parser.add_argument("--disable_dropout", action="store_true")
    a = parser.parse_args()
    if a.worker:
        print(json.dumps({"trl": worker_trl, "deltapref": worker_deltapref}[a.worker](a)))
        return
    from transformers import AutoModelForSequenceClassification

    from deltapref.models.names import resolve

    work = Path(tempfile.mkdtemp(prefix="deltapref-bench-"))
    pairs = fitting_pairs(a.data, a.pairs, a.max_length)
    (work / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    model = AutoModelForSequenceClassification.from_pretrained(resolve("minilm"), num_labels=1)
    params = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    print(
        f"model: all-MiniLM-L6-v2, {params / 1e6:.1f}M non-embedding params; data: {a.data}, {len(pairs)} pairs, "
        f"batch {a.batch_size}, max length {a.max_length}, one epoch"
    )
    common = [
        "--pairs_file",
        str(work / "pairs.jsonl"),
        "--batch_size",
        str(a.batch_size),
        "--max_length",
        str(a.max_length),
        "--data",
        a.data,
    ]
    runs = {
        "trl RewardTrainer": ["--worker", "trl"],
        "deltapref train-scorer": ["--worker", "deltapref"],
        "  --disable_dropout": ["--worker", "deltapref", "--disable_dropout"],
    }
    results = {name: [] for name in runs}
    for _ in range(a.repeats):
        for name, extra in runs.items():  # interleaved so drift hits both alike
            results[name].append(run_worker(__file__, extra + common))
    peak = fp32_matmul_peak()

    def tokens_per_second(r):
        return r["pairs"] * r["tokens_per_pair"] / r["seconds"]

    trl_rate = statistics.median(tokens_per_second(r) for r in results["trl RewardTrainer"])
    print(f"measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s; medians of {a.repeats} runs (min, max)")
    for name, rs in results.items():
        rates = [r["pairs"] / r["seconds"] for r in rs]
        speed = statistics.median(tokens_per_second(r) for r in rs)
        tokens = statistics.median(r["tokens_per_pair"] for r in rs)
        print(
            f"{name:24s} trained on {rs[0]['pairs']} pairs, {tokens:.0f} tokens/pair; pairs/s {summarize(rates)}  "
            f"tokens/s {speed:.0f}  peak RSS MB {summarize([r['peak_rss_mb'] for r in rs])}  "
            f"MFU {speed * 6 * params / peak:.1%}  tokens/s vs TRL {speed / trl_rate:.2f}x"
        )


if __name__ == "__main__":
    main()
