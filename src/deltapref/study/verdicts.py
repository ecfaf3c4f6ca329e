"""Verdicts that can say "no effect": a claim's interval read against its threshold and a smallest
effect size of interest (SESOI), declared here per unit, with the seeds a conclusive answer needs.

- *reproduced*: the interval lies on the claim's side of the threshold;
- *not reproduced*: it lies on the other side;
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

# The smallest effect that would matter, per unit of a comparison (decided 2026-12-06 from the
# task's scale, before the confirmatory run): mean gold reward of completions — the gold bound's
# smallest gain (+0.023 at T = 0.25) is below it, one clear step of the demo's policies
# (SFT → DPO ≈ +1.2) far above; scorer accuracy — two points (RDO's regularizer ablation claims
# +0.007, the difference-vs-reward claim +0.040); AUROC — 0.05 above chance.
SESOI = {"gold reward": 0.05, "accuracy": 0.02, "AUROC": 0.05}
POWER = 0.8
MAX_SEEDS = 10_000


def seeds_needed(sd: float, sesoi: float, level: float = 0.95, power: float = POWER) -> int | None:
    """The fewest seeds n for which a paired t test of a zero mean at two-sided ``level`` detects a
    true mean of ``sesoi`` with probability ``power``, when paired differences have SD ``sd``
    (noncentral t: P(T_{n−1, δ√n} > t_{n−1, 1−α/2}), δ = sesoi / sd). None if sd is 0 or unknown."""
    if not sd or not math.isfinite(sd) or sesoi <= 0:
        return None
    effect = sesoi / sd
    for n in range(2, MAX_SEEDS + 1):
        critical = scipy.stats.t.ppf(1 - (1 - level) / 2, n - 1)
        if scipy.stats.nct.sf(critical, n - 1, effect * math.sqrt(n)) >= power:
            return n
    return MAX_SEEDS


def verdict(interval: dict, threshold: float = 0.0, sesoi: float | None = None, level: float = 0.95) -> str:
    """The verdict of one interval (``low``, ``high``; ``values`` for the SD) on a claim that
    the quantity exceeds ``threshold``; without ``sesoi`` a contained threshold reads *inconclusive*."""
    if interval.get("low") is None:
        return f"inconclusive ({interval.get('why', 'one seed')})"
    if interval["low"] > threshold:
        return "reproduced"
    if interval["high"] < threshold:
        return "not reproduced"
    if sesoi is None:
        return "inconclusive"
    if interval["high"] < threshold + sesoi:
        return "no effect of that size"
    values = interval.get("values") or []
    sd = float(scipy.stats.tstd(values)) if len(values) > 1 else float("nan")
    needed = seeds_needed(sd, sesoi, level)
    return "underpowered" + (f" (~{needed} seeds for 80% power)" if needed else "")


def bonferroni_p(p: float, m: int) -> float:
    """A secondary comparison's p-value adjusted as its Bonferroni interval is (m comparisons)."""
    return min(1.0, p * m)
