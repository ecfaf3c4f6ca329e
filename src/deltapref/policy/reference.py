"""Reference log-probs, computed once before training and stored as dataset columns so the
reference model is not kept in memory while the policy trains.

The reference must be the policy *before* alignment (the SFT model, or the base model with the
LoRA adapter off). Columns carry the identity of the model that computed them; ``align`` refuses
columns computed by a different model than the one it is told is the reference.
"""

from __future__ import annotations

import logging

import datasets
import torch
from tqdm.auto import tqdm

from .. import distributed
from ..batching import join_prompt_responses, sequence_logps

logger = logging.getLogger(__name__)


@torch.no_grad()
def response_logps(model, prompts: list[list[int]], responses: list[list[int]], pad_id: int,
                   batch_size: int = 16, desc: str = "reference log-probs") -> list[float]:
    """log π(y|x) summed over response tokens, for every (prompt, response), in input order.
    Under a launcher each process scores every world-th batch and the results are gathered."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    batches = [order[s: s + batch_size] for s in range(0, len(order), batch_size)]
    mine = batches[distributed.rank()::distributed.world_size()]
    found: dict[int, float] = {}
    for index in tqdm(mine, desc=desc, unit="batch", disable=not distributed.is_main()):
        batch = join_prompt_responses([prompts[i] for i in index], [responses[i] for i in index], pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        sums, _ = sequence_logps(logits, batch["input_ids"], batch["response_mask"])
        found.update(zip(index, sums.float().cpu().tolist()))
    if distributed.world_size() > 1:
        gathered = [None] * distributed.world_size()
        torch.distributed.all_gather_object(gathered, found)
        found = {k: v for part in gathered for k, v in part.items()}
    return [found[i] for i in range(len(prompts))]


def add_reference_columns(dataset: datasets.Dataset, model, pad_id: int, with_kl: bool = False,
                          batch_size: int = 16) -> datasets.Dataset:
    """Add ``ref_logp_chosen``/``ref_logp_rejected`` (and ``ref_logp_kl``) to a tokenized dataset."""
    names = ["chosen", "rejected"] + (["kl"] if with_kl else [])
    prompts = dataset["prompt_ids"]
    for name in names:
        values = response_logps(model, prompts, dataset[f"{name}_ids"], pad_id, batch_size, f"reference log-probs ({name})")
        if f"ref_logp_{name}" in dataset.column_names:
            dataset = dataset.remove_columns(f"ref_logp_{name}")
        dataset = dataset.add_column(f"ref_logp_{name}", values)
    return dataset
