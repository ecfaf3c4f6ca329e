"""How good a scorer is: pairwise accuracy, accuracy by |score| bucket (RDO Table 15),
calibration of σ(Δ), and a difference model's consistency (d(x,y,y) ≈ 0, antisymmetry)."""

from __future__ import annotations

import math

import numpy as np

from .stats import finite

BUCKET_EDGES = (0.0, 1.0, 2.0, 3.0, math.inf)


def pairwise_accuracy(deltas) -> float:
    """Share of pairs whose score favors the labeled winner (a tie counts one half)."""
    deltas = np.asarray(deltas, dtype=float)
    return float(np.mean((deltas > 0) + 0.5 * (deltas == 0)))


def accuracy_by_bucket(deltas, edges=BUCKET_EDGES) -> list[dict]:
    """Accuracy within |Δ| buckets [0,1), [1,2), [2,3), [3,∞) (RDO Table 15)."""
    deltas = np.asarray(deltas, dtype=float)
    table = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (np.abs(deltas) >= low) & (np.abs(deltas) < high)
        table.append(
            {
                "bucket": f"{low:g}-{high:g}" if math.isfinite(high) else f">={low:g}",
                "pairs": int(inside.sum()),
                "accuracy": pairwise_accuracy(deltas[inside]) if inside.any() else None,
            }
        )
    return table


def calibration(deltas, bins: int = 10) -> dict:
    """Expected calibration error and Brier score of P(chosen wins) = σ(Δ)."""
    deltas = np.asarray(deltas, dtype=float)
    p = 1 / (1 + np.exp(-deltas))
    brier = float(np.mean((p - 1) ** 2))
    confidence = np.maximum(p, 1 - p)
    correct = (p > 0.5).astype(float) + 0.5 * (p == 0.5)
    edges = np.linspace(0.5, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            ece += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return {"ece": float(ece), "brier": brier}


def consistency(d_forward, d_reverse=None, d_duplicate=None) -> dict:
    """Mean |d(x,y,y)| and mean |d(x,a,b) + d(x,b,a)| (both 0 for a perfectly regular model)."""
    out = {}
    if d_duplicate is not None:
        out["mean_abs_d_same"] = float(np.mean(np.abs(d_duplicate)))
    if d_reverse is not None:
        out["mean_abs_antisymmetry"] = float(np.mean(np.abs(np.asarray(d_forward) + np.asarray(d_reverse))))
    return out


def scorer_report(deltas, gold_deltas=None, d_reverse=None, d_duplicate=None) -> dict:
    """Everything above for one scorer on one labeled set; with gold reward gaps (built-in
    task), also accuracy against the gold preference and how often the labels agree with it."""
    deltas = finite(deltas, "scores")
    report = {
        "pairs": len(deltas),
        "accuracy": pairwise_accuracy(deltas),
        "by_bucket": accuracy_by_bucket(deltas),
        **calibration(deltas),
        "mean_abs_score": float(np.mean(np.abs(deltas))),
    }
    if gold_deltas is not None:
        deltas, gold = np.asarray(deltas, dtype=float), np.asarray(gold_deltas, dtype=float)
        report["gold_accuracy"] = pairwise_accuracy(np.sign(gold) * deltas)
        report["label_gold_agreement"] = pairwise_accuracy(gold)
    report.update(consistency(deltas, d_reverse, d_duplicate))
    return report
