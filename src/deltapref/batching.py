"""Padding token sequences into tensors and reading per-sequence log-probs from logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import log1mexp


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
    for a padded batch (shared-prefix or not), projecting through the LM head only from the first
    position any response needs."""
    keep = batch["input_ids"].shape[1] - max(first_scored_position(batch), 0)
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch.get("position_ids"),
        logits_to_keep=keep,
        use_cache=False,
    ).logits
    if "source_pos" in batch:
        return shared_prefix_logps(logits, batch, unlikelihood)
    return sequence_logps(logits, batch["input_ids"], batch["response_mask"], unlikelihood)


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


def shared_prefix_logps(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], unlikelihood: bool = False
) -> tuple[torch.Tensor, ...]:
    """Per-response log-prob sums and token counts from a :func:`shared_prefix_batch` forward,
    ordered block by block (all first responses, then all second ones, ...), like
    :func:`sequence_logps` on the unshared batch. ``logits`` may cover only the last positions."""
    b, k, length = batch["target_ids"].shape
    offset = batch["input_ids"].shape[1] - logits.shape[1]
    index = (batch["source_pos"] - offset).clamp(min=0).view(b, k * length)
    picked = torch.gather(logits, 1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1])).float()
    token_logps = -F.cross_entropy(
        picked.reshape(-1, logits.shape[-1]), batch["target_ids"].reshape(-1), reduction="none"
    ).view(b, k, length)
    mask = batch["target_mask"].to(token_logps.dtype)
    return tuple(x.transpose(0, 1).reshape(-1) for x in _reduce(token_logps, mask, unlikelihood))


def first_scored_position(batch: dict[str, torch.Tensor]) -> int:
    """The first position whose logits any response needs (the LM head can skip the rest)."""
    if "source_pos" in batch:
        return int(batch["source_pos"][batch["target_mask"]].min())
    return int(batch["response_mask"].float().argmax(dim=1).min()) - 1
