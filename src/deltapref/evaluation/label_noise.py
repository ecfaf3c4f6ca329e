"""The share of wrong labels in preference data, estimated from a scorer's held-out reward
differences instead of assumed (rDPO and cDPO take it as ``--epsilon``).

Model: the probability that a pair's label is the right one, given the scorer's Δ for the pair as
labelled (positive: the scorer agrees), is q(Δ) = ε₀ + (1 − 2ε₀)·σ(a·Δ): Platt scaling (slope a)
with a floor ε₀ for labels flipped whatever the gap. a and ε₀ are fitted by maximum likelihood of
the labels as given, each pair seen in both orders, on *held-out* Δ (a cross-fitted scorer's:
each pair scored by the fold model that never trained on it, so a memorized label cannot look
certain). The estimate is the mean over pairs of min(q, 1 − q), the chance that the label sits on
the side the calibrated scorer finds less likely. Under Bradley–Terry labels and a Δ proportional
to the true gap it is the expected share of labels that disagree with the true reward's sign;
under flips at rate ε of pairs the scorer separates, it is ε. A scorer that separates poorly pulls
q toward 1/2 and the estimate up. The interval is a percentile bootstrap over pairs, refitting
each time. ``docs/RESULTS.md`` holds it against the built-in task's true shares.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

METHOD = "mean of min(q, 1 − q), q(Δ) = ε₀ + (1 − 2ε₀)·σ(aΔ) fitted on held-out Δ; bootstrap interval"


def _fit(delta: np.ndarray) -> tuple[float, float]:
    """(a, ε₀) maximizing Σ log q(Δ_i) (both orders of a pair give the same term twice)."""

    def loss(params):
        a, floor = params
        q = floor + (1 - 2 * floor) * expit(a * delta)
        return -np.log(np.clip(q, 1e-12, 1.0)).mean()

    scale = 1.0 / max(float(np.std(delta)), 1e-6)
    best = minimize(loss, x0=(scale, 0.05), bounds=[(0.0, 1e3 * scale), (0.0, 0.499)], method="L-BFGS-B")
    return float(best.x[0]), float(best.x[1])


def wrong_label_share(delta: np.ndarray, a: float, floor: float) -> float:
    """Mean of min(q, 1 − q) with q(Δ) = floor + (1 − 2·floor)·σ(aΔ)."""
    q = floor + (1 - 2 * floor) * expit(a * delta)
    return float(np.minimum(q, 1 - q).mean())


def estimate_label_noise(delta, resamples: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """The estimated share of wrong labels from held-out ``delta`` (one Δ per pair, for the pair
    as labelled), with a percentile bootstrap interval and the fitted calibration."""
    delta = np.asarray(delta, dtype=np.float64)
    delta = delta[np.isfinite(delta)]
    if len(delta) < 2:
        raise ValueError("estimating the share of wrong labels needs the Δ of at least 2 pairs")
    a, floor = _fit(delta)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        sample = delta[rng.integers(0, len(delta), len(delta))]
        boot.append(wrong_label_share(sample, *_fit(sample)))
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {
        "estimate": wrong_label_share(delta, a, floor),
        "low": float(low),
        "high": float(high),
        "level": level,
        "pairs": int(len(delta)),
        "scorer_agrees": float((delta > 0).mean()),
        "slope": a,
        "floor": floor,
        "method": METHOD,
    }
