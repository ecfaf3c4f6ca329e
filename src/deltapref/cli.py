"""The ``deltapref`` command line. Each subcommand maps to one library function and one or
more config dataclasses (``deltapref <command> --help`` lists every option)."""

from __future__ import annotations

import logging
import os
import sys
from importlib import import_module

# command words -> (module, config class names, function name, one-line description)
COMMANDS: dict[tuple[str, ...], tuple[str, tuple[str, ...], str, str]] = {
    ("train-scorer",): ("deltapref.scorers.train", ("ScorerConfig", "TrainingArguments"), "train_scorer",
                        "train a reward model, difference model, oracle or reward-model ensemble"),
    ("demo",): ("deltapref.demo", ("DemoConfig",), "demo",
                "run the built-in gold-reward task end to end and write its report"),
    ("pipeline",): ("deltapref.pipeline", ("PipelineConfig",), "pipeline",
                    "run a recipe's stages in order, skipping stages cached from an earlier run"),
    ("sft",): ("deltapref.policy.commands", ("SFTConfig", "TrainingArguments"), "sft",
               "supervised fine-tuning on chosen responses (response tokens only)"),
    ("align",): ("deltapref.policy.commands", ("AlignConfig", "TrainingArguments"), "align",
                 "align a policy: dpo, ipo, rrhf, kto, edpo, drdo, with --coef for reward-difference weights"),
    ("generate",): ("deltapref.policy.generation", ("GenerateConfig",), "generate",
                    "sample completions for prompts"),
    ("score",): ("deltapref.scoring", ("ScoreConfig",), "score",
                 "annotate pairs with rewards, differences, oracle rewards and coefficients"),
    ("evaluate", "scorer"): ("deltapref.evaluation.commands", ("ScorerEvalConfig",), "evaluate_scorer_command",
                             "scorer accuracy, accuracy by |score| bucket, calibration, consistency"),
    ("evaluate", "policy"): ("deltapref.evaluation.commands", ("PolicyEvalConfig",), "evaluate_policy",
                             "mean gold / reward-model reward of completions with a bootstrap 95% CI"),
    ("evaluate", "compare"): ("deltapref.evaluation.commands", ("CompareConfig",), "evaluate_compare",
                              "win/tie/loss of two completion sets (reward or LLM judges, both orders, majority)"),
    ("data", "synth"): ("deltapref.data.commands", ("SynthConfig",), "synth",
                        "write the built-in gold-reward task (pairs, ranked lists, tokenizer)"),
    ("data", "inspect"): ("deltapref.data.commands", ("InspectConfig",), "inspect",
                          "show normalized rows, columns and token-length statistics"),
    ("data", "validate"): ("deltapref.data.commands", ("SourceConfig",), "validate",
                           "check every row; name the file, row and field of the first bad one"),
    ("data", "convert"): ("deltapref.data.commands", ("ConvertConfig",), "convert",
                          "normalize HH / rm-static / TL;DR / UltraFeedback data and write it out"),
    ("data", "split"): ("deltapref.data.commands", ("SplitConfig",), "split",
                        "DRDO easy/hard splits by annotator confidence and edit distance"),
}


def _usage() -> str:
    lines = ["usage: deltapref <command> [options]   (deltapref <command> --help for its options)",
             "", "commands:"]
    width = max(len(" ".join(words)) for words in COMMANDS)
    lines += [f"  {' '.join(words):<{width}}  {spec[3]}" for words, spec in COMMANDS.items()]
    return "\n".join(lines)


def _match(argv: list[str]):
    for words, spec in sorted(COMMANDS.items(), key=lambda item: -len(item[0])):
        if tuple(argv[: len(words)]) == words:
            return words, spec
    return None, None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deltapref`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    words, spec = _match(argv)
    if spec is None:
        print(_usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    logging.basicConfig(level=os.environ.get("DELTAPREF_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .config import parse_config
    from .data.schema import DataError

    module_name, class_names, function_name, description = spec
    module = import_module(module_name)
    prog = "deltapref " + " ".join(words)
    types = [getattr(module, name) for name in class_names]
    defaults = None
    if "TrainingArguments" in class_names:
        from .training import TRAINING_DEFAULTS
        defaults = getattr(module, "TRAINING_DEFAULTS", TRAINING_DEFAULTS)
    try:
        configs = parse_config(types, argv[len(words):], prog, description, defaults)
        if "TrainingArguments" in class_names and not configs[-1].output_dir:
            raise ValueError("--output_dir is required")
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    try:
        return int(getattr(module, function_name)(*configs) or 0)
    except (DataError, FileNotFoundError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
