"""Held-out evaluation of a saved scorer (``train-scorer --eval_data`` and ``evaluate scorer``);
a cross-fitted scorer scores each pair with the fold model that never saw it."""

from __future__ import annotations

from deltapref.columns import GOLD_REWARD
from deltapref.config.commands import TokenizationConfig
from deltapref.data.loading import load_preferences
from deltapref.data.splits import fold_of
from deltapref.evaluation.scorer_metrics import scorer_report
from deltapref.models.loading import load_scorer, scorer_members
from deltapref.scorer_kinds import SCORER_KINDS
from deltapref.scorer_kinds.inference import pair_differences, pointwise_rewards, routed


def evaluate_scorer(
    model_dir: str, kind: str, data: str, tokenization: TokenizationConfig, format: str = "auto", batch_size: int = 32
) -> dict:
    """Accuracy, buckets, calibration and (pair scorers) order dependence and consistency."""
    pairwise = SCORER_KINDS[kind].pairwise
    SCORER_KINDS[kind].check(model_dir)
    paths = scorer_members(model_dir)
    members = [load_scorer(path) for path in paths]
    rows, _ = load_preferences(data, format=format, pairs_for="evaluate scorer")
    folds = [fold_of(row, len(members)) for row in rows]

    def score(fn, *columns):
        return routed(fn, members, folds, *columns, config=tokenization, batch_size=batch_size)

    prompts, chosen, rejected = rows["prompt"], rows["chosen"], rows["rejected"]
    reverse = duplicate = None
    if pairwise:
        deltas = score(pair_differences, prompts, chosen, rejected)
        reverse = score(pair_differences, prompts, rejected, chosen)
        duplicate = score(pair_differences, prompts, chosen, chosen)
    else:
        deltas = [
            a - b
            for a, b in zip(score(pointwise_rewards, prompts, chosen), score(pointwise_rewards, prompts, rejected))
        ]
    gold = None
    if GOLD_REWARD[0] in rows.column_names:
        gold = [a - b for a, b in zip(rows[GOLD_REWARD[0]], rows[GOLD_REWARD[1]])]
    return scorer_report(deltas, gold, reverse, duplicate)
