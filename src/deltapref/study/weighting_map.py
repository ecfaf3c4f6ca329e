"""``deltapref study map``: where weighting pays on the built-in task. For each label-noise
condition — Bradley–Terry labels at three temperatures (flips concentrate on close pairs) and
gap-independent flips at three rates (a careless annotator) — and each seed, one pipeline trains
SFT, the three scorers, DPO, DPO+rc with weights from the gold reward (the bound), the reward
model, the difference model and the oracle, and DRDO; each arm's gold-reward gain over DPO is a
paired t interval over seeds, read against the smallest effect of interest. One table, one plot.
Every arm trains at one shared learning rate (equal budgets, nothing tuned): an exploratory map,
not a confirmatory test."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from deltapref.artifacts.outputs import claim_output, mark_directory, write_text
from deltapref.config.commands import SEED_RANGE, Options, command_line, option, seed_list
from deltapref.evaluation.stats import paired_difference
from deltapref.models.provenance import machine
from deltapref.recipes.demo import LENGTHS, generation_stages, task_stages
from deltapref.recipes.pipeline import run_pipeline, stage_seconds
from deltapref.report.text import estimate
from deltapref.study.markdown import table, timing, write_section
from deltapref.study.verdicts import SESOI, relabel, verdict

# label noise of the pairs: condition -> data synth options (and the gold weights' temperature)
CONDITIONS = {
    "BT, T = 0.25": {"temperature": 0.25},
    "BT, T = 0.5": {"temperature": 0.5},
    "BT, T = 1": {"temperature": 1.0},
    "flip 10%": {"label_noise": "flip", "flip_rate": 0.1},
    "flip 20%": {"label_noise": "flip", "flip_rate": 0.2},
    "flip 30%": {"label_noise": "flip", "flip_rate": 0.3},
}
ARMS = {  # name -> align options; each is compared with DPO, trained from the same SFT model
    "dpo": {"loss": "dpo"},
    "rc-gold": {"loss": "dpo", "coef": "gold"},
    "rc-reward": {"loss": "dpo", "coef": "reward"},
    "rc-difference": {"loss": "dpo", "coef": "difference"},
    "rc-oracle": {"loss": "dpo", "coef": "oracle"},
    "drdo": {"loss": "drdo"},
}
TASK = {"n_train": 1000, "n_test": 200, "sft_epochs": 4, "scorer_epochs": 4}
MAP_MARKERS = ("<!-- map:start -->", "<!-- map:end -->")


@dataclass
class MapConfig(Options):
    seeds: str = option("5", "seeds per condition: a count N (from --first_seed) or a comma list")
    first_seed: int = option(
        3000, "the first seed of a count (fresh: the claims study uses 0.., 1000.., 2000..)", **SEED_RANGE
    )
    learning_rate: float = option(5e-4, "every arm's learning rate (one shared rate: equal budgets)", gt=0)
    output_dir: str = option("runs/study-map", "where the runs go")
    results: str = option(None, "markdown file whose map section is (re)written (default: OUTPUT/RESULTS.md)")
    plot: str = option(None, "the map's PNG (default: OUTPUT/weighting-map.png)")

    def seed_list(self) -> list[int]:
        if "," in self.seeds:
            return seed_list(self.seeds)
        return [self.first_seed + s for s in seed_list(self.seeds)]

    def __post_init__(self):
        super().__post_init__()
        if len(self.seed_list()) < 2:
            raise ValueError("--seeds: a paired interval needs at least 2 seeds")


def map_recipe(condition: dict, seed: int, learning_rate: float) -> dict:
    """One condition and seed: the task, SFT, the three scorers, scoring, every arm, generation."""
    stages = task_stages(seed, TASK, {**condition, "disjoint_test_prompts": True})
    train = {"seed": seed, "disable_tqdm": True, "logging_steps": 10, **LENGTHS}
    gold_temperature = condition.get("temperature", 0.5)
    for name, arm in ARMS.items():
        args = dict(train, model="{sft}", train_data="{score}/train_scored.jsonl", learning_rate=learning_rate)
        args.update(arm, beta=0.1, num_train_epochs=1)
        if arm.get("coef") == "gold":
            args["coef_temperature"] = gold_temperature
        stages[name] = {"command": "align", "args": args}
    stages.update(generation_stages(["sft", *ARMS], seed))
    return {"stages": stages, "report": {"reward": "gold", "baselines": ["dpo"], "seed": seed}}


def run_map(config: MapConfig, out: Path) -> dict:
    started, cells, used = time.time(), {}, 0.0
    for name, condition in CONDITIONS.items():
        runs = []
        for seed in config.seed_list():
            run_dir = out / name.replace(", ", "-").replace(" = ", "").replace(" ", "-") / f"seed-{seed}"
            run_pipeline(map_recipe(condition, seed, config.learning_rate), run_dir)
            used += stage_seconds(run_dir)
            report = json.loads((run_dir / "report" / "results.json").read_text())
            task = json.loads((run_dir / "data" / "task.json").read_text())
            runs.append((report, task))
        cells[name] = summarize_cell(runs)
    return {
        "command": command_line("deltapref study map", config, skip=("output_dir", "results", "plot")),
        "seeds": config.seed_list(),
        "learning_rate": config.learning_rate,
        "seconds": time.time() - started,
        "stage_seconds": used,
        "machine": machine(),
        "cells": cells,
    }


def summarize_cell(runs: list[tuple[dict, dict]]) -> dict:
    """One condition over seeds: the share of flipped labels, each weight source's AUROC for a
    correct label, DPO's gain over SFT and every arm's paired gain over DPO with its verdict."""
    reward = {arm: [r["policies"][arm]["mean"] for r, _ in runs] for arm in ("sft", *ARMS)}
    sources = [s for s in runs[0][0]["noise"] if all(s in r["noise"] for r, _ in runs)]
    cell = {
        "flipped": sum(t["train_label_noise"] for _, t in runs) / len(runs),
        "auroc": {s: sum(r["noise"][s]["auroc"] for r, _ in runs) / len(runs) for s in sources},
        "dpo_over_sft": paired_difference(reward["dpo"], reward["sft"]),
        "gains": {},
        "rewards": reward,
    }
    for arm in ARMS:
        if arm != "dpo":
            gain = paired_difference(reward[arm], reward["dpo"])
            cell["gains"][arm] = dict(gain, verdict=verdict(gain, 0.0, SESOI["gold reward"]))
    return cell


def map_markdown(summary: dict, plot: str | None) -> str:
    arms = [a for a in ARMS if a != "dpo"]
    lines = [
        "## Where weighting pays: the map",
        "",
        f"Generated by `{summary['command']}`: {timing(summary)}; "
        f"seeds {', '.join(map(str, summary['seeds']))} per condition, 1000 training pairs and 200 held-out "
        "prompts (disjoint from the training prompts), one sample per prompt, every arm at learning rate "
        f"{summary['learning_rate']:g} from the same SFT model (nothing tuned: exploratory). Each cell is the "
        "arm's mean gold-reward gain over DPO with its paired 95% t interval over seeds and its reading against "
        "SESOI +0.05: **gain** / **loss** = the interval above / below 0, *none ≥ +0.05* = it contains 0 and "
        "excludes +0.05, *underpowered* = it contains both. *BT*: "
        "Bradley–Terry labels at temperature T (flips fall on close pairs); *flip*: that share of labels "
        "flipped whatever the gap. rc-gold weights σ(Δ_gold/τ) with τ = T (τ = 0.5 for flips): the bound.",
        "",
    ]
    if plot:
        lines += [f"![weighting map]({plot})", ""]
    head = ["labels", "flipped", "DPO − SFT", *[f"{a} − DPO" for a in arms], "AUROC (reward / difference / oracle)"]
    rows = []
    for name, cell in summary["cells"].items():
        auroc = " / ".join(f"{cell['auroc'][s]:.2f}" if s in cell["auroc"] else "—" for s in SOURCES)
        gains = [f"{estimate(cell['gains'][a], sign='+')}: {relabel(cell['gains'][a]['verdict'], SHORT)}" for a in arms]
        rows.append([name, f"{cell['flipped']:.1%}", estimate(cell["dpo_over_sft"], sign="+"), *gains, auroc])
    return "\n".join(lines + table(head, rows))


SOURCES = ("reward", "difference", "oracle")
SHORT = {"reproduced": "**gain**", "not reproduced": "**loss**", "no effect of that size": "none ≥ +0.05"}


def draw_map(summary: dict, path: Path) -> None:
    """Every arm's gain over DPO with its 95% interval, per condition, the SESOI band shaded."""
    from deltapref.report.plots import figure, save_figure

    arms = [a for a in ARMS if a != "dpo"]
    names = list(summary["cells"])
    fig, ax = figure(figsize=(9, 4.2))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        gains = [summary["cells"][n]["gains"][arm] for n in names]
        xs = [k + (i - (len(arms) - 1) / 2) * width for k in range(len(names))]
        errors = [[g["mean"] - g["low"] for g in gains], [g["high"] - g["mean"] for g in gains]]
        ax.errorbar(xs, [g["mean"] for g in gains], yerr=errors, fmt="o", capsize=2, label=arm, markersize=4)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axhspan(-SESOI["gold reward"], SESOI["gold reward"], color="grey", alpha=0.15, label="±SESOI")
    ax.set_xticks(range(len(names)), [f"{n}\n({summary['cells'][n]['flipped']:.0%} flipped)" for n in names])
    ax.set_ylabel("gold-reward gain over DPO (95% CI)")
    ax.set_title("Where weighting pays: gain over DPO by label noise")
    ax.legend(fontsize=7, ncol=3)
    save_figure(fig, path)


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
