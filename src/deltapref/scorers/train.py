"""``deltapref train-scorer``: reward model, difference model, oracle, or an ensemble of reward
models, then a held-out evaluation written beside the model (``scorer_eval.json``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from transformers import TrainingArguments

from ..config import ModelDataOptions, option
from ..distributed import say
from ..data.loading import load_preferences
from ..data.tokenization import TokenizationConfig
from ..evaluation.scorer_metrics import scorer_report
from ..models import load_causal_lm, load_scorer, load_sequence_scorer, load_tokenizer, model_dtype
from ..peft_utils import LoraOptions, apply_lora
from ..training import check_training_args, final_save
from .inference import pair_differences, pointwise_rewards
from .trainer import ScorerCollator, ScorerTrainer, prepare_scorer_dataset

logger = logging.getLogger(__name__)
SCORER_KINDS = ("reward", "difference", "oracle", "ensemble")


@dataclass
class ScorerConfig(LoraOptions, ModelDataOptions):
    kind: str = option("reward", "reward (Bradley-Terry), difference (RDO pair model), oracle (DRDO), "
                       "or ensemble (several reward models differing by seed)")
    eval_data: str = option(None, "held-out pairs for the report written after training")
    margin_column: str = option(None, "reward model: a column of per-pair margins m in -log σ(Δ - m)")
    lambda_dup: float = option(1.0, "difference model: weight of the duplication term d(x,y,y)^2 (0 = off)")
    lambda_rev: float = option(1.0, "difference model: weight of the reverse term (d(x,a,b)+d(x,b,a))^2 (0 = off)")
    both_orders: bool = option(True, "difference model: show every pair in both orders in the main loss")
    alpha_lm: float = option(0.01, "oracle: weight of the language-modelling term (DRDO Eq. 5)")
    ensemble_size: int = option(3, "ensemble: number of reward models (seeds seed, seed+1, ...)")

    def __post_init__(self):
        super().__post_init__()
        if self.kind not in SCORER_KINDS:
            raise ValueError(f"--kind must be one of {', '.join(SCORER_KINDS)}")
        if self.lambda_dup < 0 or self.lambda_rev < 0 or not 0 <= self.alpha_lm <= 1:
            raise ValueError("lambda_dup/lambda_rev must be >= 0 and alpha_lm in [0, 1]")
        if self.ensemble_size < 1:
            raise ValueError("--ensemble_size must be >= 1")


def _build(config: ScorerConfig, tokenizer, seed: int):
    dtype = model_dtype(config.dtype)
    if config.kind == "oracle":
        model = load_causal_lm(config.model, tokenizer, reward_head=True, seed=seed,
                               trust_remote_code=config.trust_remote_code, dtype=dtype)
        return apply_lora(model, config, "CAUSAL_LM", modules_to_save=["reward_head"])
    model = load_sequence_scorer(config.model, tokenizer, seed=seed,
                                 trust_remote_code=config.trust_remote_code, dtype=dtype)
    return apply_lora(model, config, "SEQ_CLS")


def train_one(config: ScorerConfig, args: TrainingArguments) -> dict:
    """Train one scorer of ``config.kind`` (not ensemble) into ``args.output_dir``."""
    check_training_args(args)
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    train, report = load_preferences(config.train_data, format=config.format, skip_bad_rows=config.skip_bad_rows)
    logger.info(report.summary())
    model = _build(config, tokenizer, args.seed)
    dataset = prepare_scorer_dataset(train, tokenizer, config.kind, config.tokenization, args.seed,
                                     config.margin_column)
    collator = ScorerCollator(tokenizer.pad_token_id, config.kind,
                              use_reverse=config.both_orders or config.lambda_rev > 0,
                              use_duplicate=config.lambda_dup > 0)
    trainer = ScorerTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                            processing_class=tokenizer, kind=config.kind, lambda_dup=config.lambda_dup,
                            lambda_rev=config.lambda_rev, alpha_lm=config.alpha_lm)
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_save(trainer, args.output_dir)
    summary = {"kind": config.kind, "train_rows": len(train), "skipped_rows": report.skipped,
               "train_loss": result.training_loss, "steps": result.global_step,
               "log_history": trainer.state.log_history}
    if config.eval_data and args.should_save:
        summary["eval"] = evaluate_scorer(args.output_dir, config.kind, config.eval_data, config.tokenization,
                                          format=config.format, batch_size=args.per_device_eval_batch_size)
    if args.should_save:
        (Path(args.output_dir) / "scorer_eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def train_scorer(config: ScorerConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref train-scorer``."""
    if config.kind != "ensemble":
        summary = train_one(config, args)
        _print_eval(config.kind, args.output_dir, summary)
        return 0
    members = []
    for i in range(config.ensemble_size):
        member_dir = str(Path(args.output_dir) / f"member-{i}")
        summary = train_one(replace(config, kind="reward"), replace(args, output_dir=member_dir, seed=args.seed + i))
        _print_eval(f"ensemble member {i}", member_dir, summary)
        members.append(f"member-{i}")
    (Path(args.output_dir) / "ensemble.json").write_text(json.dumps({"members": members}, indent=2) + "\n")
    return 0


def _print_eval(name: str, output_dir: str, summary: dict) -> None:
    line = f"{name} scorer saved to {output_dir}: {summary['steps']} steps, train loss {summary['train_loss']:.4f}"
    if "eval" in summary:
        line += f", held-out accuracy {summary['eval']['accuracy']:.3f}"
        if "gold_accuracy" in summary["eval"]:
            line += f" (vs gold {summary['eval']['gold_accuracy']:.3f})"
    say(line)


def evaluate_scorer(model_dir: str, kind: str, data: str, tokenization: TokenizationConfig,
                    format: str = "auto", batch_size: int = 32) -> dict:
    """Held-out report for a saved scorer: accuracy, buckets, calibration, consistency."""
    model, tokenizer = load_scorer(model_dir)
    rows, _ = load_preferences(data, format=format)
    prompts, chosen, rejected = rows["prompt"], rows["chosen"], rows["rejected"]
    reverse = duplicate = None
    if kind == "difference":
        deltas = pair_differences(model, tokenizer, prompts, chosen, rejected, tokenization, batch_size)
        reverse = pair_differences(model, tokenizer, prompts, rejected, chosen, tokenization, batch_size)
        duplicate = pair_differences(model, tokenizer, prompts, chosen, chosen, tokenization, batch_size)
    else:
        r_chosen = pointwise_rewards(model, tokenizer, prompts, chosen, tokenization, batch_size)
        r_rejected = pointwise_rewards(model, tokenizer, prompts, rejected, tokenization, batch_size)
        deltas = [a - b for a, b in zip(r_chosen, r_rejected)]
    gold = None
    if "gold_reward_chosen" in rows.column_names:
        gold = [a - b for a, b in zip(rows["gold_reward_chosen"], rows["gold_reward_rejected"])]
    return scorer_report(deltas, gold, reverse, duplicate)
