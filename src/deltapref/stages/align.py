"""Stages ``deltapref sft`` and ``deltapref align``: their configs and entry points."""

from __future__ import annotations

from dataclasses import dataclass, fields

from transformers import TrainingArguments

from deltapref.config.commands import ModelDataOptions, option
from deltapref.objectives import PolicyLossOptions
from deltapref.policy.run import RunOptions, run_policy_training
from deltapref.training.distributed import say
from deltapref.training.lora import LoraOptions


@dataclass
class PolicyConfig(LoraOptions, ModelDataOptions):
    """A policy to train on pairs (or ranked lists for RRHF)."""

    merge_lora: bool = option(True, "with --lora_r: save the merged model (false: the peft adapter)")


@dataclass
class SFTConfig(PolicyConfig):
    """Supervised fine-tuning on the chosen responses (response tokens only in the loss)."""


@dataclass
class AlignConfig(PolicyLossOptions, PolicyConfig):
    """A policy objective's options (``PolicyLossOptions``) and the run's."""

    reference_model: str = option(
        None,
        "reference for missing ref_logp_* columns (default: --model, i.e. "
        "the policy before training; with LoRA: the adapter switched off)",
    )
    ref_batch_size: int = option(32, "batch size of the reference log-prob pass", gt=0)
    share_prefix: bool = option(
        True,
        "encode each prompt once per pair/list (block attention mask, restarted "
        "positions; exact) instead of once per response; off for a DRDO student head",
    )
    pack: bool = option(
        False,
        "padding-free batches: pack each batch's sequences into as few rows as the longest one's "
        "width allows (block attention mask; exact, same pairs per batch)",
    )

    def loss_options(self) -> PolicyLossOptions:
        """The objective's options alone."""
        return PolicyLossOptions(**{f.name: getattr(self, f.name) for f in fields(PolicyLossOptions)})

    def run_options(self) -> RunOptions:
        """How the run computes what it needs besides the objective's options."""
        return RunOptions(self.share_prefix, self.pack, self.reference_model, self.ref_batch_size, self.merge_lora)


def train_aligned(config: AlignConfig, args: TrainingArguments) -> dict:
    """Align ``config.model`` as configured; returns the run's summary."""
    return run_policy_training(config, args, config.loss_options(), config.run_options())


def train_sft(config: SFTConfig, args: TrainingArguments) -> dict:
    """Supervised fine-tuning as configured; returns the run's summary."""
    run = RunOptions(merge_lora=config.merge_lora, command="sft")
    return run_policy_training(config, args, PolicyLossOptions(loss="sft"), run)


def align(config: AlignConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref align``."""
    summary = train_aligned(config, args)
    say(
        f"{config.loss}{' +rc(' + config.coef + ')' if config.coef else ''}: {summary['steps']} steps, "
        f"train loss {summary['train_loss']:.4f}, {summary['steps_per_second']:.2f} steps/s; saved to {args.output_dir}"
    )
    return 0


def sft(config: SFTConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref sft``."""
    summary = train_sft(config, args)
    say(f"sft: {summary['steps']} steps, train loss {summary['train_loss']:.4f}; saved to {args.output_dir}")
    return 0
