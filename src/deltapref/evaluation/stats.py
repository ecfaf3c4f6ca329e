"""Bootstrap confidence intervals."""

from __future__ import annotations

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
