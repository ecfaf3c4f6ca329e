"""What every training run shares (``sft`` and ``align`` through ``policy.run``, ``train-scorer``
through its stage): the training data loaded with its report and checked against the step
count, the model made ready (learning-rate default, dropout), and the summary's common keys,
written beside the model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import TrainingArguments

from deltapref.artifacts.outputs import finite_or_null, write_text
from deltapref.data.loading import load_preferences
from deltapref.models.loading import disable_dropout, unwrap
from deltapref.training.arguments import check_step_size, resolve_learning_rate

logger = logging.getLogger(__name__)


def load_training_data(config, args: TrainingArguments, numeric_columns: list[str]):
    """``config.train_data`` read and validated (rows skipped only with ``--skip_bad_rows``, and
    counted), and checked to give at least one optimizer step. Returns (data, its load report)."""
    data, report = load_preferences(
        config.train_data, format=config.format, skip_bad_rows=config.skip_bad_rows, numeric_columns=numeric_columns
    )
    logger.info(report.summary())
    check_step_size(args, len(data), config.train_data)
    return data, report


def ready_for_training(model, config, args: TrainingArguments) -> None:
    """The model's learning-rate default resolved into ``args`` and, with ``--disable_dropout``,
    every dropout off."""
    resolve_learning_rate(args, unwrap(model).config, config.lora_r > 0)
    if config.disable_dropout:
        disable_dropout(model)


def run_summary(trainer, result, data, report, **extra) -> dict:
    """The keys every run's summary has (rows read, skipped and duplicated, steps, the whole-run
    metrics), then ``extra``, then the log history."""
    return {
        "train_rows": len(data),
        "skipped_rows": report.skipped,
        "duplicate_rows": report.duplicates,
        "steps": result.global_step,
        **trainer.whole_run,
        **extra,
        "log_history": trainer.state.log_history,
    }


def save_summary(args: TrainingArguments, name: str, summary: dict) -> None:
    """``summary`` as ``output_dir/name`` (by the process that saves)."""
    if args.should_save:
        write_text(Path(args.output_dir) / name, json.dumps(finite_or_null(summary), indent=2) + "\n")
