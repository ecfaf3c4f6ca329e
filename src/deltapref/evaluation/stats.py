"""Confidence intervals (thin wrappers over ``scipy.stats``): bootstrap over examples, Student t
over a few seeds, paired differences, Nadeau–Bengio's correction for overlapping resampled splits,
Holm's correction for several comparisons."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from deltapref.errors import DeltaprefError


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
    """Point estimate and percentile-bootstrap interval of ``statistic`` over ``values``
    (``scipy.stats.bootstrap``; one value gives a zero-width interval)."""
    values = finite(values, "values")
    estimate = float(statistic(values))
    if values.size < 2 or np.all(values == values[0]):
        return {"mean": estimate, "low": estimate, "high": estimate, "n": int(values.size)}
    result = scipy.stats.bootstrap(
        (values,),
        statistic,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        vectorized=False,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return {"mean": estimate, "low": float(interval.low), "high": float(interval.high), "n": int(values.size)}


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("need at least 2 values for a t interval")
    return float(scipy.stats.t.ppf(1 - (1 - level) / 2, df))


def t_interval(values, level: float = 0.95) -> dict:
    """Mean and Student-t interval over a few values (e.g. one per seed), with the two-sided
    p-value of a zero mean (one-sample t test) and the values themselves."""
    values = finite(values, "values")
    mean = float(values.mean())
    if values.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": int(values.size), "values": values.tolist()}
    sd = float(values.std(ddof=1))
    half = t_quantile(values.size - 1, level) * sd / math.sqrt(values.size)
    p = float(scipy.stats.ttest_1samp(values, 0.0).pvalue) if sd > 0 else float(mean == 0)
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "n": int(values.size),
        "p": p,
        "values": values.tolist(),
    }


def resampled_interval(differences, test_size: float, train_size: float, level: float = 0.95) -> dict:
    """Nadeau & Bengio's corrected resampled t interval (Machine Learning 52, 2003, Eq. 12) for
    the mean of J paired differences measured on J random train/test splits of one pool: the
    splits overlap, so the variance of the mean is s²·(1/J + n_test/n_train), not s²/J; with
    the two-sided p-value of a zero mean on J − 1 degrees of freedom."""
    values = finite(differences, "differences")
    if values.size < 2:
        raise DeltaprefError("need at least 2 splits for a resampled t interval")
    if test_size <= 0 or train_size <= 0:
        raise DeltaprefError(f"split sizes must be positive (test {test_size}, train {train_size})")
    mean = float(values.mean())
    se = math.sqrt(float(values.var(ddof=1)) * (1 / values.size + test_size / train_size))
    half = t_quantile(values.size - 1, level) * se
    p = float(2 * scipy.stats.t.sf(abs(mean) / se, values.size - 1)) if se > 0 else float(mean == 0)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(values.size), "p": p}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control for several comparisons):
    the i-th smallest p times (m − i + 1), made monotone, capped at 1."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_difference(values, baseline, level: float = 0.95) -> dict:
    """A method against a baseline on the same seeds: the mean paired difference with its t
    interval, how many seeds the method won, and whether the interval excludes zero."""
    values, baseline = finite(values, "values"), finite(baseline, "baseline values")
    if values.size != baseline.size:
        raise DeltaprefError(f"paired values differ in number: {values.size} vs {baseline.size}")
    diffs = values - baseline
    summary = t_interval(diffs, level)
    summary.update(wins=int((diffs > 0).sum()), ties=int((diffs == 0).sum()), differences=diffs.tolist())
    summary["excludes_zero"] = summary["low"] is not None and (summary["low"] > 0 or summary["high"] < 0)
    return summary
