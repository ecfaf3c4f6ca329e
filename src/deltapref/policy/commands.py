"""``deltapref sft`` and ``deltapref align``: configs and the runs behind them."""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from transformers import TrainingArguments

from ..config import ModelDataOptions, option
from ..distributed import say
from ..data.loading import load_preferences
from ..data.schema import DataError
from ..models import describe, load_causal_lm, load_tokenizer, model_dtype
from ..peft_utils import LoraOptions, apply_lora
from ..scoring import read_meta
from ..training import check_training_args, final_save
from .data import PAIR_NUMBERS, PolicyCollator, pairs_as_ranked, tokenize_pairs, tokenize_ranked
from .reference import add_reference_columns
from .trainer import NEEDS_REFERENCE, POLICY_LOSSES, AlignTrainer, LossOptions

logger = logging.getLogger(__name__)


@dataclass
class PolicyConfig(LoraOptions, ModelDataOptions):
    """A policy to train on pairs (or ranked lists for RRHF)."""


@dataclass
class AlignConfig(PolicyConfig):
    loss: str = option("dpo", "objective: dpo, ipo, rrhf, kto, edpo, drdo (or sft)")
    coef: str = option(None, "reward-difference coefficients: diff (σ(d)^α), reward / oracle / ensemble "
                       "(σ(r_w − r_l)^α from those columns), or a column of precomputed coefficients; "
                       "for rrhf: a column of per-response rewards r_i (e.g. scores) giving σ(r_j − r_i)^α")
    alpha: float = option(1.0, "coefficient exponent α; 0 reproduces the unweighted method exactly")
    beta: float = option(0.1, "β of DPO/KTO/e-DPO (RDO used 0.2)")
    tau: float = option(0.1, "IPO τ (target margin 1/(2τ))")
    kto_lambda_d: float = option(1.0, "KTO desirable weight λ_D")
    kto_lambda_u: float = option(1.0, "KTO undesirable weight λ_U")
    edpo_rewards: str = option("reward", "e-DPO targets: reward (reward_*), ensemble (ensemble_reward_*), oracle")
    edpo_ensemble: str = option("mean", "e-DPO with an ensemble: mean gap, or pessimistic (worst member per pair)")
    drdo_alpha: float = option(0.1, "DRDO weight α of the focal preference term")
    drdo_gamma: float = option(2.0, "DRDO focal exponent γ")
    drdo_logp: str = option("sum", "DRDO z = log π(y|x) as a token sum or a length mean")
    student_reward: str = option("head", "DRDO student reward: head (scalar head on the policy) or logp (β·log π)")
    ipo_length_normalize: bool = option(True, "IPO on length-normalized log-ratios (as TRL)")
    reference_model: str = option(None, "reference for missing ref_logp_* columns (default: --model, i.e. "
                                  "the policy before training; with LoRA: the adapter switched off)")
    ref_batch_size: int = option(32, "batch size of the reference log-prob pass")
    share_prefix: bool = option(True, "encode each prompt once per pair/list (block attention mask, restarted "
                                "positions; exact) instead of once per response; off for a DRDO student head")
    merge_lora: bool = option(True, "merge LoRA weights into the saved model")

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in POLICY_LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(POLICY_LOSSES)}")
        if self.alpha < 0:
            raise ValueError("--alpha must be >= 0")
        if self.edpo_rewards not in ("reward", "ensemble", "oracle") or self.edpo_ensemble not in ("mean", "pessimistic"):
            raise ValueError("--edpo_rewards is reward|ensemble|oracle and --edpo_ensemble mean|pessimistic")
        if self.drdo_logp not in ("sum", "mean") or self.student_reward not in ("head", "logp"):
            raise ValueError("--drdo_logp is sum|mean and --student_reward head|logp")

    def loss_options(self) -> LossOptions:
        return LossOptions(**{f.name: getattr(self, f.name) for f in fields(LossOptions)})


@dataclass
class SFTConfig(PolicyConfig):
    """Supervised fine-tuning on the chosen responses (response tokens only in the loss)."""


def _required_columns(config: AlignConfig, columns: list[str]) -> None:
    need = []
    if config.loss == "rrhf":
        need = [config.coef] if config.coef else []
    elif config.loss == "drdo":
        need = ["oracle_reward_chosen", "oracle_reward_rejected"]
    elif config.loss == "edpo":
        need = {"reward": ["reward_chosen", "reward_rejected"], "oracle": ["oracle_reward_chosen", "oracle_reward_rejected"],
                "ensemble": ["ensemble_reward_chosen", "ensemble_reward_rejected"]}[config.edpo_rewards]
    if config.coef and config.loss != "rrhf":
        need += {"diff": ["diff"], "reward": ["reward_chosen", "reward_rejected"],
                 "oracle": ["oracle_reward_chosen", "oracle_reward_rejected"],
                 "ensemble": ["ensemble_reward_chosen", "ensemble_reward_rejected"]}.get(config.coef, [config.coef])
    missing = [c for c in need if c not in columns]
    if missing:
        hint = " (ranked lists: prompt, responses, scores)" if config.loss == "rrhf" else \
            " (add them with `deltapref score`)"
        raise DataError(f"--loss {config.loss}{' --coef ' + config.coef if config.coef else ''} needs column(s) "
                        f"{', '.join(missing)}{hint}", source=config.train_data)


def _check_reference_provenance(config: AlignConfig, columns: list[str]) -> bool:
    """True when usable ref_logp_* columns are present; refuses ones from another model."""
    wanted = ["ref_logp_chosen", "ref_logp_rejected"] + (["ref_logp_kl"] if config.loss == "kto" else [])
    if not all(c in columns for c in wanted):
        return False
    origin = read_meta(config.train_data)["columns"].get("ref_logp_chosen")
    reference = describe(config.reference_model or config.model)["path"]
    if origin is None:
        logger.warning("%s has ref_logp_* columns of unknown origin: using them as the reference", config.train_data)
    elif origin["model"]["path"] != reference:
        raise DataError(f"ref_logp_* columns were computed by {origin['model']['path']}, not by the reference "
                        f"{reference}; pass --reference_model or drop the columns", source=config.train_data)
    return True


def run_policy_training(config: AlignConfig | SFTConfig, args: TrainingArguments, loss: str) -> dict:
    check_training_args(args)  # also forms the process group when launched, before reference log-probs
    started = time.time()
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
    data, report = load_preferences(config.train_data, format=config.format, skip_bad_rows=config.skip_bad_rows)
    logger.info(report.summary())
    options = config.loss_options() if isinstance(config, AlignConfig) else LossOptions(loss="sft")
    ranked = loss == "rrhf"
    if ranked and "responses" not in data.column_names:
        data = pairs_as_ranked(data)
    if isinstance(config, AlignConfig):
        _required_columns(config, data.column_names)
    with_kl = loss == "kto"
    dataset = tokenize_ranked(data, tokenizer, config.tokenization) if ranked else \
        tokenize_pairs(data, tokenizer, config.tokenization, with_kl=with_kl)
    student_head = loss == "drdo" and options.student_reward == "head"
    share_prefix = getattr(config, "share_prefix", False) and loss != "sft"
    model = load_causal_lm(config.model, tokenizer, reward_head=student_head, seed=args.seed,
                           trust_remote_code=config.trust_remote_code, dtype=model_dtype(config.dtype))
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    reference_started = time.time()
    if loss in NEEDS_REFERENCE and not _check_reference_provenance(config, dataset.column_names):
        reference = model if not config.reference_model else load_causal_lm(config.reference_model, tokenizer)
        dataset = add_reference_columns(dataset, reference, tokenizer.pad_token_id, with_kl, config.ref_batch_size,
                                        share_prefix)
        del reference
    reference_seconds = time.time() - reference_started
    model = apply_lora(model, config, "CAUSAL_LM", modules_to_save=["reward_head"] if student_head else None)
    numbers = tuple(c for c in dataset.column_names if c in PAIR_NUMBERS or c == options.coef)
    collator = PolicyCollator(tokenizer.pad_token_id, ranked=ranked, with_kl=with_kl, chosen_only=loss == "sft",
                              share_prefix=share_prefix and not student_head,
                              reward_column=options.coef if ranked and options.coef else "scores", numbers=numbers)
    trainer = AlignTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                           processing_class=tokenizer, options=options)
    train_start = time.time()
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    train_seconds = time.time() - train_start
    final_save(trainer, args.output_dir, getattr(config, "merge_lora", True))
    summary = {"loss": loss, "options": asdict(options), "train_rows": len(data), "skipped_rows": report.skipped,
               "steps": result.global_step, "train_loss": result.training_loss,
               "reference_seconds": reference_seconds, "train_seconds": train_seconds, "steps_per_second": result.global_step / max(train_seconds, 1e-9),
               "wall_seconds": time.time() - started,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "log_history": trainer.state.log_history}
    if args.should_save:
        (Path(args.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def align(config: AlignConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref align``."""
    summary = run_policy_training(config, args, config.loss)
    say(f"{config.loss}{' +rc(' + config.coef + ')' if config.coef else ''}: {summary['steps']} steps, "
          f"train loss {summary['train_loss']:.4f}, {summary['steps_per_second']:.2f} steps/s; saved to {args.output_dir}")
    return 0


def sft(config: SFTConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref sft``."""
    summary = run_policy_training(config, args, "sft")
    say(f"sft: {summary['steps']} steps, train loss {summary['train_loss']:.4f}; saved to {args.output_dir}")
    return 0
