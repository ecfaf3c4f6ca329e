"""Response log-probs from a causal LM's forward over a response batch (any ``batching`` layout):
the transformer body in groups of rows of similar length, then the LM head once for the whole
batch, on the positions that predict a response token only, with one logits buffer for its
forward and backward."""

from __future__ import annotations

import logging
import weakref

import torch
import torch.nn.functional as F

from deltapref.forward.length_groups import grouped_hidden
from deltapref.losses import log1mexp
from deltapref.models.loading import last_token_rewards, unwrap
from deltapref.training.sharding import is_sharded

logger = logging.getLogger(__name__)
BLOCK_MASK_ATTENTION = ("eager", "sdpa")  # implementations that apply an arbitrary 4-D mask as given
_HEAD_OF_HIDDEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> logits == head(hidden)?
SOFTMAX_ROWS = 32  # rows per log-softmax call: its temporary stays small (reused, no fresh pages)


def attention_implementation(model) -> str:
    """The attention implementation the model runs (``config._attn_implementation``)."""
    return str(getattr(unwrap(model).config, "_attn_implementation", None) or "eager")


def takes_block_mask(model) -> bool:
    """Whether the model's attention serves the block masks of prefix sharing and packing:
    FlashAttention takes no arbitrary mask, and FlexAttention failed on them here (the GPU
    check measures it per machine)."""
    return attention_implementation(model) in BLOCK_MASK_ATTENTION


def head_token_logps(head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(y_i) = z_{i,y_i} − log Σ_v exp z_{i,v} with z = ``head(hidden)`` (N, V), for targets
    (N,): ``-cross_entropy(head(hidden), targets, reduction="none")``, values and gradients. A plain
    ``nn.Linear`` head runs as one function whose logits buffer is the only (N, V) tensor of its
    forward and backward (cross-entropy makes three more, each a fresh vocabulary-sized block
    whose pages fault in on a CPU); other heads (LoRA-wrapped ones) run as they are."""
    if type(head) is not torch.nn.Linear:
        return -F.cross_entropy(head(hidden).float(), targets, reduction="none")
    tracked = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (hidden, *head.parameters()))
    if tracked:
        return _LinearTokenLogps.apply(hidden, head.weight, head.bias, targets)
    return _linear_token_logps(hidden, head.weight, head.bias, targets)[0]


def _linear_token_logps(hidden, weight, bias, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """Token log-probs and the fp32 log-softmax of the logits, written over the logits buffer a
    few rows at a time (each block's temporary stays small: reused, no fresh pages)."""
    logps = (hidden @ weight.t() if bias is None else torch.addmm(bias, hidden, weight.t())).float()
    for rows in logps.split(SOFTMAX_ROWS):
        rows.copy_(torch.log_softmax(rows, dim=-1))
    return logps.gather(1, targets.unsqueeze(1)).squeeze(1), logps


class _LinearTokenLogps(torch.autograd.Function):
    """``head_token_logps`` for z = h Wᵀ + b; the backward turns the saved log-softmax in place into
    ∂/∂z = (onehot(y) − softmax(z)) · g, then ∂/∂h = (∂/∂z) W, ∂/∂W = (∂/∂z)ᵀ h, ∂/∂b = Σ_rows ∂/∂z."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets):
        token, logps = _linear_token_logps(hidden, weight, bias, targets)
        ctx.save_for_backward(hidden, weight, targets, logps)
        ctx.has_bias, ctx.spent = bias is not None, False
        return token

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if ctx.spent:
            raise RuntimeError("head_token_logps: a second backward through one graph (retain_graph) is not supported")
        ctx.spent = True
        hidden, weight, targets, logps = ctx.saved_tensors
        grad_logits = logps.exp_().mul_(-grad.unsqueeze(1))
        grad_logits = grad_logits.scatter_add_(1, targets.unsqueeze(1), grad.unsqueeze(1)).to(hidden.dtype)
        needs = ctx.needs_input_grad
        return (
            grad_logits @ weight if needs[0] else None,
            grad_logits.t() @ hidden if needs[1] else None,
            grad_logits.sum(0) if ctx.has_bias and needs[2] else None,
            None,
        )


def sequence_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor, unlikelihood: bool = False
) -> tuple[torch.Tensor, ...]:
    """Sum of the response tokens' log-probs and the number of response tokens, per row, from a
    model's full logits (the reference the tests hold ``batch_logps`` to); with ``unlikelihood``
    also the sum of the tokens' log(1 − p).

    Token t is predicted by the logits at t−1 (causal LM shift); ``logits`` may cover only the
    last positions (``logits_to_keep``)."""
    offset = input_ids.shape[1] - logits.shape[1]
    logits = logits[:, :-1].float()
    targets = input_ids[:, offset + 1 :]
    mask = response_mask[:, offset + 1 :].to(logits.dtype)
    token = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return _reduce(token.view_as(targets), mask, unlikelihood)


def _reduce(token_logps: torch.Tensor, mask: torch.Tensor, unlikelihood: bool) -> tuple[torch.Tensor, ...]:
    """Masked sums over the last dimension in fp64 (order-exact): log-probs, counts and, with
    ``unlikelihood``, log(1 − p)."""
    out = ((token_logps.double() * mask).sum(-1).to(token_logps.dtype), mask.sum(-1))
    if unlikelihood:
        out += ((log1mexp(token_logps).double() * mask).sum(-1).to(token_logps.dtype),)
    return out


def batch_logps(model, batch: dict[str, torch.Tensor], unlikelihood: bool = False) -> tuple[torch.Tensor, ...]:
    """Response log-prob sums and token counts (and with ``unlikelihood`` the sums of log(1 − p))
    for a batch of ``batching.response_batch`` (any layout; the responses come block by block)."""
    sums = _logps_and_hidden(model, batch, unlikelihood)[0]
    if "source_pos" in batch:
        return tuple(x.transpose(0, 1).reshape(-1) for x in sums)
    return sums


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
    token, hidden = _scored_token_logps(model, batch, rows, source, targets)
    placed = torch.zeros(mask.shape, dtype=token.dtype, device=token.device).masked_scatter(mask, token)
    return _reduce(placed, mask.to(token.dtype), unlikelihood), hidden


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


def _scored_token_logps(model, batch: dict, rows, source, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of ``targets`` from the logits at positions (rows, source), and the final hidden
    states (B, T, H). The body runs in length groups and the LM head once, on those positions
    only. Models whose logits are more than the head of the hidden states (soft-capped, scaled;
    checked once per model) run one pass with their own logits from the first scored position."""
    inputs = _model_inputs(model, batch)
    if _HEAD_OF_HIDDEN.get(model, True) and not is_sharded(model):  # FSDP2 gathers the head inside the forward only
        hidden = grouped_hidden(_hidden_pass, model, inputs, _row_lengths(batch))
        if _HEAD_OF_HIDDEN[model]:
            return head_token_logps(unwrap(model).get_output_embeddings(), hidden[rows, source], targets), hidden
        logger.info("%s: logits are not the head of the last hidden state", type(unwrap(model)).__name__)
    width = inputs["input_ids"].shape[1]
    keep = width - int(source.min())
    out = model(**inputs, logits_to_keep=keep, output_hidden_states=True, use_cache=False)
    logits = out.logits[rows, source - (width - keep)].float()
    return -F.cross_entropy(logits, targets, reduction="none"), out.hidden_states[-1]


def _hidden_pass(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The final hidden states of one forward that asks the model for one position of logits;
    the first pass of a model checks whether those logits are its LM head of the hidden state."""
    out = model(**inputs, logits_to_keep=1, output_hidden_states=True, use_cache=False)
    hidden = out.hidden_states[-1]
    if model not in _HEAD_OF_HIDDEN:
        head = unwrap(model).get_output_embeddings()
        with torch.no_grad():
            _HEAD_OF_HIDDEN[model] = head is not None and torch.equal(head(hidden[:, -1:]), out.logits)
    return hidden


def _row_lengths(batch: dict[str, torch.Tensor]) -> list[int]:
    """Each row's length for grouping: real tokens of a padded row, a shared-prefix row's
    prompt and responses; a packed batch (rows hold several prompts) is one group."""
    if "source_pos" not in batch:
        return batch["attention_mask"].sum(1).tolist()
    if "row_lengths" in batch:
        return batch["row_lengths"].tolist()
    return [batch["input_ids"].shape[1]] * batch["input_ids"].shape[0]


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
