"""How good a scorer is: pairwise accuracy, accuracy by |score| bucket (RDO Table 15),
calibration of σ(Δ), and a difference model's consistency (d(x,y,y) ≈ 0, antisymmetry)."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from deltapref.evaluation.stats import finite

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


def auroc(scores, positive) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count one half) — the Mann–Whitney U statistic over n_pos·n_neg
    (``scipy.stats.mannwhitneyu``); NaN when either class is empty."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    u = scipy.stats.mannwhitneyu(scores[positive], scores[~positive], alternative="two-sided").statistic
    return float(u / (n_pos * n_neg))


ORDER_FLAG = 0.5  # below this order dependence a pair scorer is flagged: its output barely depends on the order


def order_report(d_forward, d_reverse) -> dict:
    """How a pair scorer's output d(x, a, b) depends on the order of a and b. Its antisymmetric
    part (d(a,b) − d(b,a))/2 carries the preference; its symmetric part (d(a,b) + d(b,a))/2 does
    not. ``order_dependence`` = mean |antisymmetric| / (mean |antisymmetric| + mean |symmetric|):
    1 for a perfectly antisymmetric model, 0 for one that ignores the order (then any accuracy of
    the shown order is an artifact of which response comes first)."""
    forward, reverse = np.asarray(d_forward, dtype=float), np.asarray(d_reverse, dtype=float)
    anti, sym = np.mean(np.abs(forward - reverse)) / 2, np.mean(np.abs(forward + reverse)) / 2
    dependence = float(anti / (anti + sym)) if anti + sym > 0 else 0.0
    correlation = float(np.corrcoef(forward, reverse)[0, 1]) if forward.std() > 0 and reverse.std() > 0 else 0.0
    return {
        "accuracy_chosen_first": pairwise_accuracy(forward),
        "accuracy_rejected_first": pairwise_accuracy(-reverse),
        "order_dependence": dependence,
        "order_correlation": correlation,
        "order_insensitive": dependence < ORDER_FLAG,
    }


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
    task), also accuracy against the gold preference and how often the labels agree with it.
    A pair scorer (``d_reverse`` given: its output with the responses swapped) is judged on its
    order-balanced score (d(x,w,l) − d(x,l,w))/2, with how much its output depends on the order."""
    forward = finite(deltas, "scores")
    deltas = forward if d_reverse is None else (forward - finite(d_reverse, "scores")) / 2
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
        report["label_auroc"] = auroc(deltas, gold > 0)  # does a larger score mark a correctly labeled pair?
    report.update(consistency(forward, d_reverse, d_duplicate))
    if d_reverse is not None:
        report.update(order_report(forward, d_reverse))
    return report
