"""Padding token sequences into tensors and reading per-sequence log-probs from logits."""

from __future__ import annotations

import logging
import weakref

import torch
import torch.nn.functional as F

from .losses import log1mexp
from .models import unwrap

logger = logging.getLogger(__name__)


def pad(sequences: list[list[int]], pad_value: int, length: int | None = None) -> torch.Tensor:
    """Right-pad lists of ints into a (N, T) long tensor."""
    length = length or max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    for i, sequence in enumerate(sequences):
        out[i, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out


def join_prompt_responses(prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """``input_ids``/``attention_mask``/``response_mask`` for prompt+response rows; the response
    mask marks the tokens whose log-probs score the response."""
    full = [p + r for p, r in zip(prompts, responses)]
    input_ids = pad(full, pad_id)
    attention_mask = pad([[1] * len(s) for s in full], 0, input_ids.shape[1])
    response_mask = pad([[0] * len(p) + [1] * len(r) for p, r in zip(prompts, responses)], 0, input_ids.shape[1])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


def sequence_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor, unlikelihood: bool = False
) -> tuple[torch.Tensor, ...]:
    """Sum of the response tokens' log-probs and the number of response tokens, per row; with
    ``unlikelihood`` also the sum of the tokens' log(1 − p).

    Token t is predicted by the logits at t−1 (causal LM shift); ``logits`` may cover only the
    last positions (``logits_to_keep``)."""
    offset = input_ids.shape[1] - logits.shape[1]
    logits = logits[:, :-1].float()
    targets = input_ids[:, offset + 1 :]
    mask = response_mask[:, offset + 1 :].to(logits.dtype)
    token_logps = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none").view_as(
        targets
    )
    return _reduce(token_logps, mask, unlikelihood)


def _reduce(token_logps: torch.Tensor, mask: torch.Tensor, unlikelihood: bool) -> tuple[torch.Tensor, ...]:
    """Masked sums over the last dimension in fp64 (order-exact): log-probs, counts and, with
    ``unlikelihood``, log(1 − p)."""
    out = ((token_logps.double() * mask).sum(-1).to(token_logps.dtype), mask.sum(-1))
    if unlikelihood:
        out += ((log1mexp(token_logps).double() * mask).sum(-1).to(token_logps.dtype),)
    return out


def batch_logps(model, batch: dict[str, torch.Tensor], unlikelihood: bool = False) -> tuple[torch.Tensor, ...]:
    """Response log-prob sums and token counts (and with ``unlikelihood`` the sums of log(1 − p))
    for a padded batch (shared-prefix or not; a shared-prefix batch's responses come block by
    block, like the unshared batch's rows)."""
    rows, source, targets, mask = _scored_tokens(batch)
    logits = _scored_logits(model, _model_inputs(model, batch), rows, source)
    token = -F.cross_entropy(logits.float(), targets, reduction="none")
    token_logps = torch.zeros(mask.shape, dtype=token.dtype, device=token.device).masked_scatter(mask, token)
    sums = _reduce(token_logps, mask.to(token.dtype), unlikelihood)
    if "source_pos" in batch:
        return tuple(x.transpose(0, 1).reshape(-1) for x in sums)
    return sums


def _model_inputs(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward's inputs; a shared-prefix block mask made additive, so every attention
    implementation reads it alike (eager attention adds the mask to the scores)."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "source_pos" in batch:
        dtype = unwrap(model).dtype
        allowed = batch["attention_mask"]
        inputs["attention_mask"] = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )
        inputs["position_ids"] = batch["position_ids"]
    return inputs


def _scored_logits(model, inputs: dict, rows: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Logits at positions (rows, source), the LM head run on those only: the forward returns the
    final hidden states and one position of logits, which checks that the logits are the head of
    them. Models whose logits are more than that (soft-capped, scaled) are projected from the
    first position any response needs, as the model computes them."""
    width = inputs["input_ids"].shape[1]
    if model not in _LOGITS_NOT_FROM_HIDDEN:
        out = model(**inputs, logits_to_keep=1, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[-1]
        head = unwrap(model).get_output_embeddings()
        with torch.no_grad():
            from_hidden = head is not None and torch.equal(head(hidden[:, -1:]), out.logits)
        if from_hidden:
            return head(hidden[rows, source])
        logger.info("%s: logits are not the head of the last hidden state", type(unwrap(model)).__name__)
        _LOGITS_NOT_FROM_HIDDEN.add(model)
    keep = width - int(source.min())
    return model(**inputs, logits_to_keep=keep, use_cache=False).logits[rows, source - (width - keep)]


_LOGITS_NOT_FROM_HIDDEN: weakref.WeakSet = weakref.WeakSet()


def _scored_tokens(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """For every response token: its row, the position whose logits predict it, and its id;
    plus the mask (B, K, L) or (B, T − 1) that places them."""
    if "source_pos" in batch:
        source, targets, mask = batch["source_pos"], batch["target_ids"], batch["target_mask"]
    else:
        ids = batch["input_ids"]
        mask = batch["response_mask"][:, 1:].bool()
        source = torch.arange(ids.shape[1] - 1, device=ids.device).expand_as(mask)
        targets = ids[:, 1:]
    rows = torch.arange(mask.shape[0], device=mask.device).view(-1, *[1] * (mask.dim() - 1)).expand_as(mask)
    return rows[mask], source[mask], targets[mask], mask


def shared_prefix_batch(
    prompts: list[list[int]], blocks: list[list[list[int]]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Prefix sharing: each row is ``prompt + response_1 + ... + response_K`` with a block
    attention mask (every response sees the prompt and itself, never another response) and
    position ids that restart after the prompt, so each response is scored exactly as in
    ``prompt + response`` while the prompt is encoded once.

    Returns ``input_ids`` (B, T), a boolean ``attention_mask`` (B, 1, T, T), ``position_ids``,
    and per response ``target_ids``/``source_pos``/``target_mask`` (B, K, L): the token, the
    position whose logits predict it (the last prompt token for a response's first token) and
    which entries are real.
    """
    k = len(blocks[0])
    rows = [p + [t for block in b for t in block] for p, b in zip(prompts, blocks)]
    width = max(len(r) for r in rows)
    longest = max(len(block) for b in blocks for block in b)
    input_ids = pad(rows, pad_id, width)
    allowed = torch.zeros(len(rows), width, width, dtype=torch.bool)
    position_ids = torch.zeros(len(rows), width, dtype=torch.long)
    target_ids = torch.full((len(rows), k, longest), pad_id, dtype=torch.long)
    source_pos = torch.zeros(len(rows), k, longest, dtype=torch.long)
    target_mask = torch.zeros(len(rows), k, longest, dtype=torch.bool)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    for i, (prompt, row_blocks) in enumerate(zip(prompts, blocks)):
        n = len(prompt)
        allowed[i, :, :n] = True
        position_ids[i, :n] = torch.arange(n)
        start = n
        for j, block in enumerate(row_blocks):
            end = start + len(block)
            allowed[i, start:end, start:end] = True
            position_ids[i, start:end] = torch.arange(n, n + len(block))
            target_ids[i, j, : len(block)] = torch.as_tensor(block, dtype=torch.long)
            source_pos[i, j, : len(block)] = torch.tensor([n - 1] + list(range(start, end - 1)), dtype=torch.long)
            target_mask[i, j, : len(block)] = True
            start = end
        allowed[i, start:, :] = False  # padding attends nowhere ...
        allowed[i, start:, start:] = torch.eye(width - start, dtype=torch.bool)  # ... but itself (no NaN rows)
    allowed &= causal
    return {
        "input_ids": input_ids,
        "attention_mask": allowed.unsqueeze(1),
        "position_ids": position_ids,
        "target_ids": target_ids,
        "source_pos": source_pos,
        "target_mask": target_mask,
    }
