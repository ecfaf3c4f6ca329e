"""Every number a run report shows, computed from the stages' artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deltapref.coefficients import Weighting, coefficients_of_rows
from deltapref.columns import GOLD_REWARD
from deltapref.data.loading import read_records
from deltapref.evaluation.completions import batched_reward, read_completions
from deltapref.evaluation.judges import RewardJudge, compare
from deltapref.evaluation.scorer_metrics import auroc
from deltapref.evaluation.stats import bootstrap_ci
from deltapref.report.options import ReportOptions
from deltapref.scorer_kinds import SCORER_KINDS


def _policy_name(stage: str) -> str:
    return stage[4:] if stage.startswith("gen-") else stage


def collect(stages: dict, options: ReportOptions) -> dict:
    """Compute every number the report shows from the stages' artifacts."""
    reward_spec = options.reward
    if reward_spec != "gold":
        reward_spec = stages[reward_spec]["dir"] if reward_spec in stages else reward_spec
    rewards = batched_reward(reward_spec)
    completions = {
        _policy_name(n): read_completions(s["args"]["output"]) for n, s in stages.items() if s["command"] == "generate"
    }
    results = {"reward": options.reward, "policies": {}, "scorers": {}, "coefficients": {}, "noise": {}}
    values = {}
    for name, rows in completions.items():
        values[name] = rewards([r["prompt"] for r in rows], [r["completion"] for r in rows])
        entry = bootstrap_ci(values[name], seed=options.seed)
        entry["mean_length"] = float(np.mean([len(r["completion"].split()) for r in rows]))
        summary_dir = stages.get(name, {}).get("dir")
        if summary_dir and (Path(summary_dir) / "train_summary.json").exists():
            summary = json.loads((Path(summary_dir) / "train_summary.json").read_text())
            entry.update(
                steps=summary["steps"],
                train_loss=summary["train_loss"],
                objective=summary.get("loss", "sft"),
                steps_per_second=summary["steps_per_second"],
                peak_rss_mb=summary["peak_rss_mb"],
                curve=[(e["step"], e["loss"]) for e in summary["log_history"] if "loss" in e],
                diagnostics=summary.get("diagnostics") or {},
                warnings=summary.get("warnings") or [],
            )
        results["policies"][name] = entry
    tie = options.tie_threshold
    for baseline in options.baseline_names:
        if baseline not in completions:
            continue
        for name in completions:
            if len(values[name]) != len(values[baseline]):
                continue
            pair = {"a": values[name], "b": values[baseline]}
            judge = RewardJudge(lambda _, ref, pair=pair: pair[ref[0]][ref[1]], tie, name=str(results["reward"]))
            n = len(values[name])
            outcome = compare(range(n), [("a", i) for i in range(n)], [("b", i) for i in range(n)], [judge])
            results["policies"][name][f"vs_{baseline}"] = {k: outcome[k] for k in ("win", "tie", "loss", "win_rate")}
    for name, stage in stages.items():
        path = Path(stage["dir"]) / "scorer_eval.json"
        if stage["command"] == "train-scorer" and path.exists():
            summary = json.loads(path.read_text())
            if "eval" in summary:
                results["scorers"][name] = {
                    "kind": summary["kind"],
                    "train_rows": summary.get("train_rows"),
                    **summary["eval"],
                }
        if stage["command"] == "score":
            rows = [row for _, row in read_records(stage["args"]["output"])]
            weights, results["noise"], results["label_correct"] = weights_and_noise(rows, options.alpha)
            results["coefficients"] = weights
    return results


def weights_and_noise(rows: list[dict], alpha: float) -> tuple[dict, dict, list | None]:
    """Each available source's weights on the scored pairs (RDO σ(Δ)^α, and MADPO's from the
    reward model) and, where the gold reward is known, how well each weight separates correctly
    from wrongly labeled pairs (AUROC for "label agrees with gold"; 0.5 = no better than chance)."""
    weights = {}
    for name, kind in SCORER_KINDS.items():
        if rows and all(c in rows[0] for c in kind.source.columns):
            weights[name] = coefficients_of_rows(kind.source, rows, Weighting(alpha=alpha))
    if "reward" in weights:
        weights["reward (madpo)"] = coefficients_of_rows(SCORER_KINDS["reward"].source, rows, Weighting(scheme="madpo"))
    noise, correct = {}, None
    if rows and all(c in rows[0] for c in GOLD_REWARD):
        correct = np.array([r[GOLD_REWARD[0]] > r[GOLD_REWARD[1]] for r in rows])
        for name, values in weights.items():
            values = np.asarray(values)
            noise[name] = {
                "auroc": auroc(values, correct),
                "mean_weight_correct": float(values[correct].mean()),
                "mean_weight_wrong": float(values[~correct].mean()) if (~correct).any() else None,
                "wrong_labels": int((~correct).sum()),
                "pairs": len(values),
            }
        correct = correct.tolist()
    return weights, noise, correct
