"""The training data made ready for a policy objective, before any model loads: pairs in its
layout (as ranked lists for RRHF), the columns it reads checked, doubted labels corrected and the
per-pair label columns added (``labels``), and the weights computed over the whole data when a
control (``--coef_control``) or ``--coef_normalize`` needs them: ``pair_weights``."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from deltapref import coefficients
from deltapref.data.schema import DataError
from deltapref.objectives import PolicyLossOptions, PolicyObjective
from deltapref.policy.data import check_weight_column, pair_score_columns, pairs_as_ranked, warn_if_scores_tie
from deltapref.policy.labels import corrected, with_label_columns
from deltapref.scorer_kinds import columns_needed

logger = logging.getLogger(__name__)
PREPARED = "coef_prepared"  # the column of weights computed here, read as they are


def check_columns(objective: PolicyObjective, options: PolicyLossOptions, columns: list[str], source: str) -> None:
    """Refuse data that lacks a column the objective reads, naming how to add it."""
    missing = [c for c in objective.required_columns(options) if c not in columns]
    if missing:
        hint = (
            " (ranked lists: prompt, responses, scores)" if objective.ranked else " (add them with `deltapref score`)"
        )
        coef = f" --coef {options.coef}" if options.coef else ""
        raise DataError(f"--loss {options.loss}{coef} needs column(s) {', '.join(missing)}{hint}", source=source)


def pair_weights(data, options: PolicyLossOptions, seed: int) -> np.ndarray:
    """Each pair's weight as the run uses it (fp64): ``--coef`` through its weighting, then its
    control (``--coef_control``): *shuffle* permutes the weights across pairs (seeded: their
    distribution without their information), *sign* gives each pair the mean weight of the pairs
    on its side of Δ = 0 (which labels the source doubts, not by how much), *magnitude* weighs
    |Δ| (how far apart, not which side); then divided by their mean with ``--coef_normalize``."""
    source, weighting = options.weight_source(), options.weighting()
    columns = {c: torch.tensor(data[c], dtype=torch.float64) for c in columns_needed(options.coef)}
    if options.coef_control in ("sign", "magnitude"):
        delta = source.delta(columns)
        weights = weighting(delta.abs() if options.coef_control == "magnitude" else delta).double().numpy()
        if options.coef_control == "sign":
            doubted = delta.numpy() <= 0
            for side in (doubted, ~doubted):
                weights[side] = weights[side].mean() if side.any() else 0.0
    else:
        weights = coefficients.coefficients(source, columns, weighting).double().numpy()
    if options.coef_control == "shuffle":
        weights = np.random.default_rng(seed).permutation(weights)
    if options.coef_normalize:
        weights = weights / weights.mean()
    return weights


def _with_weights(data, objective: PolicyObjective, options: PolicyLossOptions, source: str, seed: int):
    """The data with the run's weights as a column (``pair_weights``), the options reading it, and
    the weights' mean before normalization."""
    if objective.ranked:
        raise DataError("--coef_normalize and --coef_control work on pairs, not on ranked lists", source=source)
    raw = pair_weights(data, dataclasses.replace(options, coef_normalize=False), seed)
    mean = float(raw.mean())
    if options.coef_normalize and not mean > 0:
        raise DataError(f"the weights from --coef {options.coef} have mean {mean}: cannot normalize", source=source)
    if PREPARED in data.column_names:
        data = data.remove_columns(PREPARED)
    data = data.add_column(PREPARED, (raw / mean if options.coef_normalize else raw).tolist())
    as_they_are = dict(coef=PREPARED, alpha=1.0, coef_temperature=1.0, coef_weighting="rdo", coef_control="none")
    return data, dataclasses.replace(options, **as_they_are), mean


def prepared(data, objective: PolicyObjective, options: PolicyLossOptions, source: str, seed: int = 0):
    """The data in the objective's layout (pairs as ranked lists for a ranked objective), its
    columns checked, labels corrected and the per-pair label columns added (``policy.labels``),
    and the weights computed here when a control or ``--coef_normalize`` needs them (``seed``
    shuffles). Returns (data, the options the trainer
    reads, the weights' mean before normalization or None, what the label options did);
    summaries and cards name the options as asked."""
    if objective.ranked and "responses" not in data.column_names:
        scores = pair_score_columns(data)
        if options.coef and not scores:
            raise DataError(
                f"--loss {options.loss} --coef {options.coef} weighs each pair by its score gap, but these pairs "
                "carry no scores (reward_chosen/reward_rejected from `deltapref score`, or chosen_score/"
                "rejected_score): every weight would be the same constant; score them or drop --coef",
                source=source,
            )
        logger.info("RRHF on pairs: scores from %s", ", ".join(scores) if scores else "the labels (1 and 0)")
        data = pairs_as_ranked(data)
    if not objective.ranked and "responses" in data.column_names:
        raise DataError(
            f"holds ranked lists (prompt, responses, scores); {options.loss} trains on pairs (prompt, chosen, "
            "rejected): pass pairs, or align with --loss rrhf",
            source=source,
        )
    check_columns(objective, options, data.column_names, source)
    if objective.ranked:
        warn_if_scores_tie(data, source)
    elif options.coef and options.precomputed_weights():
        check_weight_column(data[options.coef], options.coef, source)
    data, correction = corrected(data, options, source)
    data, labels = with_label_columns(data, options, source)
    labels = {**labels, "label_correction": correction} if correction else labels
    if options.coef and (options.coef_normalize or options.coef_control != "none"):
        return (*_with_weights(data, objective, options, source, seed), labels)
    return data, options, None, labels
