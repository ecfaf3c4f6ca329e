"""Held-out evaluation of a saved scorer (``train-scorer --eval_data`` and ``evaluate scorer``)."""

from __future__ import annotations

from ..config import TokenizationConfig
from ..data.loading import load_preferences
from ..models import load_scorer
from ..objectives import SCORER_OBJECTIVES
from ..scorers.inference import pair_differences, pointwise_rewards
from .scorer_metrics import scorer_report


def evaluate_scorer(
    model_dir: str, kind: str, data: str, tokenization: TokenizationConfig, format: str = "auto", batch_size: int = 32
) -> dict:
    """Accuracy, buckets, calibration and (pair scorers) consistency of a saved scorer."""
    model, tokenizer = load_scorer(model_dir, role="difference" if SCORER_OBJECTIVES[kind].pairwise else "reward")
    rows, _ = load_preferences(data, format=format)
    prompts, chosen, rejected = rows["prompt"], rows["chosen"], rows["rejected"]
    reverse = duplicate = None
    if SCORER_OBJECTIVES[kind].pairwise:
        deltas = pair_differences(model, tokenizer, prompts, chosen, rejected, tokenization, batch_size)
        reverse = pair_differences(model, tokenizer, prompts, rejected, chosen, tokenization, batch_size)
        duplicate = pair_differences(model, tokenizer, prompts, chosen, chosen, tokenization, batch_size)
    else:
        r_chosen = pointwise_rewards(model, tokenizer, prompts, chosen, tokenization, batch_size)
        r_rejected = pointwise_rewards(model, tokenizer, prompts, rejected, tokenization, batch_size)
        deltas = [a - b for a, b in zip(r_chosen, r_rejected)]
    gold = None
    if "gold_reward_chosen" in rows.column_names:
        gold = [a - b for a, b in zip(rows["gold_reward_chosen"], rows["gold_reward_rejected"])]
    return scorer_report(deltas, gold, reverse, duplicate)
