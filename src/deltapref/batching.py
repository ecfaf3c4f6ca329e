"""Padding token sequences into tensors and reading per-sequence log-probs from logits."""

from __future__ import annotations

import logging
import weakref

import torch
import torch.nn.functional as F

from .grouping import by_groups, grouped_by_length
from .losses import log1mexp
from .models import last_token_rewards, unwrap

logger = logging.getLogger(__name__)


def pad(sequences: list[list[int]], pad_value: int, length: int | None = None) -> torch.Tensor:
    """Right-pad lists of ints into a (N, T) long tensor."""
    length = length or max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    for i, sequence in enumerate(sequences):
        out[i, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out


def _block_rows(batch: dict[str, torch.Tensor], group: list[int], width: int) -> dict[str, torch.Tensor]:
    """The rows ``group`` of an unpacked shared-prefix batch (row i holds prompt i and its
    responses), cut to ``width``, their responses' sources renumbered."""
    index = torch.tensor(group, device=batch["input_ids"].device)
    sub = {
        "input_ids": batch["input_ids"][index, :width],
        "attention_mask": batch["attention_mask"][index][..., :width, :width],
        "position_ids": batch["position_ids"][index, :width],
    }
    for name in ("target_ids", "source_pos", "target_mask"):
        sub[name] = batch[name][index]
    rows = torch.arange(len(group), device=index.device).view(-1, 1, 1)
    sub["source_row"] = rows.expand_as(sub["source_pos"]).contiguous()
    return sub


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
    for a batch of ``response_batch`` (any layout; the responses come block by block)."""

    def sums(model, batch):
        return _logps_and_hidden(model, batch, unlikelihood)[0]

    if "source_pos" not in batch:
        return grouped_by_length(sums, model, batch)
    if "row_lengths" in batch:  # one prompt per row: rows of similar length run together
        out = by_groups(sums, model, batch, batch["row_lengths"].tolist(), _block_rows, None)
    else:
        out = sums(model, batch)
    return tuple(x.transpose(0, 1).reshape(-1) for x in out)


def logps_and_rewards(
    model, batch: dict[str, torch.Tensor], unlikelihood: bool = False
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """For a padded batch: ``batch_logps`` of the rows its ``response_mask`` covers (the first
    ones; rows below it are only scored) and the model's ``reward_head`` on every row's last real
    token, from one forward in which the LM head runs on the scored tokens only."""
    sums, hidden = _logps_and_hidden(model, batch, unlikelihood)
    return sums, last_token_rewards(model, hidden, batch["attention_mask"])


def _logps_and_hidden(model, batch: dict[str, torch.Tensor], unlikelihood: bool):
    rows, source, targets, mask = _scored_tokens(batch)
    logits, hidden = _scored_logits(model, _model_inputs(model, batch), rows, source)
    token = -F.cross_entropy(logits.float(), targets, reduction="none")
    token_logps = torch.zeros(mask.shape, dtype=token.dtype, device=token.device).masked_scatter(mask, token)
    return _reduce(token_logps, mask.to(token.dtype), unlikelihood), hidden


BLOCK_MASK_ATTENTION = ("eager", "sdpa")  # implementations that apply an arbitrary 4-D mask as given


def attention_implementation(model) -> str:
    """The attention implementation the model runs (``config._attn_implementation``)."""
    return str(getattr(unwrap(model).config, "_attn_implementation", None) or "eager")


def takes_block_mask(model) -> bool:
    """Whether the model's attention serves the block masks of prefix sharing and packing:
    FlashAttention takes no arbitrary mask, and FlexAttention failed on them here (the GPU
    check measures it per machine)."""
    return attention_implementation(model) in BLOCK_MASK_ATTENTION


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


def _scored_logits(model, inputs: dict, rows: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Logits at positions (rows, source), the LM head run on those only, and the final hidden
    states: the forward returns them and one position of logits, which checks that the logits
    are the head of them. Models whose logits are more than that (soft-capped, scaled) are
    projected from the first position any response needs, as the model computes them."""
    width = inputs["input_ids"].shape[1]
    if model not in _LOGITS_NOT_FROM_HIDDEN:
        out = model(**inputs, logits_to_keep=1, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[-1]
        head = unwrap(model).get_output_embeddings()
        with torch.no_grad():
            from_hidden = head is not None and torch.equal(head(hidden[:, -1:]), out.logits)
        if from_hidden:
            return head(hidden[rows, source]), hidden
        logger.info("%s: logits are not the head of the last hidden state", type(unwrap(model)).__name__)
        _LOGITS_NOT_FROM_HIDDEN.add(model)
    keep = width - int(source.min())
    out = model(**inputs, logits_to_keep=keep, output_hidden_states=True, use_cache=False)
    return out.logits[rows, source - (width - keep)], out.hidden_states[-1]


_LOGITS_NOT_FROM_HIDDEN: weakref.WeakSet = weakref.WeakSet()


def _scored_tokens(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """For every response token: the row and position whose logits predict it, and its id;
    plus the mask (B, K, L) or (B, T − 1) that places them."""
    if "source_pos" in batch:
        mask = batch["target_mask"]
        return batch["source_row"][mask], batch["source_pos"][mask], batch["target_ids"][mask], mask
    mask = batch["response_mask"][:, 1:].bool()
    ids = batch["input_ids"][: mask.shape[0]]
    source = torch.arange(ids.shape[1] - 1, device=ids.device).expand_as(mask)
    rows = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand_as(mask)
    return rows[mask], source[mask], ids[:, 1:][mask], mask


def response_batch(
    prompts: list[list[int]], blocks: list[list[list[int]]], pad_id: int, share_prefix: bool = True, pack: bool = False
) -> dict[str, torch.Tensor]:
    """The batch that scores each prompt's K responses (``blocks[i]``), in one of four exact
    layouts: one row per (prompt, response), or with ``share_prefix`` one row per prompt holding
    its responses as blocks; with ``pack`` those units are packed into as few rows as the longest
    unit's width allows (first-fit decreasing), so padding is left only at row ends. Every layout
    gives each response the log-probs of ``prompt + response`` alone; ``batch_logps`` returns
    them block by block in every layout."""
    if not share_prefix and not pack:
        k = len(blocks[0])
        return join_prompt_responses(prompts * k, [b[j] for j in range(k) for b in blocks], pad_id)
    return _block_batch(_units(prompts, blocks, share_prefix), len(prompts), len(blocks[0]), pad_id, pack)


def _units(prompts: list[list[int]], blocks: list[list[list[int]]], share_prefix: bool) -> list[tuple]:
    """Sequences that attend only within themselves, as (prompt, [((prompt index, response
    index), response)]): a prompt with all its responses, or a prompt with one of them."""
    if share_prefix:
        return [(p, [((i, j), r) for j, r in enumerate(b)]) for i, (p, b) in enumerate(zip(prompts, blocks))]
    return [(prompts[i], [((i, j), blocks[i][j])]) for j in range(len(blocks[0])) for i in range(len(prompts))]


def _rows(lengths: list[int], pack: bool) -> list[list[int]]:
    """Unit indices per row: one unit a row, or first-fit decreasing into rows as wide as the
    longest unit (deterministic: ties keep input order)."""
    if not pack:
        return [[u] for u in range(len(lengths))]
    width = max(lengths)
    rows: list[list[int]] = []
    free: list[int] = []
    for u in sorted(range(len(lengths)), key=lambda u: -lengths[u]):
        fits = next((r for r, space in enumerate(free) if lengths[u] <= space), None)
        if fits is None:
            rows.append([u])
            free.append(width - lengths[u])
        else:
            rows[fits].append(u)
            free[fits] -= lengths[u]
    return rows


def _block_batch(units: list[tuple], count: int, k: int, pad_id: int, pack: bool) -> dict[str, torch.Tensor]:
    """Rows of units with a block attention mask (a response sees its prompt and itself, never
    another response or unit) and position ids that restart at every unit and after its prompt.

    Returns ``input_ids`` (R, T), a boolean ``attention_mask`` (R, 1, T, T), ``position_ids``,
    and per response ``target_ids``/``source_row``/``source_pos``/``target_mask`` (count, K, L):
    the token, the row and position whose logits predict it (the prompt's last position for a
    response's first token) and which entries are real.
    """
    lengths = [len(p) + sum(len(r) for _, r in members) for p, members in units]
    rows = _rows(lengths, pack)
    width = max(sum(lengths[u] for u in row) for row in rows)
    longest = max(len(r) for _, members in units for _, r in members)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    allowed = torch.zeros(len(rows), width, width, dtype=torch.bool)
    position_ids = torch.zeros(len(rows), width, dtype=torch.long)
    target_ids = torch.full((count, k, longest), pad_id, dtype=torch.long)
    source_row = torch.zeros(count, k, longest, dtype=torch.long)
    source_pos = torch.zeros(count, k, longest, dtype=torch.long)
    target_mask = torch.zeros(count, k, longest, dtype=torch.bool)
    for r, row in enumerate(rows):
        offset = 0
        for u in row:
            prompt, members = units[u]
            n = len(prompt)
            input_ids[r, offset : offset + n] = torch.as_tensor(prompt, dtype=torch.long)
            allowed[r, offset : offset + lengths[u], offset : offset + n] = True
            position_ids[r, offset : offset + n] = torch.arange(n)
            start = offset + n
            for (i, j), response in members:
                end = start + len(response)
                tokens = torch.as_tensor(response, dtype=torch.long)
                input_ids[r, start:end] = tokens
                allowed[r, start:end, start:end] = True
                position_ids[r, start:end] = torch.arange(n, n + len(response))
                target_ids[i, j, : len(response)] = tokens
                source_row[i, j] = r
                source_pos[i, j, : len(response)] = torch.tensor([offset + n - 1] + list(range(start, end - 1)))
                target_mask[i, j, : len(response)] = True
                start = end
            offset = start
        allowed[r, offset:, offset:] = torch.eye(width - offset, dtype=torch.bool)  # padding sees itself only
    allowed &= torch.ones(width, width, dtype=torch.bool).tril()
    batch = {
        "input_ids": input_ids,
        "attention_mask": allowed.unsqueeze(1),
        "position_ids": position_ids,
        "target_ids": target_ids,
        "source_row": source_row,
        "source_pos": source_pos,
        "target_mask": target_mask,
    }
    if not pack:  # row i is unit i: the forward may run rows of similar length together
        batch["row_lengths"] = torch.tensor(lengths)
    return batch
