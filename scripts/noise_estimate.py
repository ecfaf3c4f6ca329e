"""How well `deltapref score` estimates the share of wrong labels: the built-in task at 10/20/30%
flipped labels and at Bradley–Terry temperatures 0.25/0.5/1, several seeds; per cell a
cross-fitted reward model and difference model (the demo's scorer settings) score the training
pairs, and the estimate each gives is held against the true share (pairs whose label disagrees
with the gold reward). Writes ``docs/noise-estimate.json`` and prints the table for RESULTS.md.

    python scripts/noise_estimate.py --seeds 2 --output_dir runs/noise-estimate

Each (condition, seed) is a folder of its own, kept: a rerun skips cells already done."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import deltapref
from deltapref.coefficients import GOLD, deltas
from deltapref.evaluation.label_noise import estimate_label_noise
from deltapref.models.provenance import read_meta
from deltapref.recipes.demo import LENGTHS, POLICY_MODEL

CONDITIONS = {
    "flip 10%": {"label_noise": "flip", "flip_rate": 0.1},
    "flip 20%": {"label_noise": "flip", "flip_rate": 0.2},
    "flip 30%": {"label_noise": "flip", "flip_rate": 0.3},
    "BT T=0.25": {"temperature": 0.25},
    "BT T=0.5": {"temperature": 0.5},
    "BT T=1": {"temperature": 1.0},
}
KINDS = ("reward", "difference")  # trained here, cross-fitted
SHOWN = (*KINDS, "gold")  # and the gold Δ: the estimator given a perfect scorer


def cell(root: Path, name: str, task: dict, seed: int, folds: int, epochs: int) -> dict:
    """The estimates of one condition and seed (cached in its folder's result.json)."""
    out = root / f"{name.replace(' ', '_').replace('%', 'pct').replace('=', '')}-seed{seed}"
    done = out / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    started = time.time()
    data = deltapref.make_builtin_task(out / "data", seed=seed, n_train=1000, n_test=200, **task)
    scorer = dict(
        model=POLICY_MODEL,
        tokenizer=str(data / "tokenizer"),
        train_data=str(data / "train.jsonl"),
        cross_fit=folds,
        num_train_epochs=epochs,
        learning_rate=1e-3,
        seed=seed,
        disable_tqdm=True,
        **LENGTHS,
    )
    for kind in KINDS:
        deltapref.train_scorer(kind=kind, output_dir=str(out / kind), **scorer)
    scored = deltapref.score(
        input=str(data / "train.jsonl"),
        output=str(out / "scored.jsonl"),
        reward_model=str(out / "reward"),
        difference_model=str(out / "difference"),
        **LENGTHS,
    )
    noise = read_meta(scored)["noise"]
    pairs = deltapref.load_preferences(str(scored))[0]
    noise["gold"] = estimate_label_noise(deltas(GOLD, pairs).numpy())  # the estimator with a perfect scorer's Δ
    result = {"condition": name, "seed": seed, "seconds": time.time() - started, "noise": noise}
    done.write_text(json.dumps(result, indent=2))
    return result


def table(results: list[dict]) -> list[str]:
    """One row per condition: true share and each kind's estimate, mean over seeds (min–max)."""
    lines = ["| condition | true share | " + " | ".join(f"{k} estimate" for k in SHOWN) + " | seeds |"]
    lines.append("|---|---|" + "---|" * len(SHOWN) + "---|")
    for name in CONDITIONS:
        rows = [r for r in results if r["condition"] == name]
        true = [r["noise"][KINDS[0]]["gold_wrong_share"] for r in rows]
        cells = [f"{np.mean(true):.1%}"]
        for kind in SHOWN:
            values = [r["noise"][kind]["estimate"] for r in rows]
            cells.append(f"{np.mean(values):.1%} ({min(values):.1%}–{max(values):.1%})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(rows)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4, help="scorer epochs (the demo's quick profile: 4)")
    parser.add_argument("--output_dir", default="runs/noise-estimate")
    parser.add_argument("--json", default="docs/noise-estimate.json")
    args = parser.parse_args()
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    results = [
        cell(root, name, task, seed, args.folds, args.epochs)
        for seed in range(args.seeds)
        for name, task in CONDITIONS.items()
    ]
    command = f"python scripts/noise_estimate.py --seeds {args.seeds} --folds {args.folds} --epochs {args.epochs}"
    Path(args.json).write_text(json.dumps({"command": command, "results": results}, indent=2) + "\n")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
