"""What both TRL bridges share: the weight column's checks, the prompt/response boundary check,
the collator that carries the weights, and the trainer pieces (signature columns, logged weight
statistics, the model card's weighting section)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from deltapref import __version__
from deltapref.data.schema import DataError
from deltapref.errors import TrainingError

WEIGHTS = "deltapref_pair_weights"  # the batch key the weights travel under (never passed to the model)


MAX_WEIGHT = 1e6  # a weight past this is a unit mistake, and w · loss would overflow float32 long before 1e38


def check_weights(dataset, column: str, name: str = "train_dataset") -> None:
    """Refuse a dataset whose weight column is missing, holds a value that is not a number in
    [0, MAX_WEIGHT] (naming the row), or whose weights are all 0 (the loss would be 0 and
    training would change nothing)."""
    if not hasattr(dataset, "__len__") or dataset.column_names is None:
        raise DataError(
            f"is {type(dataset).__name__}: its weights cannot be checked before training; pass a datasets.Dataset "
            "(e.g. Dataset.from_generator)",
            source=name,
        )
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
        for field in (f for f in ("chosen", "rejected", "completion") if isinstance(example.get(f), str)):
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


def eval_datasets(value) -> dict:
    """An evaluation dataset argument as name -> dataset (TRL takes one or a mapping)."""
    if value is None:
        return {}
    return {f"eval_dataset[{k!r}]": v for k, v in value.items()} if isinstance(value, dict) else {"eval_dataset": value}


class WithWeights:
    """A collator that adds each example's weight to TRL's batch (when the examples have one)."""

    def __init__(self, collator, column: str):
        self.collator, self.column = collator, column

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        if self.column in examples[0]:
            batch[WEIGHTS] = torch.tensor([float(e[self.column]) for e in examples], dtype=torch.float32)
        return batch


class WeightedTrainer:
    """The pieces a weighted TRL trainer adds to its TRL base (a mixin before it): the checked
    weight column, the collator that carries it, the signature column that keeps it, logged
    weight statistics and the card's weighting section (``weighting``: one sentence)."""

    weighting = ""

    def __init__(self, *args, weight_column: str = "coef", **kwargs):
        self.weight_column = weight_column
        train_dataset = kwargs.get("train_dataset", args[3] if len(args) > 3 else None)
        if train_dataset is None:
            raise ValueError(f"{type(self).__name__} needs a train_dataset with a weight column")
        check_weights(train_dataset, weight_column)
        evaluated = eval_datasets(kwargs.get("eval_dataset", args[4] if len(args) > 4 else None))
        for name, dataset in evaluated.items():
            if weight_column in dataset.column_names:
                check_weights(dataset, weight_column, name)
        super().__init__(*args, **kwargs)
        self.check_supported()
        self.data_collator = WithWeights(self.data_collator, weight_column)
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        for name, dataset in {"train_dataset": train_dataset, **evaluated}.items():
            check_boundaries(dataset, tokenizer, name)

    def check_supported(self) -> None:
        """Refuse (ValueError) TRL options whose loss the weighting does not reproduce."""

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.weight_column not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, self.weight_column]

    def recorded_log_probs(self, model) -> tuple[list, list]:
        """(per-token log-probs of every forward of the policy or the reference model, in call
        order, as TRL's forward returns them; the hooks to remove)."""
        recorded: list[torch.Tensor] = []
        modules = {id(m): m for m in (self.accelerator.unwrap_model(model), self.ref_model) if m is not None}
        hooks = [m.register_forward_hook(lambda _m, _a, out: recorded.append(out.log_probs)) for m in modules.values()]
        return recorded, hooks

    def per_example_losses(self, inputs: dict, recorded: list) -> torch.Tensor:
        """TRL's unweighted per-example losses, recomputed from the log-probs its forwards returned
        (``recorded``, in call order) and the batch."""
        raise NotImplementedError

    def _compute_loss(self, model, inputs, return_outputs):
        """TRL's loss with each example's loss multiplied by its weight: TRL's own forwards run once
        (their log-probs recorded), its per-example losses are recomputed and checked against its
        mean (a TRL that computes them differently is refused, never silently mis-weighted)."""
        weights = inputs.pop(WEIGHTS, None)
        recorded, hooks = self.recorded_log_probs(model)
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            for hook in hooks:
                hook.remove()
        if weights is None:
            return result
        trl_loss = result[0] if return_outputs else result
        what = self._trl_base().removesuffix("Trainer")
        if not torch.isfinite(trl_loss.detach()).all():
            raise TrainingError(
                f"TRL's {what} loss became {trl_loss.item()} at step {self.state.global_step + 1} (before weighting): "
                "check the learning rate, beta and the data"
            )
        losses = self.per_example_losses(inputs, recorded)
        tolerance = 1e-4 if losses.dtype == torch.float32 else 2e-2
        if not torch.allclose(losses.mean().detach(), trl_loss.detach(), rtol=tolerance, atol=tolerance):
            raise RuntimeError(
                f"TRL's {what} loss ({trl_loss.item():.6g}) differs from the per-example losses recomputed from its "
                f"log-probs ({losses.mean().item():.6g}): this TRL version is not supported by {type(self).__name__}"
            )
        weights = weights.to(losses.device, losses.dtype)
        weighted = (losses * weights).mean()
        self.log_weights(weights, trl_loss)
        if not torch.isfinite(weighted.detach()):
            raise TrainingError(
                f"the weighted {what} loss became {weighted.item()} at step {self.state.global_step + 1} (TRL's own: "
                f"{trl_loss.item():.6g}; largest weight {weights.max().item():.6g}): lower or rescale the weights"
            )
        return (weighted, *result[1:]) if return_outputs else weighted

    def log_weights(self, weights: torch.Tensor, trl_loss: torch.Tensor) -> None:
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

    def _trl_base(self) -> str:
        return next(c.__name__ for c in type(self).__mro__ if c.__module__.startswith("trl."))

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
            f"\n## Weighting\n\n{self.weighting} The weights are the column `{self.weight_column}`; trained with "
            f"deltapref {__version__}'s `{type(self).__name__}` on TRL's `{self._trl_base()}`.\n"
        )
        path.write_text(text, encoding="utf-8")
