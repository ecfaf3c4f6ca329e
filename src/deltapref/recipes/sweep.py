"""``deltapref sweep``: one recipe over several seeds, then paired statistics.

Each seed's run is an ordinary cached pipeline in ``OUTPUT/seed-S`` (a rerun skips finished
stages): every stage with a ``seed`` option gets S (the built-in task's draw and every training
and sampling seed), and ``{seed}`` in a recipe's strings becomes S. From each run's
``report/results.json`` it aggregates, per method, the mean over seeds with a 95% Student-t
interval, and the **paired** difference to a baseline (same seed, same data) with its interval
and the seeds won; scorer metrics and weight-vs-noise AUROCs the same way. Writes
``sweep.json``, ``sweep.md`` and ``sweep.png``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from deltapref.artifacts.outputs import claim_output, mark_directory, write_text
from deltapref.config.commands import Options, command_line, option, seed_list
from deltapref.errors import DeltaprefError
from deltapref.evaluation.stats import paired_difference, resampled_interval, t_interval
from deltapref.recipes.demo import demo_recipe
from deltapref.recipes.pipeline import PipelineError, load_recipe, run_pipeline
from deltapref.report.text import estimate, markdown_table
from deltapref.stages import match

BUILT_IN = {"demo": False, "demo-quick": True}  # recipe name -> quick
SCORER_METRICS = ("accuracy", "gold_accuracy", "label_auroc", "order_dependence", "ece")


@dataclass
class SweepConfig(Options):
    recipe: str = option(None, "recipe YAML, or a built-in one: demo, demo-quick")
    seeds: str = option("0,1,2,3,4", "comma list of seeds, or a count N (seeds 0..N-1)")
    baseline: str = option("dpo", "method the others are compared with, seed by seed")
    scorer_baseline: str = option(
        "reward",
        "scorer the others are compared with, seed by seed (held-out accuracy), when the runs evaluate scorers",
    )
    overlapping_splits: bool = option(
        False,
        "the seeds' runs cut their scorer train and test parts from one pool of pairs (a data partition "
        "that follows the seed): scorer comparisons also get Nadeau and Bengio's corrected interval, "
        "which widens the t interval for the splits' overlap",
    )
    output_dir: str = option(None, "where each seed's run and the sweep's results go (default: runs/sweep-RECIPE)")
    jobs: int = option(1, "seeds run at once (each in its own process); 1 on a small machine", ge=1)

    def __post_init__(self):
        super().__post_init__()
        if not self.recipe:
            raise ValueError("--recipe is required (a YAML file, demo or demo-quick)")
        self.seed_list()

    def seed_list(self) -> list[int]:
        return seed_list(self.seeds)


def base_recipe(name: str) -> dict:
    if name in BUILT_IN:
        return demo_recipe(BUILT_IN[name], seed=0)
    return load_recipe(name)


def with_seed(recipe: dict, seed: int) -> dict:
    """The recipe with ``seed`` in every stage that takes one and in place of ``{seed}``."""
    recipe = json.loads(json.dumps(recipe).replace("{seed}", str(seed)))
    for stage in recipe["stages"].values():
        _, command = match(stage["command"].split())
        if command is not None and command.has_option("seed"):
            stage["args"] = dict(stage.get("args") or {}, seed=seed)
    if recipe.get("report"):
        recipe["report"]["seed"] = seed
    return recipe


def run_seed(recipe: dict, seed: int, out: Path, in_process: bool) -> Path:
    run_dir = out / f"seed-{seed}"
    claim_output(run_dir, "pipeline", flag=None)
    mark_directory(run_dir, "pipeline")  # the seed's pipeline directory, made here to hold its recipe
    seeded = with_seed(recipe, seed)
    write_text(run_dir / "recipe.yaml", yaml.safe_dump(seeded, sort_keys=False))
    print(f"[sweep] seed {seed}: {run_dir}", flush=True)
    if in_process:
        run_pipeline(seeded, run_dir)
    else:
        command = [
            sys.executable,
            "-m",
            "deltapref",
            "pipeline",
            "--recipe",
            str(run_dir / "recipe.yaml"),
            "--output_dir",
            str(run_dir),
        ]
        with open(run_dir / "sweep.log", "w") as log:
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode:
                raise PipelineError(f"seed {seed} failed: {shlex.join(command)}; see {run_dir / 'sweep.log'}")
    return run_dir / "report" / "results.json"


def aggregate(
    results: dict[int, dict], baseline: str, scorer_baseline: str = "reward", overlapping_splits: bool = False
) -> dict:
    """Per-method and per-scorer statistics over seeds, paired against ``baseline`` (methods)
    and ``scorer_baseline`` (scorers' accuracy, with ``overlapping_splits`` also corrected for
    splits drawn from one pool); a recipe may train only scorers."""
    seeds = sorted(results)
    methods = [m for m in results[seeds[0]]["policies"] if all(m in results[s]["policies"] for s in seeds)]
    if methods and baseline not in methods:
        raise DeltaprefError(f"baseline {baseline!r} is not a method of every seed's run ({', '.join(methods)})")
    reward = {m: [results[s]["policies"][m]["mean"] for s in seeds] for m in methods}
    summary = {
        "seeds": seeds,
        "baseline": baseline,
        "scorer_baseline": scorer_baseline,
        "reward": results[seeds[0]]["reward"],
        "methods": {},
        "scorers": {},
        "noise": {},
    }
    for method in methods:
        entry = {"per_seed": reward[method], **t_interval(reward[method])}
        if method != baseline:
            entry["vs_baseline"] = paired_difference(reward[method], reward[baseline])
        summary["methods"][method] = entry
    runs = [results[s].get("scorers", {}) for s in seeds]
    summary["scorers"] = aggregate_scorers(runs, scorer_baseline, overlapping_splits)
    for name in results[seeds[0]].get("noise", {}):
        values = [results[s].get("noise", {}).get(name, {}).get("auroc") for s in seeds]
        if all(isinstance(v, (int, float)) for v in values):
            summary["noise"][name] = {"per_seed": values, **t_interval(values)}
    return summary


def aggregate_scorers(runs: list[dict], baseline: str, overlapping_splits: bool = False) -> dict:
    """Each scorer's metrics over runs (t intervals), its accuracy paired with ``baseline``'s run
    by run (with ``overlapping_splits`` also Nadeau–Bengio's interval for splits of one pool),
    and its accuracy by |score| bucket pooled over the runs' pairs."""
    out = {}
    for name in runs[0]:
        metrics = {}
        for metric in SCORER_METRICS:
            values = [run.get(name, {}).get(metric) for run in runs]
            if all(isinstance(v, (int, float)) for v in values):
                metrics[metric] = {"per_seed": values, **t_interval(values)}
        if name != baseline and all("accuracy" in run.get(k, {}) for run in runs for k in (name, baseline)):
            paired = paired_difference(
                [run[name]["accuracy"] for run in runs], [run[baseline]["accuracy"] for run in runs]
            )
            if overlapping_splits and len(runs) > 1:
                paired["overlap_corrected"] = _overlap_corrected(paired["differences"], [run[name] for run in runs])
            metrics["accuracy_vs_baseline"] = paired
        tables = [run.get(name, {}).get("by_bucket") for run in runs]
        if all(tables):
            pooled = []
            for cells in zip(*tables):
                pairs = sum(c["pairs"] for c in cells)
                right = sum(c["pairs"] * c["accuracy"] for c in cells if c["pairs"])
                pooled.append(
                    {"bucket": cells[0]["bucket"], "pairs": pairs, "accuracy": right / pairs if pairs else None}
                )
            metrics["by_bucket_pooled"] = pooled
        out[name] = metrics
    return out


def _overlap_corrected(differences: list[float], scorer_runs: list[dict]) -> dict:
    """The resampled-splits interval, from the runs' mean held-out and training pair counts."""
    missing = [i for i, run in enumerate(scorer_runs) if not run.get("train_rows") or not run.get("pairs")]
    if missing:
        raise DeltaprefError(
            f"--overlapping_splits needs each scorer run's train_rows and held-out pairs; run {missing[0]} has "
            "none (its report predates them: rerun the sweep, finished stages are cached)"
        )
    test = sum(run["pairs"] for run in scorer_runs) / len(scorer_runs)
    train = sum(run["train_rows"] for run in scorer_runs) / len(scorer_runs)
    return resampled_interval(differences, test, train)


def markdown(summary: dict, command: str) -> str:
    seeds, base = summary["seeds"], summary["baseline"]
    lines = [f"# Sweep over seeds {', '.join(map(str, seeds))}", "", f"Made by `{command}`.", ""]
    if summary["methods"]:
        lines += [
            f"Mean {summary['reward']} reward per method (95% t interval over {len(seeds)} seeds) and the paired "
            f"difference to {base} (same seed, same data).",
            "",
        ]
        rows = []
        for method, entry in summary["methods"].items():
            paired = entry.get("vs_baseline")
            if paired:
                versus = [
                    estimate(paired),
                    f"{paired['wins']}/{len(seeds)}",
                    "yes" if paired["excludes_zero"] else "no",
                ]
            rows.append([method, estimate(entry), *(versus if paired else ["—"] * 3)])
        head = ["method", "mean reward", f"difference to {base}", "seeds won", "interval excludes 0"]
        lines += markdown_table(head, rows)
    if summary["scorers"]:
        corrected = any("overlap_corrected" in m.get("accuracy_vs_baseline", {}) for m in summary["scorers"].values())
        rows = []
        for name, metrics in summary["scorers"].items():
            cells = [estimate(metrics[m]) if m in metrics else "—" for m in SCORER_METRICS]
            paired = metrics.get("accuracy_vs_baseline")
            cells.append(f"{estimate(paired)}, {paired['wins']}/{paired['n']} runs" if paired else "—")
            if corrected:
                cells.append(estimate(paired["overlap_corrected"]) if paired else "—")
            buckets = metrics.get("by_bucket_pooled", [])
            cells.append(
                " / ".join(f"{b['bucket']}: {b['accuracy']:.3f} ({b['pairs']})" for b in buckets if b["pairs"])
            )
            rows.append([name, *cells])
        versus = [f"accuracy − {summary['scorer_baseline']} (paired)"]
        versus += ["the same, corrected for overlapping splits (Nadeau–Bengio)"] if corrected else []
        lines += ["", *markdown_table(["scorer", *SCORER_METRICS, *versus, "by |score| bucket, pooled"], rows)]
        per_seed = [
            [name, *(f"{a:.3f}" for a in metrics["accuracy"]["per_seed"])]
            for name, metrics in summary["scorers"].items()
            if "accuracy" in metrics
        ]
        if per_seed:
            lines += ["", "Held-out accuracy per seed:", "", *markdown_table(["scorer", *map(str, seeds)], per_seed)]
    if summary["noise"]:
        rows = [[name, estimate(entry)] for name, entry in summary["noise"].items()]
        lines += ["", *markdown_table(["weights", "AUROC for label agrees with gold"], rows)]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    from deltapref.report.plots import figure, interval_bars, save_figure

    paired = {m: e["vs_baseline"] for m, e in summary["methods"].items() if "vs_baseline" in e}
    if not paired or any(p["low"] is None for p in paired.values()):
        return
    fig, ax = figure(figsize=(max(5, 0.7 * len(paired)), 3.2))
    colors = ["#55a868" if p["excludes_zero"] and p["mean"] > 0 else "#4c72b0" for p in paired.values()]
    baseline = summary["baseline"]
    title = f"reward difference to {baseline}, 95% t interval over {len(summary['seeds'])} seeds"
    interval_bars(ax, paired, f"paired difference to {baseline}", title, colors)
    ax.axhline(0, color="black", lw=0.8)
    save_figure(fig, path)


def sweep(config: SweepConfig) -> int:
    """Entry point of ``deltapref sweep``."""
    recipe, seeds = base_recipe(config.recipe), config.seed_list()
    out = Path(config.output_dir or f"runs/sweep-{Path(config.recipe).stem}")
    claim_output(out, "sweep", flag=None)
    mark_directory(out, "sweep")
    started = time.time()
    in_process = config.jobs == 1
    with ThreadPoolExecutor(max_workers=config.jobs) as pool:
        paths = dict(zip(seeds, pool.map(lambda s: run_seed(recipe, s, out, in_process), seeds)))
    results = {s: json.loads(path.read_text()) for s, path in paths.items()}
    summary = aggregate(results, config.baseline, config.scorer_baseline, config.overlapping_splits)
    command = command_line("deltapref sweep", config, skip=("output_dir", "jobs"))
    summary["command"], summary["seconds"] = command, time.time() - started
    write_text(out / "sweep.json", json.dumps(summary, indent=2) + "\n")
    write_text(out / "sweep.md", markdown(summary, command))
    plot(summary, out / "sweep.png")
    print(markdown(summary, command))
    print(f"[sweep] {len(seeds)} seeds in {summary['seconds']:.0f}s: {out / 'sweep.md'}")
    return 0
