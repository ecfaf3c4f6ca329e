"""deltapref's per-pair weights inside TRL's ``DPOTrainer`` (``pip install 'deltapref[trl]'``).

:class:`WeightedDPOTrainer` is TRL's trainer with one change: each pair's DPO loss is multiplied
by its weight, read from a dataset column (``coef``, as ``deltapref score`` writes it, or any
column named by ``weight_column``) — DPO+rc, RDO Eq. 7: L = −R_α · log σ(β·Δh). Everything else
(tokenization, reference model or precomputed reference log-probs, LoRA, metrics, DDP) is TRL's.

How: TRL computes the per-pair losses inside one method and returns only their mean. The trainer
records the policy's (and the reference's) per-token log-probs as TRL's forward passes return
them, recomputes the per-pair DPO losses from them with :func:`deltapref.losses.dpo_loss`, checks
that their unweighted mean equals TRL's loss (a TRL version that computes it differently is
refused, never silently mis-weighted) and returns the weighted mean instead. No extra forward pass.
Supported: ``loss_type="sigmoid"`` (DPO) with TRL's defaults for the reward's form (reverse KL, no
length-desensitization ``ld_alpha``, no WPO weighting, no MoE auxiliary loss). Tested with the TRL
version pinned in the ``trl`` extra.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

try:
    from trl import DPOTrainer
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("deltapref.integrations.trl needs TRL: pip install 'deltapref[trl]'") from error

from .. import __version__
from ..data.schema import DataError
from ..errors import TrainingError
from ..losses import dpo_loss

WEIGHTS = "deltapref_pair_weights"  # the batch key the weights travel under (never passed to the model)


MAX_WEIGHT = 1e6  # a weight past this is a unit mistake, and w · loss would overflow float32 long before 1e38


def check_weights(dataset, column: str, name: str = "train_dataset") -> None:
    """Refuse a dataset whose weight column is missing, holds a value that is not a number in
    [0, MAX_WEIGHT] (naming the row), or whose weights are all 0 (the loss would be 0 and
    training would change nothing)."""
    if column not in dataset.column_names:
        raise DataError(
            f"has no weight column {column!r} (columns: {', '.join(dataset.column_names)}); "
            "add one with `deltapref score` or name another with weight_column",
            source=name,
        )
    for row, value in enumerate(dataset[column], start=1):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and 0 <= value <= MAX_WEIGHT):
            raise DataError(
                f"must be a finite number in [0, {MAX_WEIGHT:g}], got {value!r}", source=name, row=row, field=column
            )
    if len(dataset) and not any(dataset[column]):
        raise DataError(
            f"every weight in {column!r} is 0: the weighted loss would be 0 and nothing would train", source=name
        )


def check_boundaries(dataset, tokenizer, name: str = "train_dataset") -> None:
    """Refuse text pairs whose tokenized prompt is not a prefix of the tokenized prompt +
    response: TRL joins them with no separator and cuts the completion where the two diverge, so
    such a pair trains on a corrupted prompt (TRL only warns, once). Conversational rows are left
    to the chat template."""
    for row, example in enumerate(dataset, start=1):
        prompt = example.get("prompt")
        if not isinstance(prompt, str):
            continue
        prompt_ids = tokenizer(prompt)["input_ids"]
        for field in ("chosen", "rejected"):
            joined = tokenizer(prompt + example[field])["input_ids"]
            if joined[: len(prompt_ids)] != prompt_ids:
                raise DataError(
                    f"the tokenized prompt is not a prefix of the tokenized prompt + {field} (TRL joins them with "
                    f"no separator: {prompt[-12:]!r} + {example[field][:12]!r}), so TRL would train on a corrupted "
                    "prompt; start every response with the separator the prompt expects (e.g. a space)",
                    source=name,
                    row=row,
                    field=field,
                )


def _datasets(value) -> dict:
    """An evaluation dataset argument as name -> dataset (TRL takes one or a mapping)."""
    if value is None:
        return {}
    return {f"eval_dataset[{k!r}]": v for k, v in value.items()} if isinstance(value, dict) else {"eval_dataset": value}


class _WithWeights:
    """A collator that adds each example's weight to TRL's batch (when the examples have one)."""

    def __init__(self, collator, column: str):
        self.collator, self.column = collator, column

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        if self.column in examples[0]:
            batch[WEIGHTS] = torch.tensor([float(e[self.column]) for e in examples], dtype=torch.float32)
        return batch


class WeightedDPOTrainer(DPOTrainer):
    """TRL's ``DPOTrainer`` with each pair's loss multiplied by ``weight_column`` (default
    ``coef``). Takes every ``DPOTrainer`` argument; an evaluation dataset with the column is
    checked like the training one and weighted, one without it is evaluated unweighted. Logs
    ``weights/mean|min|max`` and TRL's own (unweighted) loss as ``loss_unweighted``."""

    _tag_names = ["trl", "dpo", "deltapref", "reward-difference-coefficients"]
    _name = "DPO+rc (TRL's DPO with deltapref's per-pair weights)"

    def __init__(self, *args, weight_column: str = "coef", **kwargs):
        self.weight_column = weight_column
        train_dataset = kwargs.get("train_dataset", args[3] if len(args) > 3 else None)
        if train_dataset is None:
            raise ValueError("WeightedDPOTrainer needs a train_dataset with a weight column")
        check_weights(train_dataset, weight_column)
        eval_datasets = _datasets(kwargs.get("eval_dataset", args[4] if len(args) > 4 else None))
        for name, dataset in eval_datasets.items():
            if weight_column in dataset.column_names:
                check_weights(dataset, weight_column, name)
        super().__init__(*args, **kwargs)
        unsupported = {
            "loss_type": (self.loss_types != ["sigmoid"], f"{self.loss_types} (only ['sigmoid'], DPO)"),
            "f_divergence_type": (self.f_divergence_type != "reverse_kl", self.f_divergence_type),
            "ld_alpha": (self.ld_alpha is not None, self.ld_alpha),
            "use_weighting": (self.use_weighting, True),
            "router_aux_loss_coef": (self.aux_loss_enabled, "an MoE auxiliary loss"),
        }
        for name, (bad, value) in unsupported.items():
            if bad:
                raise ValueError(f"WeightedDPOTrainer supports TRL's default {name}, got {value}")
        self.data_collator = _WithWeights(self.data_collator, weight_column)
        for name, dataset in {"train_dataset": train_dataset, **eval_datasets}.items():
            check_boundaries(dataset, self._tokenizer, name)

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        """TRL's card, naming the weighting and, for a model loaded from a local directory (which
        TRL leaves as "None"), that directory."""
        super().create_model_card(model_name, dataset_name, tags)
        path = Path(self.args.output_dir) / "README.md"
        if not self.is_world_process_zero() or not path.exists():
            return
        start = getattr(self.model.config, "_name_or_path", "") or "a model built from a config"
        text = path.read_text(encoding="utf-8").replace("[None](https://huggingface.co/None)", f"`{start}`")
        text += (
            f"\n## Weighting\n\nEach pair's DPO loss is multiplied by its weight from the column "
            f"`{self.weight_column}` (DPO+rc, RDO Eq. 7: L = −R_α · log σ(β·Δh)), trained with deltapref "
            f"{__version__}'s `WeightedDPOTrainer` on TRL's `DPOTrainer`.\n"
        )
        path.write_text(text, encoding="utf-8")

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.weight_column not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, self.weight_column]

    def _compute_loss(self, model, inputs, return_outputs):
        weights = inputs.pop(WEIGHTS, None)
        recorded: list[torch.Tensor] = []
        modules = {id(m): m for m in (self.accelerator.unwrap_model(model), self.ref_model) if m is not None}
        hooks = [m.register_forward_hook(lambda _m, _a, out: recorded.append(out.log_probs)) for m in modules.values()]
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            for hook in hooks:
                hook.remove()
        if weights is None:
            return result
        trl_loss = result[0] if return_outputs else result
        loss = self._weighted_loss(inputs, recorded, weights.to(trl_loss.device), trl_loss)
        return (loss, *result[1:]) if return_outputs else loss

    def _log_weights(self, weights: torch.Tensor, trl_loss: torch.Tensor) -> None:
        """Add the batch's weight statistics and TRL's unweighted loss to TRL's logged metrics
        (averaged over processes, as TRL's own)."""
        mode = "train" if self.model.training else "eval"
        stats = {
            "weights/mean": weights.float().mean(),
            "weights/min": weights.float().min(),
            "weights/max": weights.float().max(),
            "loss_unweighted": trl_loss.detach().float(),
        }
        for name, value in stats.items():
            self._metrics[mode][name].append(self.accelerator.gather(value.to(trl_loss.device)).mean().item())

    def _weighted_loss(self, inputs: dict, recorded: list, weights: torch.Tensor, trl_loss: torch.Tensor):
        seq_len = inputs["completion_mask"].size(1) - 1
        policy = recorded[0][:, -seq_len:].sum(dim=1).chunk(2)
        if self.precompute_ref_logps:
            reference = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            reference = recorded[1][:, -seq_len:].sum(dim=1).chunk(2)
        reference = tuple(r.to(policy[0].device, policy[0].dtype) for r in reference)
        losses = dpo_loss(*policy, *reference, beta=self.beta)
        if not torch.isfinite(trl_loss.detach()).all():
            raise TrainingError(
                f"TRL's DPO loss became {trl_loss.item()} at step {self.state.global_step + 1} (before weighting): "
                "check the learning rate, beta and the data"
            )
        tolerance = 1e-4 if losses.dtype == torch.float32 else 2e-2
        if not torch.allclose(losses.mean().detach(), trl_loss.detach(), rtol=tolerance, atol=tolerance):
            raise RuntimeError(
                f"TRL's DPO loss ({trl_loss.item():.6g}) differs from the per-pair losses recomputed from its "
                f"log-probs ({losses.mean().item():.6g}): this TRL version is not supported by WeightedDPOTrainer"
            )
        weighted = (losses * weights.to(losses.dtype)).mean()
        self._log_weights(weights, trl_loss)
        if not torch.isfinite(weighted.detach()):
            raise TrainingError(
                f"the weighted DPO loss became {weighted.item()} at step {self.state.global_step + 1} (TRL's own: "
                f"{trl_loss.item():.6g}; largest weight {weights.max().item():.6g}): lower or rescale the weights"
            )
        return weighted
