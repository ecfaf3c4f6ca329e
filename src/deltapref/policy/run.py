"""One policy training run (what ``deltapref sft`` and ``deltapref align`` do): load and check
the data, tokenize it in the objective's layout, add reference log-probs when the objective
needs them, train with ``AlignTrainer`` and save the model and a summary."""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import fields
from pathlib import Path

from transformers import TrainingArguments

from ..data.loading import load_preferences
from ..data.schema import DataError
from ..models import load_causal_lm, load_tokenizer, model_dtype
from ..objectives import POLICY_OBJECTIVES, LossOptions, PolicyObjective
from ..peft_utils import apply_lora
from ..provenance import describe, read_meta
from ..training import check_training_args, final_save
from .data import PAIR_NUMBERS, PolicyCollator, pairs_as_ranked, tokenize_pairs, tokenize_ranked
from .reference import add_reference_columns
from .trainer import AlignTrainer

logger = logging.getLogger(__name__)


def check_columns(objective: PolicyObjective, options: LossOptions, columns: list[str], source: str) -> None:
    """Refuse data that lacks a column the objective reads, naming how to add it."""
    missing = [c for c in objective.required_columns(options) if c not in columns]
    if missing:
        hint = (
            " (ranked lists: prompt, responses, scores)" if objective.ranked else " (add them with `deltapref score`)"
        )
        raise DataError(
            f"--loss {options.loss}{' --coef ' + options.coef if options.coef else ''} needs column(s) "
            f"{', '.join(missing)}{hint}",
            source=source,
        )


def usable_reference_columns(objective: PolicyObjective, columns: list[str], source: str, reference: str) -> bool:
    """True when the data already holds the objective's ``ref_logp_*`` columns from ``reference``;
    refuses ones recorded as computed by another model."""
    if not all(f"ref_logp_{block}" in columns for block in objective.blocks):
        return False
    origin = read_meta(source)["columns"].get("ref_logp_chosen")
    reference = describe(reference)["path"]
    if origin is None:
        logger.warning("%s has ref_logp_* columns of unknown origin: using them as the reference", source)
    elif origin["model"]["path"] != reference:
        raise DataError(
            f"ref_logp_* columns were computed by {origin['model']['path']}, not by the reference "
            f"{reference}; pass --reference_model or drop the columns",
            source=source,
        )
    return True


def run_policy_training(
    config,
    args: TrainingArguments,
    options: LossOptions,
    share_prefix: bool = False,
    reference_model: str | None = None,
    ref_batch_size: int = 32,
    merge_lora: bool = True,
) -> dict:
    """Train ``config.model`` on ``config.train_data`` with ``options.loss``; ``config`` is a
    policy config (model, data, tokenization and LoRA options)."""
    check_training_args(args)  # also forms the process group when launched, before reference log-probs
    started = time.time()
    objective = POLICY_OBJECTIVES[options.loss]
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    data, report = load_preferences(config.train_data, format=config.format, skip_bad_rows=config.skip_bad_rows)
    logger.info(report.summary())
    if objective.ranked and "responses" not in data.column_names:
        data = pairs_as_ranked(data)
    check_columns(objective, options, data.column_names, config.train_data)
    with_kl = "kl" in objective.blocks
    dataset = (
        tokenize_ranked(data, tokenizer, config.tokenization)
        if objective.ranked
        else tokenize_pairs(data, tokenizer, config.tokenization, with_kl=with_kl)
    )
    student_head = objective.student_head(options)
    model = load_causal_lm(
        config.model,
        tokenizer,
        reward_head=student_head,
        seed=args.seed,
        trust_remote_code=config.trust_remote_code,
        dtype=model_dtype(config.dtype),
    )
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    reference_started = time.time()
    reference_path = reference_model or config.model
    if objective.needs_reference and not usable_reference_columns(
        objective, dataset.column_names, config.train_data, reference_path
    ):
        reference = model if not reference_model else load_causal_lm(reference_model, tokenizer)
        dataset = add_reference_columns(
            dataset, reference, tokenizer.pad_token_id, objective.blocks, ref_batch_size, share_prefix
        )
        del reference
    reference_seconds = time.time() - reference_started
    model = apply_lora(model, config, "CAUSAL_LM", modules_to_save=["reward_head"] if student_head else None)
    numbers = tuple(c for c in dataset.column_names if c in PAIR_NUMBERS or c == options.coef)
    collator = PolicyCollator(
        tokenizer.pad_token_id,
        blocks=objective.blocks,
        ranked=objective.ranked,
        share_prefix=share_prefix and not student_head,
        reward_column=options.coef or "scores",
        numbers=numbers,
    )
    trainer = AlignTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=tokenizer,
        options=options,
    )
    train_start = time.time()
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    train_seconds = time.time() - train_start
    final_save(trainer, args.output_dir, merge_lora)
    summary = {
        "loss": options.loss,
        "options": {f.name: getattr(options, f.name) for f in fields(LossOptions)},
        "train_rows": len(data),
        "skipped_rows": report.skipped,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "reference_seconds": reference_seconds,
        "train_seconds": train_seconds,
        "steps_per_second": result.global_step / max(train_seconds, 1e-9),
        "wall_seconds": time.time() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "log_history": trainer.state.log_history,
    }
    if args.should_save:
        (Path(args.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
