"""``deltapref study decide``: the decisive test of magnitude, named here before its seeds ran
(2026-12-07, committed before any seed from 6000 was drawn).

What is fixed in this file: the conditions (30% gap-independent flips; Bradley–Terry labels at
T = 1), the arm under test (in each condition, the learned arm — one a user without gold rewards
can run, whose per-pair information comes from a trained scorer — with the best mean validation
reward in the map, at its validated rate), its two opponents (DPO, and rDPO: whichever of its
global-ε arms the map's validation prefers), the seeds (from 6000: no earlier run used them),
4 samples per prompt, SESOI +0.05 gold reward, and the family: Holm's correction across these four
primaries and the confirmatory run's four together (eight). The seed count comes from a power
analysis on the map's paired SDs at the family's Bonferroni level (Holm's strictest step), capped
by ``--max_seeds``: the power each primary had at the seeds that ran is reported with it."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from deltapref.artifacts.outputs import claim_output, mark_directory, write_text
from deltapref.config.commands import Options, command_line, option
from deltapref.evaluation.stats import paired_difference
from deltapref.models.provenance import machine
from deltapref.recipes.pipeline import run_pipeline, stage_seconds
from deltapref.study.claims import PRIMARY_RUNS
from deltapref.study.decisive_markdown import decisive_markdown
from deltapref.study.map_arms import CONDITIONS, LABELS, learned_candidates, seed_recipe
from deltapref.study.markdown import write_section
from deltapref.study.verdicts import SESOI, family_readings, power, seeds_needed

DECISIVE_CONDITIONS = ("flip-30", "bt-1")
RDPO_ARMS = ("rdpo", "rdpo-auto")
FIRST_SEED = 6000
PILOT_SEED = 5900  # times one pipeline per condition before the test; never a test seed
SAMPLES = 4
FAMILY = 8  # these four primaries and the confirmatory run's four
LEVEL = 0.05
DECISIVE_MARKERS = ("<!-- decisive:start -->", "<!-- decisive:end -->")


@dataclass
class DecideConfig(Options):
    map: str = option("docs/study-map.json", "the fair map's summary (map.json): its validation picks the arms")
    confirm: str = option("docs/study-confirm.json", "the confirmatory run's summary: its primaries join the family")
    max_seeds: int = option(12, "run at most this many seeds per condition (the power they had is reported)", ge=2)
    pilot: bool = option(False, "run one pilot seed per condition (5900), print its time, decide nothing")
    output_dir: str = option("runs/study-decide", "where the runs go")
    results: str = option(None, "markdown file whose decisive section is (re)written (default: OUTPUT/RESULTS.md)")


def picks(summary: dict) -> dict[str, dict[str, str]]:
    """Per condition, the arm under test and its rDPO opponent, from the map's validation means at
    each arm's validated rate (never from its test seeds)."""
    chosen = {}
    for condition in DECISIVE_CONDITIONS:
        rates, validation = summary["rates"][condition], summary["validation"][condition]

        def score(arm, rates=rates, validation=validation):
            return {float(lr): mean for lr, mean in validation[arm].items()}[float(rates[arm])]

        chosen[condition] = {
            "arm": max(learned_candidates(), key=score),
            "rdpo": max(RDPO_ARMS, key=score),
        }
    return chosen


def primaries(chosen: dict) -> list[tuple[str, str, str]]:
    """(condition, arm, baseline) of each decisive primary, in a fixed order."""
    return [(c, chosen[c]["arm"], b) for c in DECISIVE_CONDITIONS for b in ("dpo", chosen[c]["rdpo"])]


def planned_seeds(summary: dict, chosen: dict, level: float) -> dict:
    """Per primary, the map's paired SD over its test seeds and the seeds 80% power against SESOI
    needs at ``level``."""
    plan = {}
    for condition, arm, baseline in primaries(chosen):
        rewards = summary["cells"][condition]["rewards"]
        sd = statistics.stdev([a - b for a, b in zip(rewards[arm], rewards[baseline])])
        plan[f"{arm} − {baseline} ({LABELS[condition]})"] = {
            "sd": sd,
            "seeds_needed": seeds_needed(sd, SESOI["gold reward"], level),
        }
    return plan


def confirm_primaries(path: Path) -> dict[str, float]:
    """The confirmatory run's primaries' p-values, recomputed from its per-seed rewards."""
    summary = json.loads(path.read_text())
    p = {}
    for text, (t, method, baseline) in PRIMARY_RUNS.items():
        rewards = summary["rewards"][str(t)]
        p[text] = paired_difference(rewards[method], rewards[baseline])["p"]
    return p


def run_decisive(config: DecideConfig, out: Path) -> dict:
    started, summary = time.time(), json.loads(Path(config.map).read_text())
    chosen = picks(summary)
    plan = planned_seeds(summary, chosen, 1 - LEVEL / FAMILY)
    needed = max(p["seeds_needed"] or 2 for p in plan.values())
    seeds = [PILOT_SEED] if config.pilot else [FIRST_SEED + i for i in range(min(needed, config.max_seeds))]
    rewards, dirs = {}, []
    for condition in DECISIVE_CONDITIONS:
        arms = ("dpo", chosen[condition]["arm"], chosen[condition]["rdpo"])
        rates = {arm: summary["rates"][condition][arm] for arm in arms}
        rewards[condition] = {arm: [] for arm in ("sft", *arms)}
        for seed in seeds:
            run_dir = out / condition / f"seed-{seed}"
            run_pipeline(seed_recipe(CONDITIONS[condition], seed, rates, samples=SAMPLES), run_dir)
            dirs.append(run_dir)
            report = json.loads((run_dir / "report" / "results.json").read_text())
            for arm in rewards[condition]:
                rewards[condition][arm].append(report["policies"][arm]["mean"])
    result = {
        "command": command_line("deltapref study decide", config, skip=("output_dir", "results")),
        "named": "2026-12-07",
        "family": FAMILY,
        "level": LEVEL,
        "samples": SAMPLES,
        "chosen": chosen,
        "plan": plan,
        "seeds": seeds,
        "rewards": rewards,
        "seconds": time.time() - started,
        "stage_seconds": sum(stage_seconds(d) for d in dirs),
        "machine": machine(),
    }
    if not config.pilot:
        result["primaries"] = judged(result, confirm_primaries(Path(config.confirm)))
    return result


def judged(result: dict, confirm: dict[str, float]) -> dict:
    """Each decisive primary read inside the family with the confirmatory primaries
    (``verdicts.family_readings``), with its SD and its power at the family's Bonferroni level."""
    differences = {}
    for condition, arm, baseline in primaries(result["chosen"]):
        rewards = result["rewards"][condition]
        differences[f"{arm} − {baseline} ({LABELS[condition]})"] = [
            a - b for a, b in zip(rewards[arm], rewards[baseline])
        ]
    rows, confirm_holm = family_readings(differences, confirm, LEVEL)
    for name, row in rows.items():
        sd = statistics.stdev(differences[name])
        row["sd"] = sd
        row["power"] = power(sd, SESOI["gold reward"], len(differences[name]), 1 - LEVEL / FAMILY) if sd > 0 else 1.0
    return {"decisive": rows, "confirm_holm_p": confirm_holm}


def decide(config: DecideConfig) -> int:
    """Entry point of ``deltapref study decide``."""
    out = Path(config.output_dir)
    claim_output(out, "study decide", flag=None)
    mark_directory(out, "study decide")
    result = run_decisive(config, out)
    write_text(out / ("pilot.json" if config.pilot else "decisive.json"), json.dumps(result, indent=2) + "\n")
    if config.pilot:
        per = result["stage_seconds"] / len(DECISIVE_CONDITIONS)
        print(f"[study decide] pilot: {per / 60:.1f} min per seed and condition; plan: {json.dumps(result['plan'])}")
        return 0
    results = Path(config.results) if config.results else out / "RESULTS.md"
    write_section(results, decisive_markdown(result), DECISIVE_MARKERS)
    for name, row in result["primaries"]["decisive"].items():
        print(f"{name}: {row['interval']['mean']:+.3f}, Holm p {row['holm_p']:.3f} -> {row['verdict']}")
    print(f"[study decide] {result['seconds'] / 60:.1f} min; results: {results}")
    return 0
