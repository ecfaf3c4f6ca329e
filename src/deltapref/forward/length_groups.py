"""Running a batch's forward in groups of similar length, each cut to its longest sequence:
fewer padded tokens, the same values up to float rounding."""

from __future__ import annotations

import os
import weakref

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from deltapref.models.loading import unwrap
from deltapref.training.distributed import world_size

GROUP_COST_TOKENS = 32  # a pass's fixed cost in padded tokens at MiniLM's layer size (benchmarks/length_groups.py)
CALIBRATION_LAYER_PARAMS = 1_770_000  # parameters of one MiniLM layer (384 wide), where the cost was measured
COST_VARIABLE = "DELTAPREF_GROUP_COST_TOKENS"
_layer_params: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pass_cost(model) -> int:
    """A forward pass's fixed cost in padded tokens for ``model``: ``GROUP_COST_TOKENS`` for layers
    as large as MiniLM's or larger, more for narrower ones. A pass's overhead (dispatching each
    layer's operations) is the same per layer whatever its width, while a token costs its layer's
    parameters, so on small models (the demo's 64-wide policy) a pass is worth many tokens and
    grouping would cost more time than the padding it saves. ``DELTAPREF_GROUP_COST_TOKENS`` sets
    one cost for every model instead (0: a pass per distinct length; a large one: whole batches)."""
    fixed = os.environ.get(COST_VARIABLE, "").strip()
    if fixed:
        return int(fixed)
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


def forward_groups(model, lengths: list[int], cost: int | None = None) -> list[list[int]]:
    """The groups of similar length that a batch of sequences of ``lengths`` runs its forward
    of ``model`` in: one group where a pass costs more than the padding it saves, or where the
    model may not split its forward."""
    if not may_split_forward(model):
        return [list(range(len(lengths)))]
    return length_groups(lengths, pass_cost(model) if cost is None else cost)


def grouped_by_length(score, model, batch: dict[str, torch.Tensor], cost: int | None = None):
    """``score(model, batch)`` (a tensor, or a tuple of them, with one value per sequence of a
    right-padded batch) run on groups of similar length, each cut to its longest sequence: the
    same values as one padded pass up to float rounding, with less of the batch spent on padding.
    The batch's (N, T) tensors are split; other entries (per-pair labels) are not passed."""
    mask = batch["attention_mask"]
    lengths = mask.sum(1).tolist()
    groups = forward_groups(model, lengths, cost)
    if len(groups) <= 1:
        return score(model, batch)
    per_sequence = [k for k, v in batch.items() if torch.is_tensor(v) and v.shape[:2] == mask.shape]
    parts = []
    for group in groups:
        index = torch.tensor(group, device=mask.device)
        parts.append(score(model, {k: batch[k][index, : max(lengths[i] for i in group)] for k in per_sequence}))
    return _in_order(parts, _inverse(groups, mask.device))


def grouped_hidden(hidden_pass, model, inputs: dict[str, torch.Tensor], lengths: list[int]) -> torch.Tensor:
    """``hidden_pass(model, inputs)``, the final hidden states (N, T, H) of a forward, run on
    groups of rows of similar ``lengths``, each cut to its longest row, and put back in batch
    order as one (N, T, H) tensor (zero past a row's group width): the same values as one pass up
    to float rounding. The input embeddings are looked up once for the whole batch and each
    group takes its rows of them: the embedding matrix gets one dense gradient a step, not one
    per group (each a fresh vocabulary-sized buffer whose pages fault in on a CPU)."""
    groups = forward_groups(model, lengths)
    if len(groups) <= 1:
        return hidden_pass(model, inputs)
    ids = inputs["input_ids"]
    inputs = {name: value for name, value in inputs.items() if name != "input_ids"}
    inputs["inputs_embeds"] = unwrap(model).get_input_embeddings()(ids)
    parts = []
    for group in groups:
        index, width = torch.tensor(group, device=ids.device), max(lengths[i] for i in group)
        hidden = hidden_pass(model, {name: _cut_rows(value, index, width) for name, value in inputs.items()})
        parts.append(F.pad(hidden, (0, 0, 0, ids.shape[1] - width)))
    return torch.cat(parts)[_inverse(groups, ids.device)]


def _cut_rows(value: torch.Tensor, index: torch.Tensor, width: int) -> torch.Tensor:
    """Rows ``index`` of a (N, T, ...) input cut to ``width`` positions (a (N, 1, T, T) mask on
    both its query and key axes)."""
    value = value[index]
    return value[..., :width, :width] if value.dim() == 4 else value[:, :width]


def _inverse(groups: list[list[int]], device) -> torch.Tensor:
    """The permutation that puts the groups' concatenated rows back in batch order."""
    return torch.argsort(torch.tensor([i for group in groups for i in group])).to(device)


def _in_order(parts: list, inverse: torch.Tensor):
    """Per-group outputs (tensors or nested tuples of them) joined back into batch order."""
    if torch.is_tensor(parts[0]):
        return torch.cat(parts)[inverse]
    return tuple(_in_order([part[i] for part in parts], inverse) for i in range(len(parts[0])))
