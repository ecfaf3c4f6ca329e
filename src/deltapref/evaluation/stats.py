"""Confidence intervals: bootstrap over examples, Student t over a few seeds, paired differences."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DeltaprefError


def finite(values, what: str) -> np.ndarray:
    """``values`` as a float array, refusing an empty one or any NaN / infinity (a metric never
    averages them in silently)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise DeltaprefError(f"no {what} to summarize")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DeltaprefError(
            f"{bad.size} of {values.size} {what} are not finite (first at index {bad[0]}: "
            f"{values[bad[0]]}); refusing to average them"
        )
    return values


def bootstrap_ci(values, statistic=np.mean, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Point estimate and percentile-bootstrap interval of ``statistic`` over ``values``."""
    values = finite(values, "values")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(n_resamples, values.size))
    stats = np.array([statistic(values[row]) for row in draws])
    tail = (1 - level) / 2
    return {
        "mean": float(statistic(values)),
        "low": float(np.quantile(stats, tail)),
        "high": float(np.quantile(stats, 1 - tail)),
        "n": int(values.size),
    }


T_975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (table to 30, then the
    Cornish–Fisher expansion around the normal quantile)."""
    if df < 1:
        raise ValueError("need at least 2 values for a t interval")
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def t_interval(values) -> dict:
    """Mean and 95% Student-t interval over a few values (e.g. one per seed)."""
    values = finite(values, "values")
    mean = float(values.mean())
    if values.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": int(values.size)}
    half = t_quantile_975(values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(values.size)}


def paired_difference(values, baseline) -> dict:
    """A method against a baseline on the same seeds: the mean paired difference with its 95%
    t interval, how many seeds the method won, and whether the interval excludes zero."""
    values, baseline = finite(values, "values"), finite(baseline, "baseline values")
    if values.size != baseline.size:
        raise DeltaprefError(f"paired values differ in number: {values.size} vs {baseline.size}")
    diffs = values - baseline
    summary = t_interval(diffs)
    summary.update(wins=int((diffs > 0).sum()), ties=int((diffs == 0).sum()), differences=diffs.tolist())
    summary["excludes_zero"] = summary["low"] is not None and (summary["low"] > 0 or summary["high"] < 0)
    return summary
