"""Bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values, statistic=np.mean, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Point estimate and percentile-bootstrap interval of ``statistic`` over ``values``."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values to bootstrap")
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
