"""A recipe file read and checked for shape before anything runs: only the keys ``output_dir``,
``stages`` and ``report``; ``stages`` a mapping of plain names to ``{command, args, launcher}``;
every problem one line naming the file and stage (a repeated key is refused by ``read_yaml``)."""

from __future__ import annotations

import shlex
from pathlib import Path

from deltapref.artifacts.records import check_name
from deltapref.config.safe_yaml import read_yaml
from deltapref.errors import DeltaprefError
from deltapref.report.options import report_options

RESERVED = {"here", "logs", "report"}  # {here} in templates; the run's logs/ and report/ folders
RECIPE_KEYS = {"output_dir", "stages", "report"}


class PipelineError(DeltaprefError):
    """A recipe that cannot run, or a stage that failed (its log named)."""


def load_recipe(path: str | Path) -> dict:
    """A recipe read and checked for shape: only the keys ``output_dir``, ``stages`` and
    ``report``; a ``stages`` mapping of plain names to ``{command, args, launcher}`` (a repeated
    key anywhere is refused by ``read_yaml``); every problem one line naming the file and stage."""
    try:
        recipe = read_yaml(path)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("stages"), dict) or not recipe["stages"]:
        raise PipelineError(f"{path}: a recipe needs a 'stages' mapping of name -> {{command, args}}")
    unknown = sorted(map(str, set(recipe) - RECIPE_KEYS))
    if unknown:
        known = ", ".join(sorted(RECIPE_KEYS))
        raise PipelineError(f"{path}: unknown key(s) {', '.join(unknown)} (a recipe has {known})")
    if recipe.get("output_dir") is not None and not isinstance(recipe["output_dir"], str):
        raise PipelineError(f"{path}: 'output_dir' must be a path, got {recipe['output_dir']!r}")
    if recipe.get("report") is not None and not isinstance(recipe["report"], dict):
        raise PipelineError(f"{path}: 'report' must be a mapping (e.g. {{reward: gold, baselines: [sft]}})")
    try:
        report_options(recipe.get("report"), str(path))
    except ValueError as error:
        raise PipelineError(str(error)) from None
    for name, stage in recipe["stages"].items():
        if not isinstance(name, str):
            raise PipelineError(f"{path}: stage name {name!r} is not text; quote it (e.g. '{name}':)")
        check_name(name, f"{path}: stage name")
        if name in RESERVED:
            names = ", ".join(sorted(RESERVED))
            raise PipelineError(f"{path}: '{name}' cannot name a stage ({names} are the run's own)")
        if not isinstance(stage, dict) or not isinstance(stage.get("command"), str):
            raise PipelineError(f"{path}: stage '{name}' needs a 'command' (e.g. command: align)")
        if not isinstance(stage.get("args") or {}, dict):
            raise PipelineError(f"{path}: stage '{name}': 'args' must be a mapping of option names to values")
        unknown = sorted(map(str, set(stage) - {"command", "args", "launcher"}))
        if unknown:
            raise PipelineError(f"{path}: stage '{name}' has unknown key(s) {', '.join(unknown)}")
        if stage.get("launcher") is not None and not isinstance(stage["launcher"], str):
            raise PipelineError(
                f"{path}: stage '{name}': 'launcher' must be one command line (e.g. 'fsdp2 --num_processes 2', "
                "a preset of deltapref launch, or 'torchrun --nproc_per_node 2')"
            )
        if stage.get("launcher"):
            try:
                launcher_argv(stage["launcher"], [stage["command"]])
            except ValueError as error:
                raise PipelineError(f"{path}: stage '{name}': {error}") from None
        bad = [key for key in stage.get("args") or {} if not isinstance(key, str)]
        if bad:
            raise PipelineError(f"{path}: stage '{name}': option name {bad[0]!r} is not text")
    return recipe


def launcher_argv(launcher: str, argv: list[str]) -> list[str]:
    """The command line of a stage run by ``launcher``: a preset of ``deltapref launch`` with its
    options (``fsdp2 --num_processes 2``), or any launcher command that runs a module
    (``torchrun --nproc_per_node 2``), followed by deltapref's ``argv``."""
    from deltapref.launch.presets import PRESETS, launch_argv

    words = shlex.split(launcher)
    if words and words[0] in PRESETS:
        return launch_argv(words, argv)
    return [*words, "-m", "deltapref", *argv]
