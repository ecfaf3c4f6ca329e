"""One policy training run (what ``deltapref sft`` and ``deltapref align`` do): check the output,
the model's role and the data (columns present, numbers finite), tokenize in the objective's
layout, add reference log-probs when the objective needs them (or check that the data's own
were computed by the same reference), train with ``AlignTrainer``, save the model and a summary."""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from transformers import TrainingArguments

from .. import coefficients
from ..columns import PAIR_LISTS, PAIR_NUMBERS, ref_logp
from ..data.loading import load_preferences
from ..data.schema import DataError
from ..model_card import write_run_card
from ..models import check_role, disable_dropout, load_causal_lm, load_tokenizer, model_dtype
from ..objectives import POLICY_OBJECTIVES, LossOptions, PolicyObjective
from ..outputs import write_text
from ..peft_utils import apply_lora
from ..provenance import identity_mismatch, read_meta, reference_identity
from ..training import check_step_size, check_training_args, claimed_output_dir, final_save, resolve_learning_rate
from .data import PolicyCollator, pairs_as_ranked, tokenize_pairs, tokenize_ranked
from .reference import add_reference_columns
from .trainer import AlignTrainer

logger = logging.getLogger(__name__)
NORMALIZED = "coef_normalized"


@dataclass
class RunOptions:
    """How a run computes what it needs besides the objective's options."""

    share_prefix: bool = False
    reference_model: str | None = None
    ref_batch_size: int = 32
    merge_lora: bool = True
    command: str = "align"  # the stage that runs it (named in the model card)


def check_columns(objective: PolicyObjective, options: LossOptions, columns: list[str], source: str) -> None:
    """Refuse data that lacks a column the objective reads, naming how to add it."""
    missing = [c for c in objective.required_columns(options) if c not in columns]
    if missing:
        hint = (
            " (ranked lists: prompt, responses, scores)" if objective.ranked else " (add them with `deltapref score`)"
        )
        coef = f" --coef {options.coef}" if options.coef else ""
        raise DataError(f"--loss {options.loss}{coef} needs column(s) {', '.join(missing)}{hint}", source=source)


def usable_reference_columns(
    objective: PolicyObjective,
    options: LossOptions,
    columns: list[str],
    source: str,
    reference: str,
    tokenizer: str,
    tokenization,
) -> bool:
    """True when the data already holds the objective's ``ref_logp_*`` columns computed by this
    reference (same weights, tokenizer and truncation); refuses ones recorded for another."""
    if not objective.uses_reference(options) or not all(ref_logp(block) in columns for block in objective.blocks):
        return False
    origin = read_meta(source)["columns"].get(ref_logp("chosen"))
    if origin is None:
        logger.warning("%s has ref_logp_* columns of unknown origin: using them as the reference", source)
        return True
    identity = reference_identity(reference, tokenizer, tokenization)
    mismatch = identity_mismatch(origin.get("reference", origin), identity)
    if mismatch:
        raise DataError(
            f"its ref_logp_* columns do not belong to this run's reference {identity['model']['path']}: {mismatch}; "
            "recompute them (`deltapref score --reference_model ...` with this run's --max_length and "
            "--max_prompt_length) or drop them",
            source=source,
        )
    return True


def normalized_weights(data, objective: PolicyObjective, options: LossOptions, source: str):
    """The data with a ``coef_normalized`` column (the run's weights divided by their mean over the
    data), the options reading it, and that mean."""
    if objective.ranked:
        raise DataError("--coef_normalize works on pairs, not on ranked lists", source=source)
    columns = {c: torch.tensor(data[c], dtype=torch.float64) for c in coefficients.columns_needed(options.coef)}
    weights = coefficients.coefficients(options.coef, columns, options.weighting()).double()
    mean = float(weights.mean())
    if not mean > 0:
        raise DataError(f"the weights from --coef {options.coef} have mean {mean}: cannot normalize", source=source)
    if NORMALIZED in data.column_names:
        data = data.remove_columns(NORMALIZED)
    data = data.add_column(NORMALIZED, (weights / mean).tolist())
    return data, dataclasses.replace(options, coef=NORMALIZED), mean


def run_policy_training(config, args: TrainingArguments, options: LossOptions, run: RunOptions | None = None) -> dict:
    """Train ``config.model`` on ``config.train_data`` with ``options.loss``; ``config`` is a
    policy config (model, data, tokenization and LoRA options)."""
    run = run or RunOptions()
    check_training_args(args)  # also forms the process group when launched, before reference log-probs
    for model in (config.model, run.reference_model):
        if model:
            check_role(model, "policy")
    with claimed_output_dir(args, config.overwrite_output_dir):
        return _train(config, args, options, run)


def _train(config, args: TrainingArguments, options: LossOptions, run: RunOptions) -> dict:
    started = time.time()
    objective = POLICY_OBJECTIVES[options.loss]
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    data, report = load_preferences(
        config.train_data,
        format=config.format,
        skip_bad_rows=config.skip_bad_rows,
        numeric_columns=objective.required_columns(options),
    )
    logger.info(report.summary())
    check_step_size(args, len(data), config.train_data)
    if objective.ranked and "responses" not in data.column_names:
        data = pairs_as_ranked(data)
    check_columns(objective, options, data.column_names, config.train_data)
    weights_mean = None
    if options.coef and options.coef_normalize:
        data, options, weights_mean = normalized_weights(data, objective, options, config.train_data)
    reference_path = run.reference_model or config.model
    precomputed = usable_reference_columns(
        objective,
        options,
        data.column_names,
        config.train_data,
        reference_path,
        config.tokenizer or reference_path,
        config.tokenization,
    )
    if objective.ranked:
        dataset = tokenize_ranked(data, tokenizer, config.tokenization)
    else:
        dataset = tokenize_pairs(data, tokenizer, config.tokenization, with_kl="kl" in objective.blocks)
    student_head = objective.student_head(options)
    dtype = model_dtype(config.dtype)
    model = load_causal_lm(
        config.model,
        tokenizer,
        reward_head=student_head,
        seed=args.seed,
        trust_remote_code=config.trust_remote_code,
        dtype=dtype,
    )
    resolve_learning_rate(args, model.config, config.lora_r > 0)
    if config.disable_dropout:
        disable_dropout(model)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    reference_started = time.time()
    if objective.uses_reference(options) and not precomputed:
        reference = load_causal_lm(run.reference_model, tokenizer) if run.reference_model else model
        dataset = add_reference_columns(
            dataset, reference, tokenizer.pad_token_id, objective.blocks, run.ref_batch_size, run.share_prefix
        )
        del reference
    reference_seconds = time.time() - reference_started
    heads = ["reward_head"] if student_head else None
    model = apply_lora(model, config, "CAUSAL_LM", modules_to_save=heads, seed=args.seed)
    reads = (set(PAIR_NUMBERS) | set(objective.required_columns(options))) - set(PAIR_LISTS)
    numbers = tuple(c for c in dataset.column_names if c in reads)
    collator = PolicyCollator(
        tokenizer.pad_token_id,
        blocks=objective.blocks,
        ranked=objective.ranked,
        share_prefix=run.share_prefix and not student_head,
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
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_save(trainer, args.output_dir, "policy", run.merge_lora)
    diagnostics, warnings = objective.diagnostics(trainer.traced(), trainer.state.log_history, options)
    for warning in warnings:
        logger.warning("%s: %s", options.loss, warning)
    summary = {
        "loss": options.loss,
        "options": {f.name: getattr(options, f.name) for f in fields(LossOptions)},
        "train_rows": len(data),
        "skipped_rows": report.skipped,
        "duplicate_rows": report.duplicates,
        "weights_mean_before_normalization": weights_mean,
        "steps": result.global_step,
        **trainer.whole_run,
        "diagnostics": diagnostics,
        "warnings": warnings,
        "reference_seconds": reference_seconds,
        "wall_seconds": time.time() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "log_history": trainer.state.log_history,
    }
    if args.should_save:
        write_text(Path(args.output_dir) / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    method = options.loss + (f"+rc({options.coef})" if options.coef else "")
    write_run_card(config, args, kind="policy", stage=run.command, method=method, summary=summary)
    return summary
