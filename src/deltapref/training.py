"""What every deltapref trainer shares: a ``transformers.Trainer`` that logs the extra metrics
its loss stores (averaged over the logging window and over processes), CPU-friendly default
arguments, and saving a final model that reloads with ``from_pretrained``."""

from __future__ import annotations

import logging
import os
from collections import defaultdict

import torch
from transformers import Trainer, TrainingArguments

logger = logging.getLogger(__name__)

# Defaults that differ from TrainingArguments' own (the command line and YAML still win).
TRAINING_DEFAULTS = {
    "output_dir": None,
    "learning_rate": 5e-4,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "num_train_epochs": 1.0,
    "logging_steps": 10,
    "save_strategy": "no",
    "report_to": "none",
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "remove_unused_columns": False,
    "dataloader_drop_last": False,
    "dataloader_pin_memory": False,
    # without a GPU, a torchrun/accelerate launch only forms a (gloo) process group with use_cpu
    "use_cpu": not torch.cuda.is_available(),
}


class MetricsTrainer(Trainer):
    """A Trainer whose ``compute_loss`` may ``store`` named per-batch metrics; they are averaged
    (across gradient-accumulation steps and processes) and added to each log line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def store(self, **metrics: torch.Tensor | float) -> None:
        split = "train" if self.model.training else "eval"
        for name, value in metrics.items():
            value = value.detach().float().mean() if torch.is_tensor(value) else torch.tensor(float(value))
            self._stored[split][name].append(value.to(self.accelerator.device))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if split == "eval" else ""
        for name, values in self._stored[split].items():
            mean = torch.stack(values).mean()
            logs[prefix + name] = self.accelerator.gather_for_metrics(mean.unsqueeze(0)).mean().item()
        self._stored[split].clear()
        super().log(logs, start_time)


def final_save(trainer: Trainer, output_dir: str, merge_lora: bool = True) -> None:
    """Save the trained model (LoRA merged into the base weights unless told otherwise) and
    its tokenizer as safetensors on the main process."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if merge_lora and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if trainer.args.should_save:
        model.save_pretrained(output_dir, safe_serialization=True)
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(output_dir)
    trainer.accelerator.wait_for_everyone()


def check_training_args(args: TrainingArguments) -> None:
    """Refuse settings that would silently train wrong."""
    if args.remove_unused_columns:
        raise ValueError("remove_unused_columns must stay False: deltapref's collators read raw columns")
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and args.world_size != launched:
        raise ValueError(
            f"launched as {launched} processes but the trainer sees {args.world_size}: every process "
            "would train alone on all the data. On CPU pass --use_cpu true (gloo backend)."
        )
