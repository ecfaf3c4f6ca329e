"""``deltapref study map``: where weighting pays on the built-in task, against the methods a user
with noisy labels would pick instead, with every arm tuned the same way.

For each label-noise condition: (1) validation — on separate draws of the task (seeds 1000, ...),
every arm trains at every rate of one grid; each arm keeps the rate with its best mean gold reward
over the draws; (2) test — on fresh seeds, every arm at its rate, from the same SFT model and the
same cross-fitted scorers. Each cell reports every arm's paired gain over DPO (Holm-adjusted
across the cell's arms: the map is exploratory), its recovery of the gold-corrected ceiling and
its weights' mean, SD and share on wrong labels. ``map_markdown`` writes the table and plot."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deltapref.artifacts.outputs import claim_output, mark_directory, write_text
from deltapref.config.commands import SEED_RANGE, Options, command_line, option, seed_list
from deltapref.data.loading import read_records
from deltapref.evaluation.stats import holm, paired_difference
from deltapref.models.provenance import machine
from deltapref.objectives import PolicyLossOptions
from deltapref.policy.preparation import pair_weights
from deltapref.recipes.pipeline import run_pipeline, stage_seconds
from deltapref.study.map_arms import (
    ARMS,
    CONDITIONS,
    LEARNING_RATES,
    arm_options,
    rate_stage,
    seed_recipe,
    validation_recipe,
)
from deltapref.study.map_markdown import draw_map, map_markdown
from deltapref.study.markdown import write_section
from deltapref.study.verdicts import SESOI, verdict

MAP_MARKERS = ("<!-- map:start -->", "<!-- map:end -->")
VALIDATION_SEED = 1000


@dataclass
class MapConfig(Options):
    conditions: str = option(
        "bt-1,flip-30",
        f"comma list of label-noise conditions to map, of {', '.join(CONDITIONS)} (BT: Bradley-Terry "
        "labels at temperature T; flip: that share of labels flipped whatever the gap)",
    )
    seeds: str = option("3", "test seeds per condition: a count N (from --first_seed) or a comma list")
    first_seed: int = option(
        5000, "the first test seed of a count (fresh: validation draws are 1000, ...)", **SEED_RANGE
    )
    validation_draws: int = option(2, "task draws (seeds 1000, ...) whose mean gold reward picks each arm's rate", ge=2)
    output_dir: str = option("runs/study-map", "where the runs go")
    results: str = option(None, "markdown file whose map section is (re)written (default: OUTPUT/RESULTS.md)")
    plot: str = option(None, "the map's PNG (default: OUTPUT/weighting-map.png)")

    def condition_list(self) -> list[str]:
        return [c.strip() for c in self.conditions.split(",") if c.strip()]

    def seed_list(self) -> list[int]:
        if "," in self.seeds:
            return seed_list(self.seeds)
        return [self.first_seed + s for s in seed_list(self.seeds)]

    def __post_init__(self):
        super().__post_init__()
        unknown = [c for c in self.condition_list() if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"--conditions: unknown {', '.join(unknown)}; known: {', '.join(CONDITIONS)}")
        if len(self.seed_list()) < 2:
            raise ValueError("--seeds: a paired interval needs at least 2 seeds")
        shared = sorted(set(self.seed_list()) & set(range(VALIDATION_SEED, VALIDATION_SEED + self.validation_draws)))
        if shared:
            raise ValueError(f"test seed(s) {', '.join(map(str, shared))} are validation draws: pick others")


def folder(out: Path, condition: str) -> Path:
    return out / condition


def validated_rates(condition: str, draws: list[int], out: Path) -> tuple[dict, dict]:
    """Each arm's rate at one condition: the best mean gold reward over the validation draws.
    Returns (rate per arm, {arm: {rate: mean validation reward}})."""
    rewards: dict[str, dict[float, list[float]]] = {arm: {lr: [] for lr in LEARNING_RATES} for arm in ARMS}
    for seed in draws:
        report = _run(validation_recipe(CONDITIONS[condition], seed, list(ARMS)), folder(out, condition) / f"v{seed}")
        for arm in ARMS:
            for lr in LEARNING_RATES:
                rewards[arm][lr].append(report["policies"][rate_stage(arm, lr)]["mean"])
    means = {arm: {lr: float(np.mean(v)) for lr, v in by_rate.items()} for arm, by_rate in rewards.items()}
    return {arm: max(by_rate, key=by_rate.get) for arm, by_rate in means.items()}, means


def _run(recipe: dict, run_dir: Path) -> dict:
    run_pipeline(recipe, run_dir)
    return json.loads((run_dir / "report" / "results.json").read_text())


def weight_statistics(run_dir: Path, condition: dict) -> dict:
    """Per arm with weights: their mean, SD and share of the total weight on pairs whose label the
    gold reward contradicts (DPO: every weight 1), from the scored training pairs of one seed."""
    from datasets import Dataset

    rows = [row for _, row in read_records(str(run_dir / "score" / "train_scored.jsonl"))]
    data = Dataset.from_list(rows)
    wrong = np.array([r["gold_reward_chosen"] < r["gold_reward_rejected"] for r in rows])
    out = {"dpo": _described(np.ones(len(rows)), wrong)}
    for arm in ARMS:
        options = arm_options(arm, condition)
        if "coef" in options:
            seed = int(run_dir.name.split("-")[-1])  # the run's seed: it shuffles
            out[arm] = _described(pair_weights(data, PolicyLossOptions(**options), seed), wrong)
    return out


def _described(weights: np.ndarray, wrong: np.ndarray) -> dict:
    total = float(weights.sum())
    return {
        "mean": float(weights.mean()),
        "sd": float(weights.std(ddof=1)),
        "on_wrong": float(weights[wrong].sum() / total) if total > 0 else float("nan"),
    }


def recovery(arm: list[float], dpo: list[float], ceiling: list[float], seed: int = 0) -> dict:
    """R = (arm − DPO) / (ceiling − DPO) over seeds (ratio of mean paired gains) with a percentile
    bootstrap interval over seeds (2000 resamples; crude with a few seeds)."""
    arm, dpo, ceiling = map(np.asarray, (arm, dpo, ceiling))
    gain, room = arm - dpo, ceiling - dpo
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(gain), size=(2000, len(gain)))
    ratios = gain[picks].mean(axis=1) / room[picks].mean(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    point = float(gain.mean() / room.mean()) if room.mean() else float("nan")
    low, high = np.percentile(ratios, [2.5, 97.5]) if ratios.size else (np.nan, np.nan)
    return {"mean": point, "low": float(low), "high": float(high)}


def summarize_cell(runs: list[tuple[dict, dict, dict]]) -> dict:
    """One condition over test seeds: the flipped share, the scorers' AUROC for a right label,
    DPO over SFT, every arm's paired gain over DPO (with its Holm-adjusted p across the cell's
    arms and its verdict), its recovery and its weights' statistics (mean over seeds)."""
    reward = {arm: [r["policies"][arm]["mean"] for r, _, _ in runs] for arm in ("sft", *ARMS)}
    sources = [s for s in runs[0][0]["noise"] if all(s in r["noise"] for r, _, _ in runs)]
    gains = {arm: paired_difference(reward[arm], reward["dpo"]) for arm in ARMS if arm != "dpo"}
    adjusted = dict(zip(gains, holm([g["p"] for g in gains.values()])))
    weights = {}
    for arm in runs[0][2]:
        stats = [w[arm] for _, _, w in runs]
        weights[arm] = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
    return {
        "flipped": float(np.mean([t["train_label_noise"] for _, t, _ in runs])),
        "auroc": {s: float(np.mean([r["noise"][s]["auroc"] for r, _, _ in runs])) for s in sources},
        "dpo_over_sft": paired_difference(reward["dpo"], reward["sft"]),
        "ceiling_over_dpo": gains["ceiling"],
        "gains": {
            arm: dict(g, holm_p=adjusted[arm], verdict=verdict(g, 0.0, SESOI["gold reward"]))
            for arm, g in gains.items()
        },
        "recovery": {arm: recovery(reward[arm], reward["dpo"], reward["ceiling"]) for arm in gains if arm != "ceiling"},
        "weights": weights,
        "rewards": reward,
    }


def run_map(config: MapConfig, out: Path) -> dict:
    started, cells, rates, validation, dirs = time.time(), {}, {}, {}, []
    draws = [VALIDATION_SEED + i for i in range(config.validation_draws)]
    for name in config.condition_list():
        rates[name], validation[name] = validated_rates(name, draws, out)
        dirs += [folder(out, name) / f"v{seed}" for seed in draws]
        runs = []
        for seed in config.seed_list():
            run_dir = folder(out, name) / f"seed-{seed}"
            report = _run(seed_recipe(CONDITIONS[name], seed, rates[name]), run_dir)
            task = json.loads((run_dir / "data" / "task.json").read_text())
            runs.append((report, task, weight_statistics(run_dir, CONDITIONS[name])))
            dirs.append(run_dir)
        cells[name] = summarize_cell(runs)
    return {
        "command": command_line("deltapref study map", config, skip=("output_dir", "results", "plot")),
        "seeds": config.seed_list(),
        "validation_seeds": draws,
        "learning_rates": list(LEARNING_RATES),
        "rates": rates,
        "validation": validation,
        "arms": {arm: {"group": group, "options": options} for arm, (group, options) in ARMS.items()},
        "seconds": time.time() - started,
        "stage_seconds": sum(stage_seconds(d) for d in dirs),
        "machine": machine(),
        "cells": cells,
    }


def weighting_map(config: MapConfig) -> int:
    """Entry point of ``deltapref study map``."""
    out = Path(config.output_dir)
    claim_output(out, "study map", flag=None)
    mark_directory(out, "study map")
    results = Path(config.results) if config.results else out / "RESULTS.md"
    plot = Path(config.plot) if config.plot else out / "weighting-map.png"
    summary = run_map(config, out)
    write_text(out / "map.json", json.dumps(summary, indent=2) + "\n")
    draw_map(summary, plot)
    write_section(results, map_markdown(summary, os.path.relpath(plot, results.parent)), MAP_MARKERS)
    print(f"[study map] {summary['seconds'] / 60:.1f} min; results: {results}; plot: {plot}")
    return 0
