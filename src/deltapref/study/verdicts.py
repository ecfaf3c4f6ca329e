"""Verdicts that can say "no effect": a claim's interval read against its threshold and a smallest
effect size of interest (SESOI), declared here per unit, with the seeds a conclusive answer needs.

- *reproduced*: the interval lies on the claim's side of the threshold;
- *not reproduced*: it lies on the other side; either with "(smaller than SESOI)" when the whole
  interval lies within threshold ± SESOI (an effect that exists but is too small to matter);
- *no effect of that size*: it contains the threshold but excludes an effect of SESOI or more in
  the claim's direction (in particular: the interval inside threshold ± SESOI);
- *underpowered*: it contains both the threshold and threshold + SESOI; printed with the seeds
  a paired t test at the same level would need for 80% power against SESOI, from this SD.

Every number comes from one interval at one level (95% for a primary comparison, Bonferroni for
a secondary one), and the displayed p-value is that interval's (Bonferroni-adjusted): the verdict
and the p-value never disagree.
"""

from __future__ import annotations

import math

import scipy.stats

from deltapref.evaluation.stats import holm, t_interval

# The smallest effect that would matter, per unit of a comparison (decided 2026-12-06 from the
# task's scale, before the confirmatory run): mean gold reward of completions — about 7% of what
# DPO adds to SFT on this task (the confirmatory run measured SFT → DPO +0.71 at T = 0.5 and +0.78
# at T = 1), above the gold bound's smallest gain (+0.023 at T = 0.25); scorer accuracy — two
# points (RDO's regularizer ablation claims +0.007, the difference-vs-reward claim +0.040);
# AUROC — 0.05 above chance.
SESOI = {"gold reward": 0.05, "accuracy": 0.02, "AUROC": 0.05}
POWER = 0.8
SMALL = "smaller than SESOI"  # the qualifier of a side's verdict whose whole interval lies within ±SESOI
MAX_SEEDS = 10_000


def power(sd: float, sesoi: float, n: int, level: float = 0.95) -> float:
    """The probability that a paired t test of a zero mean at two-sided ``level`` over ``n`` seeds
    rejects in the effect's direction when the true mean is ``sesoi`` and paired differences have
    SD ``sd`` (noncentral t: P(T_{n−1, δ√n} > t_{n−1, 1−α/2}), δ = sesoi / sd)."""
    critical = scipy.stats.t.ppf(1 - (1 - level) / 2, n - 1)
    return float(scipy.stats.nct.sf(critical, n - 1, sesoi / sd * math.sqrt(n)))


def seeds_needed(sd: float, sesoi: float, level: float = 0.95, target: float = POWER) -> int | None:
    """The fewest seeds n whose paired t test has ``power`` ≥ ``target`` against ``sesoi`` at this
    SD. None if sd is 0 or unknown."""
    if not sd or not math.isfinite(sd) or sesoi <= 0:
        return None
    return next((n for n in range(2, MAX_SEEDS + 1) if power(sd, sesoi, n, level) >= target), MAX_SEEDS)


def verdict(interval: dict, threshold: float = 0.0, sesoi: float | None = None, level: float = 0.95) -> str:
    """The verdict of one interval (``low``, ``high``; ``values`` for the SD) on a claim that
    the quantity exceeds ``threshold``; without ``sesoi`` a contained threshold reads *inconclusive*."""
    if interval.get("low") is None:
        return f"inconclusive ({interval.get('why', 'one seed')})"
    small = sesoi is not None and threshold - sesoi < interval["low"] and interval["high"] < threshold + sesoi
    qualifier = f" ({SMALL})" if small else ""
    if interval["low"] > threshold:
        return "reproduced" + qualifier
    if interval["high"] < threshold:
        return "not reproduced" + qualifier
    if sesoi is None:
        return "inconclusive"
    if interval["high"] < threshold + sesoi:
        return "no effect of that size"
    values = interval.get("values") or []
    sd = float(scipy.stats.tstd(values)) if len(values) > 1 else float("nan")
    needed = seeds_needed(sd, sesoi, level)
    return "underpowered" + (f" (~{needed} seeds for 80% power)" if needed else "")


def relabel(verdict_text: str, words: dict[str, str]) -> str:
    """A verdict with its word renamed (e.g. "reproduced" -> "smaller"), its qualifier kept."""
    word, _, qualifier = verdict_text.partition(" (")
    return words.get(word, word) + (f" ({qualifier}" if qualifier else "")


def bonferroni_p(p: float, m: int) -> float:
    """A secondary comparison's p-value adjusted as its Bonferroni interval is (m comparisons)."""
    return min(1.0, p * m)


def corrected_verdict(mean: float, adjusted_p: float, interval: dict, sesoi: float, level: float = 0.05) -> str:
    """The verdict of a comparison inside a corrected family: *reproduced* / *not reproduced* when
    its adjusted (Holm) p-value is below ``level`` (on the side of ``mean``); otherwise *no effect
    of that size* when its family interval (Bonferroni: Holm has no interval) lies below +SESOI,
    else *underpowered*; and *harm not excluded* when that interval reaches below −SESOI."""
    if adjusted_p < level:
        said = "reproduced" if mean > 0 else "not reproduced"
    elif interval["high"] < sesoi:
        said = "no effect of that size"
    else:
        said = "underpowered"
    return said + ("; harm not excluded" if interval["low"] < -sesoi and said != "not reproduced" else "")


def family_readings(
    differences: dict[str, list[float]], others: dict[str, float] | None = None, level: float = 0.05
) -> tuple[dict[str, dict], dict[str, float]]:
    """Comparisons (paired differences per seed) read inside one family with ``others`` (p-values
    of comparisons judged elsewhere that share it): each one's 95% interval, its Holm-adjusted p
    across the family, its Bonferroni interval at the family's size and ``corrected_verdict``
    (gold reward's SESOI). Returns (those readings, the others' adjusted p-values)."""
    others = others or {}
    size = len(differences) + len(others)
    intervals = {name: t_interval(d) for name, d in differences.items()}
    names = [*intervals, *others]
    adjusted = dict(zip(names, holm([i["p"] for i in intervals.values()] + list(others.values()))))
    readings = {}
    for name, d in differences.items():
        family = t_interval(d, 1 - level / size)
        said = corrected_verdict(intervals[name]["mean"], adjusted[name], family, SESOI["gold reward"], level)
        readings[name] = {
            "interval": intervals[name],
            "p": intervals[name]["p"],
            "holm_p": adjusted[name],
            "family_interval": family,
            "verdict": said,
        }
    return readings, {name: adjusted[name] for name in others}
