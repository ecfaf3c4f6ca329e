"""The ``deltapref`` command line: the stages (``deltapref.stages``) plus the commands that run
recipes of them. ``deltapref <command> --help`` lists every option."""

from __future__ import annotations

import logging
import os
import sys

from deltapref.stages import STAGES, Command, run

COMMANDS: dict[tuple[str, ...], Command] = {
    **STAGES,
    ("pipeline",): Command(
        "deltapref.recipes.pipeline",
        ("PipelineConfig",),
        "pipeline",
        "run a recipe's stages in order, skipping stages cached from an earlier run",
    ),
    ("sweep",): Command(
        "deltapref.recipes.sweep",
        ("SweepConfig",),
        "sweep",
        "run a recipe over several seeds; per method a 95% CI and the paired difference to a baseline",
    ),
    ("study", "claims"): Command(
        "deltapref.study",
        ("StudyConfig",),
        "study",
        "the claims study: every RDO and DRDO claim over seeds on the built-in task, with verdicts",
    ),
    ("study", "map"): Command(
        "deltapref.study.weighting_map",
        ("MapConfig",),
        "weighting_map",
        "where magnitude pays: every weighting, noise-robust and label-correcting arm against DPO, tuned alike",
    ),
    ("study", "decide"): Command(
        "deltapref.study.decisive",
        ("DecideConfig",),
        "decide",
        "the decisive test named in advance: the map's pick against DPO and rDPO on fresh seeds, Holm-corrected",
    ),
    ("plan",): Command(
        "deltapref.training.plan",
        ("PlanConfig",),
        "plan",
        "estimate a training run's GPU memory per layout (DDP, FSDP, LoRA) from the model and the batch",
    ),
    ("demo",): Command(
        "deltapref.recipes.demo",
        ("DemoConfig",),
        "demo",
        "run the built-in gold-reward task end to end and write its report",
    ),
}


def usage() -> str:
    lines = [
        "usage: deltapref <command> [options]   (deltapref <command> --help for its options)",
        "",
        "commands (in flow order):",
    ]
    width = max(len(" ".join(words)) for words in COMMANDS)
    lines += [f"  {' '.join(words):<{width}}  {command.description}" for words, command in COMMANDS.items()]
    presets = "a command in several processes under an installed preset: ddp, fsdp2, zero2, zero3"
    lines.append(f"  {'launch':<{width}}  {presets}")
    return "\n".join(lines)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deltapref`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["launch"]:
        from deltapref.launch.presets import main as launch

        return launch(argv[1:])
    asked_help = bool(argv) and argv[0] in ("-h", "--help")
    if asked_help or not any(tuple(argv[: len(words)]) == words for words in COMMANDS):
        print(usage(), file=sys.stdout if asked_help else sys.stderr)
        return 0 if asked_help else 2
    level = os.environ.get("DELTAPREF_LOG_LEVEL", "INFO").strip().upper()
    if level not in LOG_LEVELS:
        print(f"deltapref: error: DELTAPREF_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(argv, COMMANDS)
    finally:
        if "torch.distributed" in sys.modules:  # only a launched run joined a process group
            from deltapref.training.distributed import leave

            leave()


if __name__ == "__main__":
    sys.exit(main())
