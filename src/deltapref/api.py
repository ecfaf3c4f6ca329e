"""deltapref in Python: the CLI's stages as functions taking the same options as keyword
arguments (``deltapref align --loss dpo --coef difference`` is ``align(loss="dpo",
coef="difference", ...)``), built into the same config classes, checked by the same code and run
by the same functions as the command line. Errors are raised, not turned into exit codes: a
:class:`deltapref.errors.DeltaprefError` (bad data, a model that does not load, an option out of
range) or a ``ValueError`` for an invalid option, with the same one-line message the CLI prints.

Training functions accept any ``transformers.TrainingArguments`` field too (``output_dir``,
``max_steps``, ``learning_rate``, ...), with deltapref's defaults (``training_arguments.TRAINING_DEFAULTS``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from deltapref.config.values import named_values
from deltapref.data.loading import load_preferences
from deltapref.stages import STAGES, configs_from

__all__ = [
    "align",
    "evaluate",
    "generate",
    "load_preferences",
    "make_builtin_task",
    "options_of",
    "score",
    "sft",
    "train_scorer",
]


def options_of(command: str) -> dict[str, Any]:
    """Every option ``command`` (``"align"``, ``"train-scorer"``, ``"data synth"``, ...) accepts,
    with its default as the Python functions apply it."""
    types, defaults = _command(command)
    options = {}
    for cls in types:
        for field in dataclasses.fields(cls):
            if field.default_factory is not dataclasses.MISSING:
                options[field.name] = field.default_factory()
            else:
                options[field.name] = None if field.default is dataclasses.MISSING else field.default
    return {**options, **{k: v for k, v in defaults.items() if k in options}}


def _command(command: str) -> tuple[list, dict]:
    words = tuple(command.split())
    if words not in STAGES:
        known = ", ".join(" ".join(w) for w in STAGES)
        raise ValueError(f"unknown command {command!r} (one of: {known})")
    stage = STAGES[words]
    defaults = {}
    if stage.trains:
        from deltapref.training.arguments import TRAINING_DEFAULTS

        defaults = TRAINING_DEFAULTS
    return stage.config_types(), defaults


def build_configs(command: str, options: dict[str, Any]) -> tuple:
    """The configs ``command`` runs with, built from keyword ``options`` by the same function as a
    recipe stage's (``stages.configs_from``: one type check, the same defaults and checks as the
    command line); an unknown keyword is a TypeError, as in any Python function."""
    types, _ = _command(command)
    named_values(types, options, command, TypeError, hint=f" (see deltapref.options_of({command!r}))")
    return configs_from(STAGES[tuple(command.split())], options, strings_parse=False)


def make_builtin_task(output_dir: str | Path, **options: Any) -> Path:
    """Write the built-in gold-reward task (``deltapref data synth``): JSONL splits, a tokenizer
    and ``task.json``. Returns ``output_dir``."""
    from deltapref.stages.data import synth

    (config,) = build_configs("data synth", {"output_dir": str(output_dir), **options})
    synth(config)
    return Path(output_dir)


def train_scorer(**options: Any) -> dict:
    """Train a reward model, difference model, oracle (``kind``) or an ensemble into
    ``output_dir`` (``deltapref train-scorer``). Returns the training summary (with ``eval``,
    the held-out metrics, when ``eval_data`` is given); for an ensemble, its members' paths."""
    from deltapref.scorers.run import train_one
    from deltapref.stages import train_scorer as stage

    config, args = build_configs("train-scorer", options)
    if config.one_model:
        return train_one(config, args)
    stage.train_scorer(config, args)
    return {"output_dir": args.output_dir}


def score(**options: Any) -> Path:
    """Annotate pairs with scorer outputs and coefficient columns (``deltapref score``).
    Returns the output path; ``load_preferences`` reads it back."""
    from deltapref.scorers.scoring import run_scoring

    (config,) = build_configs("score", options)
    run_scoring(config)
    return Path(config.output)


def sft(**options: Any) -> dict:
    """Supervised fine-tuning on the chosen responses (``deltapref sft``); returns the summary."""
    from deltapref.stages.align import train_sft

    return train_sft(*build_configs("sft", options))


def generate(**options: Any) -> Path:
    """Sample completions for prompts (``deltapref generate``): the same file, rows and seeds as
    the command line. Returns the output path; ``load_preferences``-style readers or
    ``datasets`` read it back."""
    from deltapref.stages.generate import generate as run

    (config,) = build_configs("generate", options)
    run(config)
    return Path(config.output)


EVALUATIONS = {"policy": "policy_report", "compare": "compare_report", "scorer": "scorer_report"}


def evaluate(what: str, **options: Any) -> dict:
    """``deltapref evaluate policy|compare|scorer`` with the same options: returns the report the
    command prints (and, given ``output``, writes the same JSON file)."""
    if what not in EVALUATIONS:
        raise ValueError(f"evaluate what? one of {', '.join(EVALUATIONS)}, got {what!r}")
    from deltapref.stages import evaluate as stage

    (config,) = build_configs(f"evaluate {what}", options)
    return getattr(stage, EVALUATIONS[what])(config)


def align(**options: Any) -> dict:
    """Align a policy (``deltapref align``): ``loss`` one of dpo, ipo, rrhf, kto, edpo, drdo;
    ``coef`` a coefficient source for reward-difference weights. Returns the training summary
    (also written to ``output_dir/train_summary.json``, with the model and its card)."""
    from deltapref.stages.align import train_aligned

    return train_aligned(*build_configs("align", options))
