"""The stages of the flow, in order: data → sft → train-scorer → score → align → generate →
evaluate. Each stage module holds only its config(s) and entry point; ``STAGES`` maps command
words to them, and ``run`` parses a command line and calls the entry point. The pipeline runs
recipes of these stages; the CLI adds the commands that run pipelines."""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Command:
    """A command: the module holding it, its config class names, its entry point, one line of
    help, and whether it trains (its last config is ``TrainingArguments``, with deltapref's
    defaults). Modules are named, not imported, so the CLI starts without loading torch."""

    module: str
    configs: tuple[str, ...]
    function: str
    description: str
    trains: bool = False

    def config_types(self) -> list:
        """The config classes (a stage module that trains imports ``TrainingArguments``)."""
        module = import_module(self.module)
        return [getattr(module, name) for name in self.configs]

    def has_option(self, name: str) -> bool:
        return any(name in cls.__dataclass_fields__ for cls in self.config_types())


TRAIN = ("TrainingArguments",)
STAGES: dict[tuple[str, ...], Command] = {
    ("data", "synth"): Command(
        "deltapref.stages.data",
        ("SynthConfig",),
        "synth",
        "write the built-in gold-reward task (pairs, ranked lists, tokenizer)",
    ),
    ("data", "inspect"): Command(
        "deltapref.stages.data",
        ("InspectConfig",),
        "inspect",
        "show normalized rows, columns and token-length statistics",
    ),
    ("data", "validate"): Command(
        "deltapref.stages.data",
        ("SourceConfig",),
        "validate",
        "check every row; name the file, row and field of the first bad one",
    ),
    ("data", "convert"): Command(
        "deltapref.stages.data",
        ("ConvertConfig",),
        "convert",
        "normalize HH / rm-static / TL;DR / UltraFeedback data and write it out",
    ),
    ("data", "partition"): Command(
        "deltapref.stages.data",
        ("PartitionConfig",),
        "partition",
        "disjoint random parts (e.g. scorer / policy / judge / test) with a seed",
    ),
    ("data", "split"): Command(
        "deltapref.stages.data",
        ("SplitConfig",),
        "split",
        "DRDO easy/hard splits by annotator confidence and edit distance",
    ),
    ("sft",): Command(
        "deltapref.stages.align",
        ("SFTConfig",) + TRAIN,
        "sft",
        "supervised fine-tuning on chosen responses (response tokens only)",
        trains=True,
    ),
    ("train-scorer",): Command(
        "deltapref.stages.train_scorer",
        ("TrainScorerConfig",) + TRAIN,
        "train_scorer",
        "train a reward model, difference model, oracle or reward-model ensemble",
        trains=True,
    ),
    ("score",): Command(
        "deltapref.stages.score",
        ("ScoreConfig",),
        "score",
        "annotate pairs with rewards, differences, oracle rewards and coefficients",
    ),
    ("align",): Command(
        "deltapref.stages.align",
        ("AlignConfig",) + TRAIN,
        "align",
        "align a policy: dpo, ipo, rrhf, kto, edpo, drdo, with --coef for reward-difference weights",
        trains=True,
    ),
    ("generate",): Command(
        "deltapref.stages.generate", ("GenerateConfig",), "generate", "sample completions for prompts"
    ),
    ("evaluate", "scorer"): Command(
        "deltapref.stages.evaluate",
        ("ScorerEvalConfig",),
        "evaluate_scorer_command",
        "scorer accuracy, accuracy by |score| bucket, calibration, consistency",
    ),
    ("evaluate", "policy"): Command(
        "deltapref.stages.evaluate",
        ("PolicyEvalConfig",),
        "evaluate_policy",
        "mean gold / reward-model reward of completions with a bootstrap 95% CI",
    ),
    ("evaluate", "compare"): Command(
        "deltapref.stages.evaluate",
        ("CompareConfig",),
        "evaluate_compare",
        "win/tie/loss of two completion sets (reward or LLM judges, both orders, majority)",
    ),
}


def match(argv: list[str], registry: dict[tuple[str, ...], Command] = STAGES):
    """The command words that start ``argv`` and their command, or (None, None)."""
    for words, command in sorted(registry.items(), key=lambda item: -len(item[0])):
        if tuple(argv[: len(words)]) == words:
            return words, command
    return None, None


def _defaults(command: Command) -> dict:
    """deltapref's defaults for the command's options where they differ from the dataclasses'."""
    if not command.trains:
        return {}
    from deltapref.training.arguments import TRAINING_DEFAULTS

    return TRAINING_DEFAULTS


def _checked(command: Command, configs: tuple) -> tuple:
    """The checks every door shares after its configs are built: a training command's output
    directory and training arguments."""
    if command.trains:
        from deltapref.training.arguments import validate_training_arguments

        if not configs[-1].output_dir:
            raise ValueError("--output_dir is required")
        validate_training_arguments(configs[-1])
    return configs


def parse(words: tuple[str, ...], command: Command, argv: list[str]) -> tuple:
    """The command's configs from its command line (``argv`` without the command words); raises
    ValueError for an invalid or missing option."""
    from deltapref.config.commands import parse_config

    prog = "deltapref " + " ".join(words)
    return _checked(command, parse_config(command.config_types(), argv, prog, command.description, _defaults(command)))


def configs_from(command: Command, values: dict, strings_parse: bool = True) -> tuple:
    """The command's configs from option values (a recipe stage's ``args``, Python keywords),
    built and checked as the command line's are; ``strings_parse`` for values read from a file
    (text converts as on the command line, None means not given). Raises ValueError."""
    from deltapref.config.values import build_configs

    return _checked(command, build_configs(command.config_types(), values, strings_parse, _defaults(command)))


INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT)


def run(argv: list[str], registry: dict[tuple[str, ...], Command] = STAGES) -> int:
    """Parse ``argv`` (command words first) and run the command: 0 on success, 2 for bad
    options, 1 for a user error (:class:`DeltaprefError`: bad data, a model that does not load,
    ...) or a missing file, 130 when interrupted, each with one line on stderr. Anything else
    is a bug and keeps its traceback."""
    words, command = match(argv, registry)
    if command is None:
        raise ValueError(f"unknown command {' '.join(argv[:2])!r}")
    prog = "deltapref " + " ".join(words)
    try:
        configs = parse(words, command, argv[len(words) :])
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return execute(prog, command, configs)


def execute(prog: str, command: Command, configs: tuple) -> int:
    """Run ``command`` on its built configs: 0 on success, 1 for a user error or a missing file,
    130 when interrupted, each with one line on stderr naming ``prog``."""
    from deltapref.errors import DeltaprefError
    from deltapref.training.distributed import say

    try:
        return int(getattr(import_module(command.module), command.function)(*configs) or 0)
    except DeltaprefError as error:
        say(f"{prog}: error: {error}", error=True)
        return 1
    except OSError as error:  # a file the user named: missing, unreadable, a full disk
        where = f"{error.filename}: " if error.filename else ""
        remedy = ""
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            remedy = " (while writing outputs: free space, then rerun the same command; what finished is kept)"
        say(f"{prog}: error: {where}{error.strerror or error}{remedy}", error=True)
        return 1
    except KeyboardInterrupt:
        say(
            f"{prog}: interrupted: rerun the same command to resume from its last checkpoint or finished chunks "
            "(with none yet, it starts over; the earlier output stays until a run completes)",
            error=True,
        )
        return INTERRUPTED
