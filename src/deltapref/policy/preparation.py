"""The training data made ready for a policy objective, before any model loads: pairs in its
layout (as ranked lists for RRHF), the columns it reads checked, doubted labels corrected and the
per-pair label columns added (``labels``), and with ``--coef_normalize`` the weights divided by
their mean."""

from __future__ import annotations

import dataclasses
import logging

import torch

from deltapref import coefficients
from deltapref.data.schema import DataError
from deltapref.objectives import PolicyLossOptions, PolicyObjective
from deltapref.policy.data import check_weight_column, pair_score_columns, pairs_as_ranked, warn_if_scores_tie
from deltapref.policy.labels import corrected, with_label_columns
from deltapref.scorer_kinds import columns_needed

logger = logging.getLogger(__name__)
NORMALIZED = "coef_normalized"


def check_columns(objective: PolicyObjective, options: PolicyLossOptions, columns: list[str], source: str) -> None:
    """Refuse data that lacks a column the objective reads, naming how to add it."""
    missing = [c for c in objective.required_columns(options) if c not in columns]
    if missing:
        hint = (
            " (ranked lists: prompt, responses, scores)" if objective.ranked else " (add them with `deltapref score`)"
        )
        coef = f" --coef {options.coef}" if options.coef else ""
        raise DataError(f"--loss {options.loss}{coef} needs column(s) {', '.join(missing)}{hint}", source=source)


def normalized_weights(data, objective: PolicyObjective, options: PolicyLossOptions, source: str):
    """The data with a ``coef_normalized`` column (the run's weights divided by their mean over the
    data), the options reading it, and that mean."""
    if objective.ranked:
        raise DataError("--coef_normalize works on pairs, not on ranked lists", source=source)
    columns = {c: torch.tensor(data[c], dtype=torch.float64) for c in columns_needed(options.coef)}
    weights = coefficients.coefficients(options.weight_source(), columns, options.weighting()).double()
    mean = float(weights.mean())
    if not mean > 0:
        raise DataError(f"the weights from --coef {options.coef} have mean {mean}: cannot normalize", source=source)
    if NORMALIZED in data.column_names:
        data = data.remove_columns(NORMALIZED)
    data = data.add_column(NORMALIZED, (weights / mean).tolist())
    as_they_are = dict(coef=NORMALIZED, alpha=1.0, coef_temperature=1.0, coef_weighting="rdo")  # already weighted
    return data, dataclasses.replace(options, **as_they_are), mean


def prepared(data, objective: PolicyObjective, options: PolicyLossOptions, source: str):
    """The data in the objective's layout (pairs as ranked lists for a ranked objective), its
    columns checked, labels corrected and the per-pair label columns added (``policy.labels``),
    and with ``--coef_normalize`` the normalized weights. Returns (data, the options the trainer
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
    if options.coef and options.coef_normalize:
        return (*normalized_weights(data, objective, options, source), labels)
    return data, options, None, labels
