"""One policy training run (what ``deltapref sft`` and ``deltapref align`` do): check the output,
the model's role and the data (columns present, numbers finite), tokenize in the objective's
layout, add reference log-probs when the objective needs them (or check that the data's own
were computed by the same reference), train with ``AlignTrainer``, save the model and a summary."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, fields

from transformers import TrainingArguments

from deltapref.columns import PAIR_LISTS, PAIR_NUMBERS, ref_logp
from deltapref.data.schema import DataError
from deltapref.forward.logprobs import attention_implementation, takes_block_mask
from deltapref.models.loading import check_policy, load_causal_lm, load_tokenizer, model_dtype
from deltapref.models.preflight import check_model_fits
from deltapref.models.provenance import identity_mismatch, read_meta, reference_identity
from deltapref.objectives import POLICY_OBJECTIVES, PolicyLossOptions, PolicyObjective
from deltapref.policy.data import (
    PolicyCollator,
    tokenize_pairs,
    tokenize_ranked,
)
from deltapref.policy.preparation import prepared
from deltapref.policy.reference import add_reference_columns
from deltapref.policy.trainer import AlignTrainer
from deltapref.training.arguments import check_step_size, check_training_args
from deltapref.training.card import write_run_card
from deltapref.training.checkpoints import run_identity
from deltapref.training.host_memory import keep_freed_memory
from deltapref.training.lora import apply_lora
from deltapref.training.run_folder import claimed_output_dir, final_save
from deltapref.training.sharding import check_reference_pass_possible
from deltapref.training.shared import load_training_data, ready_for_training, run_summary, save_summary

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How a run computes what it needs besides the objective's options."""

    share_prefix: bool = False
    pack: bool = False
    reference_model: str | None = None
    ref_batch_size: int = 32
    merge_lora: bool = True
    command: str = "align"  # the stage that runs it (named in the model card)


def usable_reference_columns(
    objective: PolicyObjective,
    options: PolicyLossOptions,
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


def run_policy_training(
    config, args: TrainingArguments, options: PolicyLossOptions, run: RunOptions | None = None
) -> dict:
    """Train ``config.model`` on ``config.train_data`` with ``options.loss``; ``config`` is a
    policy config (model, data, tokenization and LoRA options)."""
    run = run or RunOptions()
    # also forms the process group when launched, before reference log-probs
    check_training_args(args)
    keep_freed_memory(args.device.type == "cpu")
    for model in (config.model, run.reference_model):
        if model:
            check_policy(model)
    inputs = [config.model, config.tokenizer, config.train_data, run.reference_model]
    identity = lambda: run_identity(run.command, config, options, PolicyLossOptions, args)  # noqa: E731
    with claimed_output_dir(args, run.command, inputs, config.overwrite_output_dir, identity) as claim:
        return _train(config, args, options, run, claim.identity)


def _train(config, args: TrainingArguments, options: PolicyLossOptions, run: RunOptions, identity: dict) -> dict:
    started = time.time()
    objective = POLICY_OBJECTIVES[options.loss]
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    data, report, trained, weights_mean, labels = _training_data(config, args, objective, options)
    reference_path = run.reference_model or config.model
    precomputed = usable_reference_columns(
        objective,
        trained,
        data.column_names,
        config.train_data,
        reference_path,
        config.tokenizer or reference_path,
        config.tokenization,
    )
    dataset = _tokenized(data, tokenizer, objective, config)
    student_head = objective.student_head(trained)
    model = _policy_model(config, args, tokenizer, student_head)
    reference_started = time.time()
    if objective.uses_reference(trained) and not precomputed:
        check_reference_pass_possible(options.loss)
        dataset = _with_reference(dataset, model, tokenizer, objective, run)
    reference_seconds = time.time() - reference_started
    heads = ["reward_head"] if student_head else None
    share_prefix, pack = (False, False) if student_head else layout(model, run)
    trainer = AlignTrainer(
        model=apply_lora(model, config, "CAUSAL_LM", modules_to_save=heads, seed=args.seed),
        args=args,
        train_dataset=dataset,
        data_collator=_collator(dataset, tokenizer, objective, trained, share_prefix, pack),
        processing_class=tokenizer,
        options=trained,
    )
    trainer.run_identity = identity
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_save(trainer, args.output_dir, "policy", run.merge_lora)
    diagnostics, warnings = objective.diagnostics(trainer.traced(), trainer.state.log_history, trained)
    for warning in warnings:
        logger.warning("%s: %s", options.loss, warning)
    summary = {
        "loss": options.loss,
        "options": {f.name: getattr(options, f.name) for f in fields(PolicyLossOptions)},
        **run_summary(
            trainer,
            result,
            data,
            report,
            weights_mean_before_normalization=weights_mean,
            **({"labels": labels} if labels else {}),
            diagnostics=diagnostics,
            warnings=warnings,
            reference_seconds=reference_seconds,
            wall_seconds=time.time() - started,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        ),
    }
    save_summary(args, "train_summary.json", summary)
    _write_card(config, args, objective, options, run, summary)
    return summary


def _training_data(config, args: TrainingArguments, objective: PolicyObjective, options: PolicyLossOptions):
    """The training data loaded (with its load report) and made ready for the objective
    (``preparation.prepared``), checked again for a step's worth of pairs after a drop."""
    data, report = load_training_data(config, args, objective.required_columns(options))
    data, trained, weights_mean, labels = prepared(data, objective, options, config.train_data, args.seed)
    if labels.get("label_correction", {}).get("dropped"):
        check_step_size(args, len(data), config.train_data)
    return data, report, trained, weights_mean, labels


def _write_card(config, args, objective: PolicyObjective, options: PolicyLossOptions, run: RunOptions, summary: dict):
    method = options.loss + (f"+rc({options.coef})" if options.coef else "")
    read = tuple(objective.required_columns(options))
    write_run_card(config, args, kind="policy", stage=run.command, method=method, summary=summary, read_columns=read)


def _tokenized(data, tokenizer, objective: PolicyObjective, config):
    if objective.ranked:
        return tokenize_ranked(data, tokenizer, config.tokenization)
    return tokenize_pairs(data, tokenizer, config.tokenization, with_kl="kl" in objective.blocks)


def _policy_model(config, args: TrainingArguments, tokenizer, student_head: bool):
    """The policy to train (with the DRDO student's reward head when the objective reads one),
    its generation config ending and padding as the tokenizer does."""
    model = load_causal_lm(
        config.model,
        tokenizer,
        reward_head=student_head,
        seed=args.seed,
        trust_remote_code=config.trust_remote_code,
        dtype=model_dtype(config.dtype),
    )
    check_model_fits(model, tokenizer, config.model, config.max_length)
    ready_for_training(model, config, args)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _with_reference(dataset, model, tokenizer, objective: PolicyObjective, run: RunOptions):
    """``ref_logp_<block>`` columns from ``run.reference_model``, or from the policy before training."""
    reference = load_causal_lm(run.reference_model, tokenizer) if run.reference_model else model
    return add_reference_columns(
        dataset, reference, tokenizer.pad_token_id, objective.blocks, run.ref_batch_size, *layout(reference, run)
    )


def layout(model, run: RunOptions) -> tuple[bool, bool]:
    """(share_prefix, pack) as asked, where the model's attention takes a block mask; else the
    one-row-per-response layout, said in one line (never a silently ignored mask)."""
    asked = (run.share_prefix, run.pack)
    if any(asked) and not takes_block_mask(model):
        logger.warning(
            "%s attention takes no block mask: one row per response instead of prefix sharing/packing",
            attention_implementation(model),
        )
        return False, False
    return asked


def _collator(
    dataset, tokenizer, objective: PolicyObjective, options: PolicyLossOptions, share_prefix: bool, pack: bool
):
    """Batches in the objective's layout carrying the numeric columns it reads."""
    reads = (set(PAIR_NUMBERS) | set(objective.required_columns(options))) - set(PAIR_LISTS)
    return PolicyCollator(
        tokenizer.pad_token_id,
        blocks=objective.blocks,
        ranked=objective.ranked,
        share_prefix=share_prefix,
        pack=pack,
        reward_column=options.coef or "scores",
        numbers=tuple(c for c in dataset.column_names if c in reads),
    )
