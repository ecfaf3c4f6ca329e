"""Reference log-probs, computed once before training and stored as dataset columns so the
reference model is not kept in memory while the policy trains.

The reference must be the policy *before* alignment (the SFT model, or the base model with the
LoRA adapter off). ``align`` refuses ``ref_logp_*`` columns recorded as computed by a different
model than the one it is told is the reference.
"""

from __future__ import annotations

import datasets
import torch
from tqdm.auto import tqdm

from deltapref.columns import ref_logp
from deltapref.data.tokenization import encode_pair, truncate
from deltapref.forward.batching import response_batch
from deltapref.forward.logprobs import batch_logps
from deltapref.training import distributed


@torch.no_grad()
def response_logps(
    model,
    prompts: list[list[int]],
    blocks: list[list[list[int]]],
    pad_id: int,
    batch_size: int = 16,
    share_prefix: bool = True,
    pack: bool = False,
) -> list[list[float]]:
    """log π(y|x) summed over response tokens for every response of every prompt, in input
    order, in ``response_batch``'s layout (prefix sharing: a prompt encoded once for all its
    responses; packing: no padding but at row ends). Under a
    launcher each process scores every world-th batch and the results are gathered."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + sum(map(len, blocks[i])))
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    found: dict[int, list[float]] = {}
    k = len(blocks[0])
    for index in tqdm(
        batches[distributed.rank() :: distributed.world_size()],
        desc="reference log-probs",
        unit="batch",
        disable=not distributed.is_main(),
    ):
        batch = response_batch([prompts[i] for i in index], [blocks[i] for i in index], pad_id, share_prefix, pack)
        sums, _ = batch_logps(model, {name: value.to(device) for name, value in batch.items()})
        sums = sums.float().cpu().view(k, len(index))
        found.update({i: sums[:, n].tolist() for n, i in enumerate(index)})
    return distributed.in_order(found, len(prompts))


def add_reference_columns(
    dataset: datasets.Dataset,
    model,
    pad_id: int,
    names: tuple[str, ...] = ("chosen", "rejected"),
    batch_size: int = 16,
    share_prefix: bool = True,
    pack: bool = False,
) -> datasets.Dataset:
    """Add ``ref_logp_NAME`` for each response block NAME (``NAME_ids`` columns) of a tokenized dataset."""
    blocks = [list(row) for row in zip(*(dataset[f"{name}_ids"] for name in names))]
    values = response_logps(model, dataset["prompt_ids"], blocks, pad_id, batch_size, share_prefix, pack)
    for j, name in enumerate(names):
        if ref_logp(name) in dataset.column_names:
            dataset = dataset.remove_columns(ref_logp(name))
        dataset = dataset.add_column(ref_logp(name), [v[j] for v in values])
    return dataset


def pair_reference_logps(
    model, tokenizer, rows: list[dict], following: dict, config, batch_size: int = 32
) -> list[list[float]]:
    """Reference log-probs of each pair's chosen and rejected responses and of its KTO block
    (this prompt with the next row's chosen response; ``following`` is the row after the last),
    tokenized exactly as ``align`` tokenizes them."""
    encoded = [encode_pair(tokenizer, row, config) for row in rows + [following]]
    blocks = [
        [e["chosen_ids"], e["rejected_ids"], truncate(e["prompt_ids"], after["chosen_ids"], config)[1]]
        for e, after in zip(encoded[:-1], encoded[1:])
    ]
    return response_logps(model, [e["prompt_ids"] for e in encoded[:-1]], blocks, tokenizer.pad_token_id, batch_size)
