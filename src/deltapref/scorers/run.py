"""One scorer training run (what ``deltapref train-scorer`` does), and the runs made of several:
cross-fit folds and reward-model ensembles. A run checks the output, the model's role and the
data, builds the kind's model, tokenizes in its layout, trains with ``ScorerTrainer``, saves the
model, evaluates it on held-out pairs and writes a summary beside it (``scorer_eval.json``).

``config`` is the stage's ``TrainScorerConfig`` (scorer, LoRA, model and data options)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from transformers import TrainingArguments

from deltapref.artifacts.outputs import write_text
from deltapref.artifacts.records import CROSS_FIT, read_record
from deltapref.data.loading import load_preferences
from deltapref.data.schema import DataError
from deltapref.data.splits import fold_of
from deltapref.data.writing import write_jsonl
from deltapref.evaluation.scorer_eval import evaluate_scorer
from deltapref.models.loading import (
    check_policy,
    load_causal_lm,
    load_sequence_scorer,
    load_tokenizer,
    model_dtype,
    unwrap,
)
from deltapref.models.preflight import check_model_fits
from deltapref.objectives import SCORER_OBJECTIVES, ScorerLossOptions
from deltapref.scorer_kinds import SCORER_KINDS
from deltapref.scorers.trainer import ScorerCollator, ScorerTrainer, prepare_scorer_dataset
from deltapref.training.arguments import check_training_args
from deltapref.training.card import write_run_card
from deltapref.training.checkpoints import run_identity
from deltapref.training.host_memory import keep_freed_memory
from deltapref.training.lora import apply_lora
from deltapref.training.run_folder import claimed_output_dir, final_save
from deltapref.training.shared import load_training_data, ready_for_training, run_summary, save_summary

logger = logging.getLogger(__name__)
Done = Callable[[str, str, dict], None]  # (name, output dir, summary) of each trained member
SUMMARY = "scorer_eval.json"  # beside the model: the run's summary and held-out evaluation


def _build(config, objective, tokenizer, seed: int):
    dtype = model_dtype(config.dtype)
    if objective.causal_lm:
        model = load_causal_lm(
            config.model,
            tokenizer,
            reward_head=True,
            seed=seed,
            trust_remote_code=config.trust_remote_code,
            dtype=dtype,
        )
        check_model_fits(model, tokenizer, config.model, config.max_length)
        return apply_lora(model, config, "CAUSAL_LM", modules_to_save=["reward_head"], seed=seed)
    model = load_sequence_scorer(
        config.model, tokenizer, seed=seed, trust_remote_code=config.trust_remote_code, dtype=dtype
    )
    check_model_fits(model, tokenizer, config.model, config.max_length)
    return apply_lora(model, config, "SEQ_CLS", seed=seed)


def scorer_inputs(config) -> list:
    """What a scorer run reads: its model, tokenizer and data."""
    return [config.model, config.tokenizer, config.train_data, config.eval_data]


def scorer_identity(config, args: TrainingArguments):
    """The identity of a scorer run (``checkpoints.run_identity``), computed when called."""
    return lambda: run_identity("train-scorer", config, config, ScorerLossOptions, args)


def train_one(config, args: TrainingArguments, member: bool = False) -> dict:
    """Train one scorer of ``config.kind`` (not ensemble) into ``args.output_dir``; returns its
    summary (with ``eval`` when ``config.eval_data`` is set). A ``member`` of a cross-fit or
    ensemble run that finished with the same identity is kept, its summary returned."""
    check_training_args(args)
    keep_freed_memory(args.device.type == "cpu")
    objective = SCORER_OBJECTIVES[config.kind]
    if objective.causal_lm:
        check_policy(config.model)  # the oracle starts from a causal LM
    inputs, identity = scorer_inputs(config), scorer_identity(config, args)
    with claimed_output_dir(
        args, "train-scorer", inputs, config.overwrite_output_dir, identity, reuse_complete=member
    ) as claim:
        if claim.reused:
            logger.info("%s: finished in an earlier attempt of this run, kept", args.output_dir)
            return read_record(Path(args.output_dir) / SUMMARY, "the scorer's summary", {"steps": int})
        return _train_one(config, objective, args, claim.identity)


def _train_one(config, objective, args: TrainingArguments, identity: dict) -> dict:
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    margins = [config.margin_column] if config.margin_column else []
    train, report = load_training_data(config, args, margins)
    if config.margin_column and config.margin_column not in train.column_names:
        raise DataError(f"has no column {config.margin_column} (--margin_column)", source=config.train_data)
    if config.eval_data:  # checked now, not after training
        load_preferences(config.eval_data, format=config.format)
    model = _build(config, objective, tokenizer, args.seed)
    ready_for_training(model, config, args)
    config = objective.resolved(config, tokenizer, unwrap(model).config)
    for name, value in objective.saved_settings(config).items():
        setattr(unwrap(model).config, name, value)
    dataset = prepare_scorer_dataset(
        train, tokenizer, objective, objective.tokenization(config), args.seed, config.margin_column
    )
    trainer = ScorerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        data_collator=ScorerCollator(tokenizer.pad_token_id, objective, config),
        objective=objective,
        options=config,
    )
    trainer.run_identity = identity
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_save(trainer, args.output_dir, config.kind)
    warnings = objective.diagnostics(trainer.state.log_history)
    summary = {"kind": config.kind, **run_summary(trainer, result, train, report, warnings=warnings)}
    if config.eval_data and args.should_save:
        summary["eval"] = evaluate_scorer(
            args.output_dir,
            config.kind,
            config.eval_data,
            config.tokenization,
            format=config.format,
            batch_size=args.per_device_eval_batch_size,
        )
    save_summary(args, SUMMARY, summary)
    write_run_card(
        config,
        args,
        kind=config.kind,
        stage="train-scorer",
        method=config.kind,
        summary=summary,
        metrics=summary.get("eval"),
        loading=SCORER_KINDS[config.kind].card_loading,
    )
    return summary


def train_cross_fit(config, args: TrainingArguments, done: Done) -> None:
    """K fold scorers in OUTPUT/fold-i, each trained on the pairs outside its fold (written to
    ``OUTPUT/fold-i.train.jsonl``), and ``cross_fit.json`` listing them."""
    rows, report = load_preferences(config.train_data, format=config.format, skip_bad_rows=config.skip_bad_rows)
    logger.info(report.summary())
    folds = [fold_of(row, config.cross_fit) for row in rows]
    members = []
    for fold in range(config.cross_fit):
        member = Path(args.output_dir) / f"fold-{fold}"
        train = rows.select([i for i, f in enumerate(folds) if f != fold])
        train_data = write_jsonl(train, Path(args.output_dir) / f"fold-{fold}.train.jsonl")
        summary = train_one(
            replace(config, cross_fit=0, train_data=str(train_data), format="auto"),
            replace(args, output_dir=str(member)),
            member=True,
        )
        done(f"cross-fit fold {fold} ({len(train)} of {len(rows)} pairs)", str(member), summary)
        members.append(member.name)
    manifest = {
        "folds": config.cross_fit,
        "kind": config.kind,
        "members": members,
        "assignment": "sha256 of [prompt, chosen, rejected] modulo folds (deltapref.data.splits.fold_of)",
    }
    write_text(Path(args.output_dir) / CROSS_FIT, json.dumps(manifest, indent=2) + "\n")


def train_ensemble(config, args: TrainingArguments, done: Done) -> None:
    """``config.ensemble_size`` reward models in OUTPUT/member-i (seeds seed, seed+1, ...) and
    ``ensemble.json`` listing them."""
    members = []
    for i in range(config.ensemble_size):
        member_dir = str(Path(args.output_dir) / f"member-{i}")
        summary = train_one(
            replace(config, kind="reward"), replace(args, output_dir=member_dir, seed=args.seed + i), member=True
        )
        done(f"ensemble member {i}", member_dir, summary)
        members.append(f"member-{i}")
    write_text(Path(args.output_dir) / "ensemble.json", json.dumps({"members": members}, indent=2) + "\n")
