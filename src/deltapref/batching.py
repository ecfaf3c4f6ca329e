"""Padding token sequences into tensors and reading per-sequence log-probs from logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad(sequences: list[list[int]], pad_value: int, length: int | None = None) -> torch.Tensor:
    """Right-pad lists of ints into a (N, T) long tensor."""
    length = length or max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    for i, sequence in enumerate(sequences):
        out[i, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out


def join_prompt_responses(prompts: list[list[int]], responses: list[list[int]], pad_id: int
                          ) -> dict[str, torch.Tensor]:
    """``input_ids``/``attention_mask``/``response_mask`` for prompt+response rows; the response
    mask marks the tokens whose log-probs score the response."""
    full = [p + r for p, r in zip(prompts, responses)]
    input_ids = pad(full, pad_id)
    attention_mask = pad([[1] * len(s) for s in full], 0, input_ids.shape[1])
    response_mask = pad([[0] * len(p) + [1] * len(r) for p, r in zip(prompts, responses)], 0, input_ids.shape[1])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


def sequence_logps(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the response tokens' log-probs and the number of response tokens, per row.

    Token t is predicted by the logits at t−1 (causal LM shift)."""
    logits = logits[:, :-1].float()
    targets = input_ids[:, 1:]
    mask = response_mask[:, 1:].to(logits.dtype)
    token_logps = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   reduction="none").view_as(targets)
    return (token_logps * mask).sum(-1), mask.sum(-1)
