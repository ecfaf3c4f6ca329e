"""Padding token sequences into tensors: prompt + response rows, and the shared-prefix and
packed layouts of a response batch (``logprobs`` reads their log-probs)."""

from __future__ import annotations

import torch


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


def response_batch(
    prompts: list[list[int]], blocks: list[list[list[int]]], pad_id: int, share_prefix: bool = True, pack: bool = False
) -> dict[str, torch.Tensor]:
    """The batch that scores each prompt's K responses (``blocks[i]``), in one of four exact
    layouts: one row per (prompt, response), or with ``share_prefix`` one row per prompt holding
    its responses as blocks; with ``pack`` those units are packed into as few rows as the longest
    unit's width allows (first-fit decreasing), so padding is left only at row ends. Every layout
    gives each response the log-probs of ``prompt + response`` alone; ``logprobs.batch_logps`` returns
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
