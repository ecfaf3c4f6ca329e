"""How deltapref's data path grows with the number of pairs: 10k, 100k and 1M pairs of HH-RLHF
lengths, each command timed in a fresh process with its own peak RSS.

    python benchmarks/million_pairs.py --sizes 10000,100000,1000000 --work runs/million

Rows are the real HH-RLHF harmless-base pairs, repeated with a numbered prompt prefix (every row
distinct, HH lengths exactly). Measured per size:
- ``data validate``: read, normalize and check every row;
- ``align`` up to its first step: loading, checks and tokenization of every pair, one DPO step
  of a tiny Llama (hidden 32, 1 layer, GPT-2 vocabulary) and its save; the data carries
  ``ref_logp_*`` columns, so no reference pass runs (that pass is a forward over every pair:
  linear by construction, and the bulk of a real run's time);
- ``score --reference_model`` (same tiny model, chunks of 1,000): interrupted (SIGINT, as Ctrl-C)
  once two chunks are written, then rerun, which resumes and is interrupted after one more chunk.
Each prints seconds, peak RSS and both per row; the fixed cost (start-up, the model, the chunks
scored) dominates at 10k, so a linear command shows a constant per-row cost from 100k to 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import gpt2_tokenizer, load_pairs, random_llama  # noqa: E402

HH = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz")
CHUNK = 1000


def write_pairs(pairs: list[dict], n: int, path: Path, reference: bool) -> None:
    """``n`` rows cycling through ``pairs``, each prompt numbered; with ``reference``, seeded
    ``ref_logp_chosen``/``ref_logp_rejected`` columns (so align skips its reference pass)."""
    draw = random.Random(n)
    with path.open("w") as out:
        for i in range(n):
            pair = pairs[i % len(pairs)]
            row = {"prompt": f"[{i}] {pair['prompt']}", "chosen": pair["chosen"], "rejected": pair["rejected"]}
            if reference:
                row["ref_logp_chosen"], row["ref_logp_rejected"] = draw.uniform(-300, -50), draw.uniform(-300, -50)
            out.write(json.dumps(row) + "\n")


def measured(argv: list[str], log: Path, stop_when=None) -> dict:
    """Run ``deltapref ARGV`` in a fresh process (output to ``log``): wall seconds and the peak
    RSS of that process alone (``wait4``). With ``stop_when`` (a predicate polled every 0.2 s) the
    process gets SIGINT, as from Ctrl-C, once it holds."""
    start = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "deltapref", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores it
        )
    interrupted = False
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if stop_when is not None and not interrupted and stop_when():
            child.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 and not interrupted:
        raise RuntimeError(f"deltapref {' '.join(argv)} failed; see {log}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "interrupted": interrupted}


def parts(work: Path, n: int) -> Path:
    return work / f"scored-{n}.jsonl.parts"


def clear_scored(work: Path, n: int) -> None:
    """Remove what an interrupted ``score`` left (its partial work and its claim on the output)."""
    for path in work.glob(f"scored-{n}.jsonl*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def measure_size(n: int, pairs: list[dict], work: Path, report) -> dict:
    plain, with_reference = work / f"pairs-{n}.jsonl", work / f"pairs-{n}-ref.jsonl"
    if not plain.exists():
        write_pairs(pairs, n, plain, reference=False)
        write_pairs(pairs, n, with_reference, reference=True)
    model = str(work / "tiny")
    shutil.rmtree(work / f"align-{n}", ignore_errors=True)
    results = {}

    def step(name: str, argv: list[str], log_name: str, stop_when=None) -> None:
        results[name] = measured(argv, work / f"{log_name}-{n}.log", stop_when)
        report(name, results[name])

    step("validate", ["data", "validate", "--input", str(plain)], "validate")
    align = ["align", "--model", model, "--train_data", str(with_reference), "--loss", "dpo", "--max_steps", "1"]
    align += ["--per_device_train_batch_size", "8", "--output_dir", str(work / f"align-{n}")]
    step("align to first step", align + ["--use_cpu", "true", "--report_to", "none"], "align")
    shutil.rmtree(work / f"align-{n}", ignore_errors=True)
    clear_scored(work, n)
    score = ["score", "--input", str(plain), "--output", str(work / f"scored-{n}.jsonl")]
    score += ["--reference_model", model, "--chunk_size", str(CHUNK)]
    written = lambda k: lambda: len(list(parts(work, n).glob("part-*.jsonl"))) >= k  # noqa: E731
    step("score, 2 chunks", score, "score", stop_when=written(2))
    step("score resumed, +1 chunk", score, "resume", stop_when=written(3))
    clear_scored(work, n)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--data", default=HH, help="HH-RLHF JSONL(.gz) whose pairs are repeated")
    parser.add_argument("--work", default="runs/million", help="folder for the generated data and runs")
    parser.add_argument("--table_only", action="store_true", help="print the table of WORK/results.json, run nothing")
    args = parser.parse_args()
    work = Path(args.work)
    if args.table_only:
        return print_table(json.loads((work / "results.json").read_text()))
    work.mkdir(parents=True, exist_ok=True)
    pairs = load_pairs(args.data, 10**9)
    if not (work / "tiny").exists():
        tokenizer = gpt2_tokenizer(work / "tokenizer")
        random_llama(tokenizer, hidden=32, layers=1, directory=work / "tiny")
    print(f"{len(pairs)} distinct HH pairs from {args.data}; chunk {CHUNK} rows", flush=True)
    table = {}
    for n in [int(size) for size in args.sizes.split(",")]:
        shown = lambda step, result, n=n: print(row(n, step, result), flush=True)  # noqa: E731
        table[n] = measure_size(n, pairs, work, report=shown)
        (work / "results.json").write_text(json.dumps(table, indent=2))
    print_table(table)


def print_table(table: dict) -> None:
    """Each step's cost per added row between consecutive sizes (seconds and peak RSS of the
    larger minus the smaller, over the rows added): constant when the step grows linearly."""
    sizes = sorted(table, key=int)
    print("\n| step | " + " | ".join(f"{int(n):,} pairs: s / peak MB" for n in sizes), end=" | ")
    print(" | ".join(f"{int(a):,}→{int(b):,}: µs / KB per added row" for a, b in zip(sizes, sizes[1:])) + " |")
    print("|---" * (2 * len(sizes)) + "|")
    for step in table[sizes[0]]:
        cells = [f"{table[n][step]['seconds']:.1f} / {table[n][step]['peak_rss_mb']:,.0f}" for n in sizes]
        for a, b in zip(sizes, sizes[1:]):
            added = int(b) - int(a)
            seconds = (table[b][step]["seconds"] - table[a][step]["seconds"]) / added * 1e6
            memory = (table[b][step]["peak_rss_mb"] - table[a][step]["peak_rss_mb"]) * 1024 / added
            cells.append(f"{seconds:.0f} / {memory:.2f}")
        print(f"| {step} | " + " | ".join(cells) + " |")


def row(n: int, step: str, result: dict) -> str:
    """One line of the table: a step's seconds and peak RSS, in all and per row."""
    return (
        f"{n:>9,} pairs  {step:<24} {result['seconds']:8.1f} s  {result['seconds'] / n * 1e6:8.1f} µs/row  "
        f"peak {result['peak_rss_mb']:8.0f} MB  {result['peak_rss_mb'] * 1024 / n:8.2f} KB/row"
    )


if __name__ == "__main__":
    main()
