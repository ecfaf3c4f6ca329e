"""What every deltapref trainer shares: a ``transformers.Trainer`` that logs the extra metrics
its loss stores (averaged over the logging window and over processes), stops on a non-finite loss
or a run that changed no weight, and writes checkpoints that a resume can trust. The arguments it
runs with are ``training_arguments``'s."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from deltapref.errors import TrainingError
from deltapref.training.checkpoints import check_resumable, read_manifest, replacing, write_manifest
from deltapref.training.run_folder import save_failures
from deltapref.training.sharding import check_sharded, local_values

logger = logging.getLogger(__name__)
TRACE_LIMIT = 20_000  # per-example values kept for run diagnostics


WATCHED_VALUES = 4096  # per trainable tensor: the evenly spaced entries compared before and after training


def weight_sample(model) -> dict[str, torch.Tensor]:
    """Evenly spaced entries of every trainable tensor (on CPU): enough to tell whether training
    changed the weights at all, at a fraction of a copy's memory."""
    sample = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and parameter.numel():
            flat = local_values(parameter.detach()).reshape(-1)
            sample[name] = flat[:: max(1, flat.numel() // WATCHED_VALUES)].float().cpu().clone()
    return sample


def unchanged_reason(log_history: list[dict]) -> str:
    """The likeliest cause, read from the logs, of a run whose weights did not change."""
    norms = [entry["grad_norm"] for entry in log_history if "grad_norm" in entry]
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    if norms and not any(math.isfinite(n) for n in norms):
        return "the gradient norm was not finite at every logged step (a too large --beta or --learning_rate?)"
    if losses and all(loss == 0 for loss in losses) or norms and all(n == 0 for n in norms):
        return "the loss had no gradient at any logged step: with these options the objective is constant"
    return (
        "its gradients were not finite (a too large --beta?), zero (a loss these options make constant) "
        "or its steps too small to register (--learning_rate)"
    )


class _WeightWatch(TrainerCallback):
    """Samples the trainable weights when training begins (after any resume has loaded them)."""

    def __init__(self, trainer: MetricsTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        check_sharded(self.trainer)
        self.trainer._weights_at_start = (state.global_step, weight_sample(self.trainer.model))


class MetricsTrainer(Trainer):
    """A Trainer whose ``compute_loss`` may ``store`` named per-batch metrics; they are averaged
    (across gradient-accumulation steps and processes) and added to each log line. It stops on a
    non-finite loss, refuses to finish a run that left every weight as it was or made one
    non-finite, and keeps the whole run's loss and time across resumes (``whole_run``)."""

    def __init__(self, *args, **kwargs):
        training_args = kwargs.get("args")
        if training_args is not None and training_args.ddp_broadcast_buffers is None:
            # forwards run batches in length groups, as many per step as a rank's batch needs
            # (grouping.grouped_by_length): a buffer broadcast in every DDP forward would pair
            # different calls across ranks and hang; the models' buffers are constants. A copy:
            # the caller's arguments stay as they were.
            kwargs["args"] = copy.copy(training_args)
            kwargs["args"].ddp_broadcast_buffers = False
        super().__init__(*args, **kwargs)
        self._loss_sum = 0.0  # this process's training losses since the run (or resume) started
        self._weights_at_start: tuple[int, dict] = (0, {})
        self.add_callback(_WeightWatch(self))
        self._stored: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._traced: dict[str, deque] = defaultdict(lambda: deque(maxlen=TRACE_LIMIT))
        self._earlier = {"loss_sum": 0.0, "steps": 0, "seconds": 0.0}
        self._started = time.time()
        self.whole_run: dict = {}
        self.run_identity: dict = {}  # what a resume must not change (checkpoints.run_identity)

    def store(self, **metrics: torch.Tensor | float) -> None:
        split = "train" if self.model.training else "eval"
        for name, value in metrics.items():
            value = value.detach().float().mean() if torch.is_tensor(value) else torch.tensor(float(value))
            self._stored[split][name].append(value.to(self.accelerator.device))

    def trace(self, **values: torch.Tensor) -> None:
        """Keep per-example training values (the last ``TRACE_LIMIT`` of each, this process's
        batches) for run diagnostics, e.g. correlations over the run."""
        if self.model.training:
            for name, value in values.items():
                self._traced[name].extend(value.detach().float().cpu().reshape(-1).tolist())

    def traced(self) -> dict[str, np.ndarray]:
        """The traced values, name -> array (aligned: traced together, they hold the same examples)."""
        return {name: np.asarray(values) for name, values in self._traced.items()}

    def check_finite(self, loss: torch.Tensor) -> None:
        """Stop before a non-finite loss reaches the weights."""
        if not torch.isfinite(loss.detach()).all():
            raise TrainingError(
                f"the loss became {loss.item()} at step {self.state.global_step + 1}: training stopped and no "
                "final model was written; check the data's numeric columns and the options (--learning_rate, "
                "--beta, --alpha, ...)"
            )

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._loss_sum = self._loss_sum + loss.detach()  # a tensor: no device sync per step
        return loss

    metric_aliases: dict[str, str] = {}  # a stored metric's name -> an older name it is also logged under

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if split == "eval" else ""
        for name, values in self._stored[split].items():
            mean = torch.stack(values).mean()
            logs[prefix + name] = self.accelerator.gather_for_metrics(mean.unsqueeze(0)).mean().item()
            if name in self.metric_aliases:
                logs[prefix + self.metric_aliases[name]] = logs[prefix + name]
        self._stored[split].clear()
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if resume_from_checkpoint:
            check_resumable(resume_from_checkpoint, self.run_identity)
            self._earlier = read_manifest(resume_from_checkpoint)["progress"]
        self._started, self._loss_sum = time.time(), 0.0
        result = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        self.check_weights_changed()
        loss_sum = self._earlier["loss_sum"] + self._mean_loss_sum()
        seconds = self._earlier["seconds"] + time.time() - self._started
        self.whole_run = {
            "train_loss": loss_sum / max(result.global_step, 1),
            "train_seconds": seconds,
            "steps_per_second": result.global_step / max(seconds, 1e-9),
            "resumed_from_step": self._earlier["steps"] or None,
        }
        return result

    def _mean_loss_sum(self) -> float:
        """The training losses' sum since the run (or resume) started, averaged over the
        processes (each sums the loss of its own batches)."""
        total = torch.as_tensor(self._loss_sum, dtype=torch.float32, device=self.accelerator.device)
        return float(self.accelerator.reduce(total, reduction="mean"))

    def check_weights_changed(self) -> None:
        """Stop (no final model) when this run's optimizer steps changed no sampled trainable
        weight, or made one non-finite."""
        first_step, before = self._weights_at_start
        if self.state.global_step <= first_step or first_step >= self.state.max_steps or not before:
            return  # nothing left to train (a resume of a finished run), or no weights visible here
        after = weight_sample(self.model)
        steps = self.state.global_step - first_step
        if any(not torch.isfinite(values).all() for values in after.values()):
            raise TrainingError(
                f"training made weights non-finite within {steps} step(s); no final model was written "
                "(lower --learning_rate or --beta)"
            )
        if not all(torch.equal(after[name], values) for name, values in before.items() if name in after):
            return
        if steps == 1 and self.args.get_warmup_steps(self.state.max_steps) >= 1:  # a one-step smoke test
            logger.warning(
                "the run's only step had learning rate 0 (warmup starts from 0), so the saved model equals its "
                "start: train more steps or pass --warmup_steps 0"
            )
            return
        raise TrainingError(
            f"{steps} optimizer step(s) changed no weight: {unchanged_reason(self.state.log_history)}; "
            "no final model was written"
        )

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer's checkpoint, saved over an existing one only once complete
        (``checkpoints.replacing``) and marked complete last, with the run's identity and progress."""
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        loss_sum = self._mean_loss_sum()  # every process takes part
        with replacing(checkpoint) if self.args.should_save else contextlib.nullcontext():
            self.accelerator.wait_for_everyone()  # the old checkpoint is aside before any process writes
            with save_failures(f"saving {checkpoint}", "an earlier checkpoint at that step, if any, was kept"):
                super()._save_checkpoint(model, trial)
            self.accelerator.wait_for_everyone()  # every process's files are written
            if self.args.should_save:
                progress = {
                    "loss_sum": self._earlier["loss_sum"] + loss_sum,
                    "steps": self.state.global_step,
                    "seconds": self._earlier["seconds"] + time.time() - self._started,
                }
                write_manifest(checkpoint, self.run_identity, progress)
