"""``deltapref study claims``: every RDO and DRDO claim measured over seeds on the built-in task.

1. Validation: for each label temperature, each learning rate of the grid runs every method on
   separate draws of the task (seed 1000, and 1001, ... with ``--validation_draws``); each method
   gets its best rate per temperature on its mean over the draws, and the magnitude-aware
   configuration the study backs is chosen there too (at T = 0.5). Test seeds never inform a choice.
2. Test: for each label temperature and seed, one cached pipeline runs data, SFT, scorers,
   scoring, every method and the gold-reward report.
3. Claims: paired t intervals over seeds, a verdict per comparison (``verdicts``; one primary per
   claim at 95%, the others Bonferroni-corrected), written between the ``claims`` markers of the
   results file (other sections are kept); all numbers to ``study.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deltapref.artifacts.outputs import claim_output, mark_directory, write_text
from deltapref.config.commands import SEED_RANGE, Options, command_line, option, seed_list
from deltapref.data.loading import read_records
from deltapref.models.provenance import machine
from deltapref.recipes.pipeline import run_pipeline, stage_seconds
from deltapref.report.collect import weights_and_noise
from deltapref.study.claims import MAIN, Runs, claim_rows, method_table
from deltapref.study.confirm import confirm_markdown, primary_power
from deltapref.study.markdown import CONFIRM_MARKERS, markdown, write_section
from deltapref.study.recipes import CANDIDATES, PROFILES, VALIDATION_SEED, WIDEN_STEPS, claims_recipe, methods

SCORING = {"trained": "score", "1ep": "score-1ep", "cf": "score-cf"}  # regime -> score stage


@dataclass
class StudyConfig(Options):
    profile: Literal["quick", "full", "confirm"] = option(
        "full",
        "quick: 3 seeds, T = 0.5, one learning rate, never widened (11 min on 2 cores, 2026-12-06); full: 5 seeds, "
        "T ∈ {0.25, 0.5, 1}, a grid of three rates widened while a method's best rate sits on its edge "
        "(90 min, 2026-12-03); confirm: the primary comparisons only (C1, C2's two, C7 at T = 1, with DPO "
        "and SFT) on 36 fresh seeds from 2000, the fair task, 4 samples per prompt (56 min, 2026-12-06)",
    )
    seeds: str = option(
        None,
        "seeds per temperature: a count N (seeds 0..N-1) or a comma list (e.g. 5,6,7,8,9 to check the verdicts "
        "on fresh seeds; the validation draws that pick learning rates stay seeds 1000, ...); "
        "default: the profile's count",
    )
    first_seed: int = option(
        None, "run N seeds from this one (S..S+N-1, N from --seeds or the profile) instead of 0", **SEED_RANGE
    )

    def __post_init__(self):
        super().__post_init__()
        if self.seeds is not None and "," in self.seeds and self.first_seed is not None:
            raise ValueError("--first_seed takes a count from --seeds, not a list: give one or the other")
        if len(self.seed_list()) < 2:
            raise ValueError("--seeds: a paired interval needs at least 2 seeds")
        validation = set(range(VALIDATION_SEED, VALIDATION_SEED + self.validation_draws))
        shared = sorted(validation & set(self.seed_list()))
        if shared:
            raise ValueError(
                f"test seed(s) {', '.join(map(str, shared))} are validation draws (seeds {min(validation)}.."
                f"{max(validation)} choose the learning rates): pick test seeds outside them"
            )

    def seed_list(self) -> list[int]:
        seeds = seed_list(self.seeds) if self.seeds else list(range(PROFILES[self.profile]["seeds"]))
        first = self.first_seed if self.first_seed is not None else PROFILES[self.profile].get("first_seed")
        if first is None or (self.seeds and "," in self.seeds):
            return seeds
        return [s + first for s in seeds]

    validation_draws: int = option(
        1,
        "task draws (seeds 1000, 1001, ...) whose mean validation reward picks each learning rate and the "
        "backed configuration: more draws, less chance that one draw's noise decides a rate",
        ge=1,
    )
    output_dir: str = option(None, "where the runs go (default: runs/study-claims-PROFILE)")
    results: str = option(None, "markdown file whose claims section is (re)written (default: OUTPUT/RESULTS.md)")


def interior_learning_rates(grid: tuple[float, ...], validate, names, steps: int = WIDEN_STEPS) -> tuple[dict, dict]:
    """Each method's best learning rate on validation, from one geometric ``grid`` shared
    by every method (equal tuning budgets): while some method's best rate is the grid's smallest
    (largest), the grid gains one step below (above), at most ``steps`` times a side, and every
    method runs at the new rate. ``validate(lr)`` maps a rate to {method: validation reward}.
    Returns (best rate per method, {rate: rewards})."""
    tried = {lr: validate(lr) for lr in grid}

    def best(method):
        return max(tried, key=lambda lr: tried[lr][method])

    if len(grid) < 2:
        return {m: best(m) for m in names}, tried
    step = sorted(grid)[1] / sorted(grid)[0]
    added = {"low": 0, "high": 0}
    while True:
        chosen = {best(m) for m in names}
        edges = [("low", min(tried), 1 / step), ("high", max(tried), step)]
        wanted = [(side, edge * factor) for side, edge, factor in edges if edge in chosen and added[side] < steps]
        if not wanted:
            break
        for side, lr in wanted:
            added[side] += 1
            tried[float(f"{lr:.6g}")] = validate(float(f"{lr:.6g}"))
    return {m: best(m) for m in names}, dict(sorted(tried.items()))


def validation_seeds(profile: dict) -> list[int]:
    """The task draws that choose learning rates: seed 1000 and, with ``validation_draws`` K, the
    next K − 1 (never a test seed: those count up from 0, or from ``--first_seed``)."""
    return [VALIDATION_SEED + i for i in range(profile.get("validation_draws", 1))]


def _validation_dir(out: Path, seed: int, temperature: float, lr: float) -> Path:
    # the first draw keeps its own folder, so a study rerun with more draws reuses its runs
    draw = out / ("validation" if seed == VALIDATION_SEED else f"validation-seed-{seed}")
    return draw / f"T{temperature:g}" / f"lr-{lr:g}"


def _test_dir(out: Path, temperature: float, seed: int) -> Path:
    return out / f"T{temperature:g}" / f"seed-{seed}"


def validated_learning_rates(profile: dict, temperature: float, out: Path) -> tuple[dict, dict]:
    """Each method's learning rate at one label temperature, chosen inside the (widened) grid on
    its mean validation reward over the validation draws. Returns (rate per method, with a
    "default"; every rate's mean rewards)."""

    def validate(lr: float) -> dict:
        draws = []
        for seed in validation_seeds(profile):
            recipe = claims_recipe(profile, temperature, seed, {"default": lr})
            report = _run(recipe, _validation_dir(out, seed, temperature, lr))
            draws.append({m: p["mean"] for m, p in report["policies"].items()})
        return {m: sum(d[m] for d in draws) / len(draws) for m in draws[0]}

    names = methods(profile, temperature)
    best, tried = interior_learning_rates(profile["lrs"], validate, names, profile.get("widen", WIDEN_STEPS))
    return {"default": profile["lrs"][0], **best}, tried


def run_study(profile: dict, seeds: list[int], out: Path, results: Path, command: str) -> dict:
    started = time.time()
    lrs, lr_grid = {}, {}
    for t in profile["temperatures"]:
        lrs[t], lr_grid[t] = validated_learning_rates(profile, t, out)
    confirm = bool(profile.get("primaries_only"))
    chosen = None if confirm else max(CANDIDATES, key=lambda m: lr_grid[MAIN][lrs[MAIN][m]][m])
    reports, noise = {}, {}
    for t in profile["temperatures"]:
        reports[t], noise[t] = {}, {}
        for seed in seeds:
            run_dir = _test_dir(out, t, seed)
            reports[t][seed] = _run(claims_recipe(profile, t, seed, lrs[t]), run_dir)
            noise[t][seed] = {
                regime: _noise(run_dir / stage) for regime, stage in SCORING.items() if (run_dir / stage).exists()
            }
    runs = Runs(reports, noise)
    summary = {
        "command": command,
        "profile": profile,
        "seeds": seeds,
        "validation_seeds": validation_seeds(profile),
        "learning_rates": lrs,
        "lr_grid": lr_grid,
        "chosen": chosen,
        "claims": claim_rows(runs, profile["epochs"], primaries_only=confirm),
        "seconds": time.time() - started,
        "stage_seconds": sum(stage_seconds(d) for d in _run_dirs(profile, lr_grid, seeds, out)),
        "machine": machine(),
        "aim": {} if confirm else {t: runs.paired(t, chosen, "dpo") for t in reports},
        "methods": {t: method_table(runs, t) for t in reports},
        "rewards": {t: {m: runs.reward(t, m) for m in reports[t][seeds[0]]["policies"]} for t in reports},
        **({"power": primary_power(runs)} if confirm else {}),
    }
    write_text(out / "study.json", json.dumps(summary, indent=2, default=str) + "\n")
    if confirm:
        write_section(results, confirm_markdown(summary), CONFIRM_MARKERS)
    else:
        write_section(results, markdown(summary))
    return summary


def _run_dirs(profile: dict, lr_grid: dict, seeds: list[int], out: Path) -> list[Path]:
    """Every pipeline folder a study used: each validation rate per draw, each test seed."""
    dirs = []
    for t in profile["temperatures"]:
        for draw in validation_seeds(profile):
            dirs += [_validation_dir(out, draw, t, lr) for lr in lr_grid[t]]
        dirs += [_test_dir(out, t, seed) for seed in seeds]
    return dirs


def _run(recipe: dict, run_dir: Path) -> dict:
    run_pipeline(recipe, run_dir)
    return json.loads((run_dir / "report" / "results.json").read_text())


def _noise(stage_dir: Path) -> dict:
    rows = [row for _, row in read_records(str(stage_dir / "train_scored.jsonl"))]
    return weights_and_noise(rows, 1.0)[1]


def study(config: StudyConfig) -> int:
    """Entry point of ``deltapref study``."""
    profile = {**PROFILES[config.profile], "validation_draws": config.validation_draws}
    seeds = config.seed_list()
    out = Path(config.output_dir or f"runs/study-claims-{config.profile}")
    claim_output(out, "study claims", flag=None)
    mark_directory(out, "study claims")
    results = Path(config.results) if config.results else out / "RESULTS.md"
    command = command_line("deltapref study claims", config, skip=("output_dir", "results"))
    summary = run_study(profile, seeds, out, results, command)
    for row in summary["claims"]:
        print(f"{row[0]} {row[1]}: {row[3]} ({row[4]}) -> {row[5]}")
    print(f"[study] {summary['seconds'] / 60:.1f} min; results: {results}")
    return 0
