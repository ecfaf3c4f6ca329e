"""Batched scoring with a trained scorer: pointwise rewards r(x, y) and pair differences
d(x, y1, y2). Rows are sorted by length inside the call so batches pad little; results come
back in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..batching import pad
from ..config import TokenizationConfig
from ..data.scorer_inputs import difference_ids, pointwise_ids
from ..models import lm_forward


@torch.no_grad()
def _run(
    model, sequences: list[list[int]], pad_id: int, batch_size: int, head: Callable, desc: str, progress: bool
) -> list[float]:
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, unit="batch"):
        index = order[start : start + batch_size]
        batch = [sequences[i] for i in index]
        input_ids = pad(batch, pad_id).to(device)
        attention_mask = pad([[1] * len(s) for s in batch], 0, input_ids.shape[1]).to(device)
        values = head(model, input_ids, attention_mask).float().cpu().tolist()
        for i, value in zip(index, values):
            out[i] = value
    return out


def _classifier_head(model, input_ids, attention_mask):
    return model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)


def _reward_head(model, input_ids, attention_mask):
    return lm_forward(model, input_ids, attention_mask, reward=True)[1]


def pointwise_rewards(
    model,
    tokenizer,
    prompts: Sequence,
    responses: Sequence,
    config: TokenizationConfig,
    batch_size: int = 32,
    progress: bool = True,
) -> list[float]:
    """r(x, y) for each (prompt, response); works for classifiers and reward-head causal LMs."""
    sequences = [pointwise_ids(tokenizer, p, r, config)[0] for p, r in zip(prompts, responses)]
    head = _reward_head if hasattr(model, "reward_head") else _classifier_head
    return _run(model, sequences, tokenizer.pad_token_id, batch_size, head, "rewards", progress)


def pair_differences(
    model,
    tokenizer,
    prompts: Sequence,
    firsts: Sequence,
    seconds: Sequence,
    config: TokenizationConfig,
    batch_size: int = 32,
    progress: bool = True,
) -> list[float]:
    """d(x, y1, y2) for each triple, one forward pass per pair."""
    sequences = [difference_ids(tokenizer, p, a, b, config) for p, a, b in zip(prompts, firsts, seconds)]
    return _run(model, sequences, tokenizer.pad_token_id, batch_size, _classifier_head, "differences", progress)


def balanced_differences(
    model,
    tokenizer,
    prompts: Sequence,
    firsts: Sequence,
    seconds: Sequence,
    config: TokenizationConfig,
    batch_size: int = 32,
    progress: bool = True,
) -> list[float]:
    """(d(x, y1, y2) − d(x, y2, y1)) / 2: the order-balanced difference, antisymmetric by
    construction (two passes per pair)."""
    forward = pair_differences(model, tokenizer, prompts, firsts, seconds, config, batch_size, progress)
    reverse = pair_differences(model, tokenizer, prompts, seconds, firsts, config, batch_size, progress)
    return [(f - r) / 2 for f, r in zip(forward, reverse)]


def routed(score, members: list, folds: list[int], *columns: Sequence, **kwargs) -> list[float]:
    """``score(model, tokenizer, *columns)`` with row i scored by ``members[folds[i]]`` (a
    cross-fitted scorer's fold models); a single member scores every row."""
    if len(members) == 1:
        return score(*members[0], *columns, **kwargs)
    out: list[float] = [0.0] * len(folds)
    for index, (model, tokenizer) in enumerate(members):
        rows = [i for i, fold in enumerate(folds) if fold == index]
        if rows:
            values = score(model, tokenizer, *[[column[i] for i in rows] for column in columns], **kwargs)
            for i, value in zip(rows, values):
                out[i] = value
    return out
