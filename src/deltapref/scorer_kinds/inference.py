"""Batched scoring with a trained scorer: pointwise rewards r(x, y) and pair differences
d(x, y1, y2). Rows are sorted by length inside the call so batches pad little; results come
back in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from deltapref.config.commands import TokenizationConfig
from deltapref.data.scorer_inputs import difference_ids, pointwise_ids, uses_segments
from deltapref.forward.batching import pad
from deltapref.forward.readouts import (
    READOUT,
    classifier_scores,
    difference_scores,
    pair_batch_extras,
    pair_tokenization,
)
from deltapref.models.loading import head_rewards, unwrap


@torch.no_grad()
def run_batches(
    model,
    sequences: list[list[int]],
    pad_id: int,
    batch_size: int,
    head: Callable,
    desc: str,
    progress: bool,
    extras: Callable[[list[int], int], dict] | None = None,
) -> list[float]:
    """``head(model, batch)`` over length-sorted batches; ``extras(indices, width)`` adds
    per-batch tensors (e.g. token types) for the rows at ``indices``."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, unit="batch"):
        index = order[start : start + batch_size]
        input_ids = pad([sequences[i] for i in index], pad_id)
        batch = {
            "input_ids": input_ids,
            "attention_mask": pad([[1] * len(sequences[i]) for i in index], 0, input_ids.shape[1]),
            **(extras(index, input_ids.shape[1]) if extras else {}),
        }
        values = head(model, {k: v.to(device) for k, v in batch.items()}).float().cpu().tolist()
        for i, value in zip(index, values):
            out[i] = value
    return out


def _reward_head(model, batch):
    return head_rewards(model, batch["input_ids"], batch["attention_mask"])


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
    head = _reward_head if hasattr(model, "reward_head") else classifier_scores
    return run_batches(model, sequences, tokenizer.pad_token_id, batch_size, head, "rewards", progress)


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
    """d(x, y1, y2) for each triple, one forward pass per pair, read out as the model was trained
    (its config's readout and input length; token types on encoders)."""
    config = pair_tokenization(model, config)
    pairs = [difference_ids(tokenizer, p, a, b, config) for p, a, b in zip(prompts, firsts, seconds)]
    readout = getattr(unwrap(model).config, READOUT, "pooled")
    segments = uses_segments(tokenizer)

    def extras(index, width):
        return pair_batch_extras([pairs[i] for i in index], segments, readout, width)

    sequences = [p.ids for p in pairs]
    return run_batches(
        model, sequences, tokenizer.pad_token_id, batch_size, difference_scores, "differences", progress, extras
    )


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
