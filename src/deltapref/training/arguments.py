"""deltapref's policy for ``transformers.TrainingArguments``: its defaults where they differ from
Trainer's, the learning rate when none is given, and the checks that refuse arguments which would
train nothing or wrong (at parse time, and when a run starts)."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import torch
from transformers import TrainingArguments
from transformers.trainer_utils import SaveStrategy

from deltapref.errors import OptionError
from deltapref.training.checkpoints import incomplete_reason
from deltapref.training.distributed import init_if_launched, launched_world_size
from deltapref.training.sharding import (
    allow_sharding_on_cpu,
    fsdp_version,
    join_deepspeed_on_cpu,
    sharding_problem,
    uses_deepspeed,
)

logger = logging.getLogger(__name__)
DEFAULT_SAVE_STEPS = next(f.default for f in dataclasses.fields(TrainingArguments) if f.name == "save_steps")

# The learning rate when none is given, by how the model starts: the built-in task's models train
# from scratch (``tiny``, and every model trained from one: their config carries FROM_SCRATCH); a
# pretrained model fine-tuned in full takes DRDO's policy rate (its appendix D; TRL's DPO default
# is lower still, 1e-6); a LoRA adapter starts at zero and takes ten times that (deltapref's choice).
FROM_SCRATCH = "deltapref_from_scratch"
DEFAULT_LEARNING_RATES = {"from scratch": 5e-4, "pretrained, full fine-tune": 5e-6, "pretrained, LoRA": 5e-5}

# Defaults that differ from TrainingArguments' own (the command line and YAML still win).
TRAINING_DEFAULTS = {
    "output_dir": "",  # required: TrainingArguments would turn None into "trainer_output"
    "learning_rate": None,  # by the model: DEFAULT_LEARNING_RATES
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


# The ranges of the TrainingArguments fields deltapref passes on (its own options declare theirs on
# the field): (lowest, highest), None for no bound; a field may also be None where Trainer allows.
TRAINING_BOUNDS = {
    "seed": (0, 2**32 - 1),
    "max_steps": (-1, 2**31 - 1),
    "num_train_epochs": (0, 1e6),
    "data_seed": (0, 2**32 - 1),
    "per_device_train_batch_size": (1, 2**20),
    "per_device_eval_batch_size": (1, 2**20),
    "gradient_accumulation_steps": (1, 2**20),
    "logging_steps": (1e-9, None),
    "save_steps": (1e-9, None),
    "eval_steps": (1e-9, None),
    "save_total_limit": (1, None),
    "dataloader_num_workers": (0, 256),
    "warmup_steps": (0, None),
    "weight_decay": (0, None),
    "max_grad_norm": (0, None),
}


def _check_bounds(args: TrainingArguments) -> None:
    for name, (low, high) in TRAINING_BOUNDS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            wanted = f">= {low:g}" if high is None else f"between {low} and {high}"
            wanted = "> 0" if low == 1e-9 else wanted
            raise ValueError(f"--{name} must be {wanted}, got {value}")


def validate_training_arguments(args: TrainingArguments) -> None:
    """Refuse, at parse time, training arguments that would train nothing or wrong."""
    _check_bounds(args)
    if args.eval_strategy != "no" or args.load_best_model_at_end:
        raise ValueError(
            "--eval_strategy/--load_best_model_at_end: deltapref's trainers take no eval set during training; "
            "evaluate after it (train-scorer --eval_data, deltapref evaluate)"
        )
    for name in ("learning_rate", "num_train_epochs", "weight_decay", "max_grad_norm", "warmup_steps"):
        value = getattr(args, name, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{name} must be a finite number, got {value}")
    if args.learning_rate is not None and args.learning_rate <= 0:
        raise ValueError(f"--learning_rate must be > 0, got {args.learning_rate}")
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(f"--max_steps must be > 0 (or -1: train --num_train_epochs), got {args.max_steps}")
    if args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise ValueError("--num_train_epochs must be > 0 (or give --max_steps)")
    if args.save_strategy == SaveStrategy.NO and args.save_steps != DEFAULT_SAVE_STEPS:
        raise ValueError(
            f"--save_steps {args.save_steps} saves nothing with --save_strategy no (the default): "
            "add --save_strategy steps"
        )
    checkpoint = args.resume_from_checkpoint
    if checkpoint is not None and not str(checkpoint).strip():
        raise ValueError("--resume_from_checkpoint is empty: name a checkpoint directory, or leave the option out")
    if checkpoint and not (Path(checkpoint) / "trainer_state.json").exists():
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: not a checkpoint directory (it needs "
            f"trainer_state.json; checkpoints are {args.output_dir}/checkpoint-N)"
        )
    reason = incomplete_reason(checkpoint) if checkpoint else None
    if reason:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: not a complete checkpoint ({reason})")


def resolve_learning_rate(args: TrainingArguments, model_config, lora: bool) -> None:
    """Fill in ``args.learning_rate`` when the user gave none, from how the model starts
    (``DEFAULT_LEARNING_RATES``), and say which one was taken."""
    if args.learning_rate is not None:
        return
    start = "from scratch" if getattr(model_config, FROM_SCRATCH, False) else "pretrained, LoRA" if lora else None
    start = start or "pretrained, full fine-tune"
    args.learning_rate = DEFAULT_LEARNING_RATES[start]
    logger.info("--learning_rate not given: %g (the default for a model trained %s)", args.learning_rate, start)


def check_step_size(args: TrainingArguments, rows: int, source: str) -> None:
    """Refuse more gradient-accumulation steps than an epoch has batches: the one optimizer step
    there is would average the gradient over batches that do not exist (scaled down by
    batches / steps, so the weights barely move)."""
    batches = math.ceil(rows / (args.per_device_train_batch_size * args.world_size))
    if args.gradient_accumulation_steps > batches:
        raise OptionError(
            f"--gradient_accumulation_steps {args.gradient_accumulation_steps} is more than the {batches} "
            f"batch(es) of {args.per_device_train_batch_size} in {source} ({rows} rows, {args.world_size} "
            "process(es)): lower it"
        )


def check_training_args(args: TrainingArguments) -> None:
    """Refuse settings that would silently train wrong; on a CPU, let ``--fsdp`` (FSDP2) and
    ``--deepspeed`` shard. A launched run forms its process group here (within a minute)."""
    init_if_launched()
    if args.remove_unused_columns:
        raise OptionError("--remove_unused_columns must stay false: deltapref's collators read raw columns")
    problem = sharding_problem(args)
    if problem:
        raise OptionError(problem)
    if (fsdp_version(args) or uses_deepspeed(args)) and args.device.type == "cpu":
        allow_sharding_on_cpu()
        if uses_deepspeed(args):
            join_deepspeed_on_cpu()
    launched = launched_world_size()
    if launched > 1 and args.world_size != launched:
        raise OptionError(
            f"launched as {launched} processes but the trainer sees {args.world_size}: every process "
            "would train alone on all the data. On CPU pass --use_cpu true (gloo backend)."
        )
