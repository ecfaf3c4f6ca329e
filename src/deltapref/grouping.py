"""Running a batch's forward in groups of similar length, each cut to its longest sequence:
fewer padded tokens, the same values up to float rounding."""

from __future__ import annotations

import weakref

import torch
from torch.nn.parallel import DistributedDataParallel

from .distributed import world_size
from .models import unwrap

GROUP_COST_TOKENS = 32  # a pass's fixed cost in padded tokens at MiniLM's layer size (benchmarks/length_groups.py)
CALIBRATION_LAYER_PARAMS = 1_770_000  # parameters of one MiniLM layer (384 wide), where the cost was measured
_layer_params: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pass_cost(model) -> int:
    """A forward pass's fixed cost in padded tokens for ``model``: ``GROUP_COST_TOKENS`` for layers
    as large as MiniLM's or larger, more for narrower ones. A pass's overhead (dispatching each
    layer's operations) is the same per layer whatever its width, while a token costs its layer's
    parameters, so on small models (the demo's 64-wide policy) a pass is worth many tokens and
    grouping would cost more time than the padding it saves."""
    base = unwrap(model)
    if base not in _layer_params:
        skip = {
            id(p)
            for m in (base.get_input_embeddings(), base.get_output_embeddings())
            if m is not None
            for p in m.parameters()
        }
        body = sum(p.numel() for p in base.parameters() if id(p) not in skip)
        _layer_params[base] = body / max(1, base.config.get_text_config().num_hidden_layers)
    return round(GROUP_COST_TOKENS * max(1.0, CALIBRATION_LAYER_PARAMS / _layer_params[base]))


def length_groups(lengths: list[int], cost: int | None = None) -> list[list[int]]:
    """Indices of ``lengths`` cut into groups of similar length: the split of the length-sorted
    sequences that minimizes padded tokens plus ``cost`` per group (default
    ``GROUP_COST_TOKENS``; exact, O(n²))."""
    cost = GROUP_COST_TOKENS if cost is None else cost
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = [0] + [None] * len(order)  # best[j]: cheapest split of order[:j]
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        width = lengths[order[j - 1]]
        best[j], cut[j] = min((best[i] + (j - i) * width + cost, i) for i in range(j))
    groups, j = [], len(order)
    while j:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def may_split_forward(model) -> bool:
    """Whether a step may run several forward passes of ``model``: in one process, or across
    processes under DDP (whose scorer and policy runs broadcast no buffers). A sharded model
    (FSDP, DeepSpeed) gathers parameters in every forward, a collective each rank must call
    equally often, so there the batch runs in one pass."""
    return world_size() == 1 or isinstance(model, DistributedDataParallel)


def by_groups(score, model, batch: dict, lengths: list[int], cut, cost: int | None):
    """``score`` over groups of similar ``lengths`` (``cut(batch, group, width)`` makes a
    group's batch), outputs back in batch order; one pass where groups do not pay."""
    groups = length_groups(lengths, pass_cost(model) if cost is None else cost) if may_split_forward(model) else []
    if len(groups) <= 1:
        return score(model, batch)
    parts = [score(model, cut(batch, group, max(lengths[i] for i in group))) for group in groups]
    order = torch.tensor([i for group in groups for i in group])
    return _in_order(parts, torch.argsort(order).to(batch["input_ids"].device))


def grouped_by_length(score, model, batch: dict[str, torch.Tensor], cost: int | None = None):
    """``score(model, batch)`` (a tensor, or a tuple of them, with one value per sequence of a
    right-padded batch) run on groups of similar length, each cut to its longest sequence: the
    same values as one padded pass up to float rounding, with less of the batch spent on padding.
    The batch's (N, T) tensors are split; other entries (per-pair labels) are not passed."""
    mask = batch["attention_mask"]
    per_sequence = [k for k, v in batch.items() if torch.is_tensor(v) and v.shape[:2] == mask.shape]

    def cut(batch, group, width):
        index = torch.tensor(group, device=mask.device)
        return {k: batch[k][index, :width] for k in per_sequence}

    return by_groups(score, model, batch, mask.sum(1).tolist(), cut, cost)


def _in_order(parts: list, inverse: torch.Tensor):
    """Per-group outputs (tensors or nested tuples of them) joined back into batch order."""
    if torch.is_tensor(parts[0]):
        return torch.cat(parts)[inverse]
    return tuple(_in_order([part[i] for part in parts], inverse) for i in range(len(parts[0])))
