"""The five-split C3/C4 table from two sweeps of `docs/hh-cpu/scorer-splits.yaml` over disjoint
seeds: `sweep-seeds-0-3.json` (seeds 0-3, 2026-12-03) and seed 4's run report
`seed-4-results.json` (2026-12-04; its stages ran after the run folders of seeds 0-3 were gone, so
the one sweep over 0-4 could not be aggregated from its runs). Per-split values are concatenated,
the statistics recomputed with deltapref's own functions (t intervals, paired differences,
Nadeau-Bengio's corrected interval at the recipe's 500 test / 800 training pairs per split), and
the |score| buckets pooled by summing pair counts; C4's gap (accuracy at |score| >= 1 minus below
1) per split, with the same two intervals. Writes `sweep.json` and `sweep.md` here:

    python docs/hh-cpu/splits/merge_splits.py
"""

from __future__ import annotations

import json
from pathlib import Path

from deltapref.evaluation.stats import paired_difference, resampled_interval, t_interval
from deltapref.recipes.sweep import SCORER_METRICS, markdown

HERE = Path(__file__).parent
COMMAND = (
    "deltapref sweep --recipe docs/hh-cpu/scorer-splits.yaml --seeds 0,1,2,3 --overlapping_splits; the same with "
    "--seeds 4,; python docs/hh-cpu/splits/merge_splits.py"
)

# C4's gap per split of seeds 0-3, as computed from those runs' reports on 2026-12-03
# (docs/RESULTS.md; sweep-seeds-0-3.json keeps only the pooled buckets)
C4_GAPS_SEEDS_0_3 = {"reward": [0.302, 0.200, 0.131, 0.171], "difference": [0.231, 0.247, 0.057, 0.234]}


def c4_gap(buckets: list[dict]) -> float:
    """Accuracy on pairs with |score| >= 1 minus accuracy on pairs below 1, from one run's buckets."""
    low = [b for b in buckets if b["bucket"] == "0-1"]
    high = [b for b in buckets if b["bucket"] != "0-1" and b["pairs"]]
    above = sum(b["pairs"] * b["accuracy"] for b in high) / sum(b["pairs"] for b in high)
    return above - low[0]["accuracy"]


def pooled(old: list[dict], new: list[dict]) -> list[dict]:
    out = []
    for a, b in zip(old, new, strict=True):
        assert a["bucket"] == b["bucket"]
        pairs = a["pairs"] + b["pairs"]
        right = a["pairs"] * (a["accuracy"] or 0) + b["pairs"] * (b["accuracy"] or 0)
        out.append({"bucket": a["bucket"], "pairs": pairs, "accuracy": right / pairs if pairs else None})
    return out


def c4_lines(summary: dict) -> str:
    head = "C4, accuracy at |score| >= 1 minus below 1, per split (t interval; corrected for overlapping splits):"
    lines = ["", head, ""]
    for name, metrics in summary["scorers"].items():
        gap, corrected = metrics["c4_gap"], metrics["c4_gap"]["overlap_corrected"]
        values = " / ".join(f"{v:+.3f}" for v in gap["values"])
        lines.append(
            f"- {name}: {values}; {gap['mean']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}], "
            f"corrected [{corrected['low']:+.3f}, {corrected['high']:+.3f}]"
        )
    return "\n".join(lines) + "\n"


def main() -> dict:
    old = json.loads((HERE / "sweep-seeds-0-3.json").read_text())
    run = json.loads((HERE / "seed-4-results.json").read_text())["scorers"]
    baseline = old["scorer_baseline"]
    sizes = {(s["pairs"], s["train_rows"]) for s in run.values()}
    assert sizes == {(500, 800)}, sizes  # the recipe's parts, the same for every seed
    summary = {**old, "seeds": old["seeds"] + [4], "scorers": {}}
    for name, metrics in old["scorers"].items():
        merged = {}
        for metric in SCORER_METRICS:
            if metric in metrics:
                values = metrics[metric]["per_seed"] + [run[name][metric]]
                merged[metric] = {"per_seed": values, **t_interval(values)}
        if "accuracy_vs_baseline" in metrics:
            accuracy = merged["accuracy"]["per_seed"]
            reference = old["scorers"][baseline]["accuracy"]["per_seed"] + [run[baseline]["accuracy"]]
            paired = paired_difference(accuracy, reference)
            paired["overlap_corrected"] = resampled_interval(paired["differences"], 500, 800)
            merged["accuracy_vs_baseline"] = paired
        merged["by_bucket_pooled"] = pooled(metrics["by_bucket_pooled"], run[name]["by_bucket"])
        gaps = C4_GAPS_SEEDS_0_3[name] + [round(c4_gap(run[name]["by_bucket"]), 3)]
        merged["c4_gap"] = {**t_interval(gaps), "overlap_corrected": resampled_interval(gaps, 500, 800)}
        summary["scorers"][name] = merged
    summary["command"], summary["seconds"] = COMMAND, None
    (HERE / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    (HERE / "sweep.md").write_text(markdown(summary, COMMAND) + c4_lines(summary))
    return summary


if __name__ == "__main__":
    summary = main()
    print(markdown(summary, COMMAND) + c4_lines(summary))
