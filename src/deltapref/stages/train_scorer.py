"""Stage ``deltapref train-scorer``: its config and entry point (the runs: ``scorer_run``) —
reward model, difference model, oracle, or an ensemble of reward models, each evaluated on
held-out pairs (``scorer_eval.json`` beside the model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transformers import TrainingArguments

from deltapref.config.commands import ModelDataOptions, option
from deltapref.objectives import ScorerLossOptions, TrainedKind
from deltapref.scorers.run import scorer_identity, scorer_inputs, train_cross_fit, train_ensemble, train_one
from deltapref.training.distributed import say
from deltapref.training.lora import LoraOptions
from deltapref.training.run_folder import claimed_output_dir


@dataclass
class TrainScorerConfig(ScorerLossOptions, LoraOptions, ModelDataOptions):
    kind: Literal[TrainedKind, "ensemble"] = option(
        "reward",
        "reward (Bradley-Terry), difference (RDO pair model), oracle (DRDO), "
        "or ensemble (several reward models differing by seed)",
    )
    eval_data: str = option(None, "held-out pairs for the report written after training")
    ensemble_size: int = option(3, "ensemble: number of reward models (seeds seed, seed+1, ...)", ge=1)
    cross_fit: int = option(
        0,
        "K > 1: train K scorers, fold i on the pairs outside fold i (folds by a hash of each pair); `score` then "
        "scores every pair with the fold scorer that never saw it",
        ge=0,
    )

    def __post_init__(self):
        super().__post_init__()
        if self.cross_fit == 1:
            raise ValueError("--cross_fit needs at least 2 folds (or 0: off)")
        if self.cross_fit and self.kind == "ensemble":
            raise ValueError("--cross_fit works with one scorer kind (reward, difference or oracle), not ensemble")

    @property
    def one_model(self) -> bool:
        """Whether the run trains one model (not cross-fit folds or ensemble members)."""
        return self.kind != "ensemble" and not self.cross_fit


def train_scorer(config: TrainScorerConfig, args: TrainingArguments) -> int:
    """Entry point of ``deltapref train-scorer``."""
    if config.one_model:
        _print_eval(config.kind, args.output_dir, train_one(config, args))
        return 0
    inputs, identity = scorer_inputs(config), scorer_identity(config, args)
    with claimed_output_dir(args, "train-scorer", inputs, config.overwrite_output_dir, identity, composite=True):
        (train_cross_fit if config.cross_fit else train_ensemble)(config, args, _print_eval)
    return 0


def _print_eval(name: str, output_dir: str, summary: dict) -> None:
    line = f"{name} scorer saved to {output_dir}: {summary['steps']} steps, train loss {summary['train_loss']:.4f}"
    report = summary.get("eval")
    if report:
        balanced = " (order-balanced)" if "order_dependence" in report else ""
        line += f", held-out accuracy {report['accuracy']:.3f}{balanced}"
        if "gold_accuracy" in report:
            line += f" (vs gold {report['gold_accuracy']:.3f})"
        if report.get("order_insensitive"):
            line += (
                f"\nWARNING: its output barely depends on the order of the responses (order dependence "
                f"{report['order_dependence']:.2f}; accuracy {report['accuracy_chosen_first']:.3f} with the chosen "
                f"response first, {report['accuracy_rejected_first']:.3f} with it second): not a usable "
                "difference model"
            )
    for warning in summary.get("warnings", []):
        line += f"\nWARNING: {warning}"
    say(line)
