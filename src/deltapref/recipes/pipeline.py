"""``deltapref pipeline RECIPE.yaml``: run stages in order, each cached by content.

A recipe::

    output_dir: runs/demo
    stages:
      data:  {command: data synth, args: {n_train: 1000}}
      sft:   {command: sft, args: {model: "tiny:64:2", tokenizer: "{data}/tokenizer",
                                   train_data: "{data}/train.jsonl"}}
      gen-sft: {command: generate, args: {model: "{sft}", input: "{data}/test.jsonl",
                                          output: "{here}/completions.jsonl"}}
    report: {reward: gold, baselines: [sft]}

``{NAME}`` is the directory of an earlier stage and ``{here}`` the stage's own; a command with an
``output_dir`` option writes to ``{here}`` unless told otherwise. A stage's cache key hashes its
command, its resolved arguments and the keys of the stages it reads, so a rerun skips finished
stages whose inputs did not change and redoes the rest (a stage whose arguments or inputs changed
starts from an empty folder; one interrupted with the same ones resumes). A stage may set ``launcher`` (e.g.
``torchrun --nproc_per_node 2``) to run in its own processes. Each stage logs to
``logs/NAME.log``; a failing stage stops the run and names its log, and the next run resumes.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deltapref.artifacts.fingerprint import CONTENT_MEMO, input_contents, read_memo, stage_key
from deltapref.artifacts.outputs import claim_output, exclusive, mark_directory, remove_output, write_text
from deltapref.artifacts.records import maker, read_record
from deltapref.config.commands import option
from deltapref.recipes.recipe_file import PipelineError, launcher_argv, load_recipe
from deltapref.report.options import report_options
from deltapref.stages import STAGES, Command, configs_from, execute, match
from deltapref.training.distributed import copied_to

logger = logging.getLogger(__name__)
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
STAGE_RECORDS = ".deltapref-stages"  # in the run's folder: each stage's key and whether it finished


@dataclass
class PipelineConfig:
    recipe: str = option(None, "recipe YAML file")
    output_dir: str = option(None, "where stages write (default: the recipe's output_dir)")
    force: str = option(None, "comma list of stages to rerun even if cached")
    dry_run: bool = option(False, "only resolve and validate every stage's options, printing the commands")

    def __post_init__(self):
        if not self.recipe:
            raise ValueError("--recipe is required")


def _resolve(value, dirs: dict[str, Path], here: Path, stage: str, used: set):
    if isinstance(value, dict):
        return {k: _resolve(v, dirs, here, stage, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, dirs, here, stage, used) for v in value]
    if not isinstance(value, str):
        return value

    def swap(match):
        name = match.group(1)
        if name == "here":
            return str(here)
        if name not in dirs:
            raise PipelineError(f"stage '{stage}' refers to {{{name}}}, which is not an earlier stage")
        used.add(name)
        return str(dirs[name])

    return PLACEHOLDER.sub(swap, value)


def command_line(command: str, args: dict) -> list[str]:
    """The command line equivalent to a stage: what a launcher runs in its own processes (the one
    place a stage becomes argv) and what its log shows."""
    argv = command.split()
    for key, value in args.items():
        if value is None:
            continue
        argv += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv


def _stage_command(name: str, command: str) -> Command:
    words, found = match(command.split())
    if found is None or len(words) != len(command.split()):
        raise PipelineError(
            f"stage '{name}': unknown command '{command}' (stages: {', '.join(' '.join(w) for w in STAGES)})"
        )
    return found


def stage_configs(name: str, command: Command, args: dict) -> tuple:
    """A stage's configs built from its arguments as every door builds them (``configs_from``:
    types checked, text converted as on the command line, each config's own checks)."""
    try:
        return configs_from(command, args)
    except ValueError as error:
        raise PipelineError(f"stage '{name}': invalid options ({error})") from None


def run_stage(name: str, stage: dict, args: dict, log_path: Path) -> None:
    """Run one stage, its output also in ``log_path``: in this process from its configs, or with
    its ``launcher`` in processes of its own."""
    command = _stage_command(name, stage["command"])
    argv = command_line(stage["command"], args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        log.write(f"$ deltapref {shlex.join(argv)}\n")
        log.flush()
        if stage.get("launcher"):
            launched = launcher_argv(stage["launcher"], argv)
            code = subprocess.run(launched, stdout=log, stderr=subprocess.STDOUT).returncode
        else:
            configs = stage_configs(name, command, args)
            handler = logging.StreamHandler(log)  # the stage's log lines (stderr keeps them too)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(handler)
            try:
                with copied_to(log):  # and its results (stdout keeps them too)
                    code = execute("deltapref " + stage["command"], command, configs)
            except Exception as error:  # the stage's own traceback goes to its log
                import traceback

                log.write(traceback.format_exc())
                raise PipelineError(f"stage '{name}' failed ({error}); see {log_path}") from error
            finally:
                logging.getLogger().removeHandler(handler)
    if code != 0:
        raise PipelineError(f"stage '{name}' exited with {code}; see {log_path}")


GPU_FLAGS = ("bf16", "fp16", "tf32", "bf16_full_eval", "fp16_full_eval")


def _without_gpu_flags(args: dict) -> dict:
    """A dry run on a machine without a GPU cannot validate mixed-precision flags: drop them."""
    import torch

    return args if torch.cuda.is_available() else {k: v for k, v in args.items() if k not in GPU_FLAGS}


def _stage_record(output_dir: Path, name: str) -> dict:
    """The pipeline's record of stage ``name``'s last run: its key and whether it finished."""
    path = output_dir / STAGE_RECORDS / f"{name}.json"
    return read_record(path, "the stage's record", {"key": str}) if path.exists() else {}


def _stage_folder(name: str, command: str, here: Path, key: str, recorded: dict) -> None:
    """Make ``here`` ready for a stage run under ``key``, under the stage's own lock: a folder
    deltapref did not make is refused; what a run with another key left (finished or not) is
    removed, since nothing of it can be reused; what an interrupted attempt with this key left
    stays for the command to resume."""
    with exclusive(here):
        if here.exists() and maker(here) is None and (here.is_file() or any(here.iterdir())):
            raise PipelineError(
                f"stage '{name}': {here} exists and deltapref did not make it; move it away or choose another "
                "output_dir for the pipeline"
            )
        if recorded.get("key") not in (None, key) and here.exists():
            print(f"[pipeline] {name}: arguments or inputs changed since its last run: clearing {here}")
            remove_output(here)
        if maker(here) is None:
            mark_directory(here, command)


def _run_unless_cached(name: str, stage: dict, args: dict, key: str, here: Path, logs: Path, force) -> dict:
    """Run the stage into ``here`` unless its last run finished with ``key`` (and it is not
    forced); the pipeline's record of the stage says which key started and whether it finished."""
    output_dir = here.parent
    recorded = _stage_record(output_dir, name)
    cached = recorded.get("key") == key and recorded.get("finished") and name not in force
    started = time.time()
    if cached:
        print(f"[pipeline] {name}: cached ({key})")
        return {"cached": True, "seconds": recorded.get("seconds", 0.0)}
    _stage_folder(name, stage["command"], here, key, recorded)
    print(f"[pipeline] {name}: deltapref {stage['command']} ...")
    record = output_dir / STAGE_RECORDS / f"{name}.json"
    write_text(record, json.dumps({"key": key, "finished": False}))
    run_stage(name, stage, args, logs / f"{name}.log")
    done = {"key": key, "finished": True, "command": stage["command"], "args": args, "seconds": time.time() - started}
    write_text(record, json.dumps(done, indent=2))
    return {"cached": False, "seconds": done["seconds"]}


def _check_output_inside(name: str, args: dict, here: Path, kept: set[Path]) -> None:
    """A stage's ``output`` names a file inside a stage folder, never a folder the pipeline keeps
    (the run's own, its logs, a stage's), which writing the file would replace."""
    output = args.get("output")
    if not isinstance(output, str):
        return
    target = Path(output).expanduser().absolute()
    if target == here.absolute():
        raise PipelineError(
            f"stage '{name}': output {output} is the stage's own folder; name a file inside it, e.g. {{here}}/out.jsonl"
        )
    if target in kept:
        raise PipelineError(
            f"stage '{name}': output {output} is a folder the pipeline keeps; name a file inside {{here}}"
        )


def _planned(recipe: dict, output_dir: Path, dry_run: bool) -> dict[str, tuple[dict, dict, set]]:
    """Every stage's resolved arguments (and the earlier stages it reads), each stage's options
    built and checked before the first one runs (a dry run leaves out GPU-only flags)."""
    dirs: dict[str, Path] = {}
    planned = {}
    root = output_dir.absolute()
    kept = {root, root / "logs", root / STAGE_RECORDS, *(root / name for name in recipe["stages"])}
    for name, stage in recipe["stages"].items():
        here = output_dir / name
        used: set = set()
        args = _resolve(dict(stage.get("args") or {}), dirs, here, name, used)
        command = _stage_command(name, stage["command"])
        if command.has_option("output_dir"):
            args.setdefault("output_dir", str(here))
        _check_output_inside(name, args, here, kept)
        stage_configs(name, command, _without_gpu_flags(args) if dry_run else args)
        dirs[name], planned[name] = here, (stage, args, used)
    return planned


def run_pipeline(recipe: dict, output_dir: str | Path, force: set[str] = frozenset(), dry_run: bool = False) -> dict:
    """Run every stage of ``recipe`` under ``output_dir``, holding its lock for the whole run (a
    second pipeline on the same folder is refused at once); returns name -> {dir, key, cached,
    seconds}. With ``dry_run`` every stage is resolved and validated, and nothing runs."""
    output_dir = Path(output_dir).expanduser()
    if dry_run:
        claim_output(output_dir, "pipeline", flag=None)
        return _run_stages(recipe, output_dir, force, dry_run)
    with exclusive(output_dir):
        claim_output(output_dir, "pipeline", flag=None)
        return _run_stages(recipe, output_dir, force, dry_run)


def _run_stages(recipe: dict, output_dir: Path, force: set[str], dry_run: bool) -> dict:
    try:
        report = report_options(recipe["report"], "the recipe") if recipe.get("report") else None
    except ValueError as error:
        raise PipelineError(str(error)) from None
    planned = _planned(recipe, output_dir, dry_run)
    memo = {}
    if not dry_run:
        mark_directory(output_dir, "pipeline")
        memo = read_memo(output_dir / CONTENT_MEMO)
    keys: dict[str, str] = {}
    results = {}
    for name, (stage, args, used) in planned.items():
        here = output_dir / name
        contents = input_contents(args, output_dir, memo)
        key = stage_key(stage, args, {u: keys[u] for u in sorted(used)}, contents)
        if dry_run:
            print(f"[dry-run] {name}: deltapref {shlex.join(command_line(stage['command'], args))}")
            run = {}
        else:
            write_text(output_dir / CONTENT_MEMO, json.dumps(memo))
            run = _run_unless_cached(name, stage, args, key, here, output_dir / "logs", force)
        keys[name] = key
        results[name] = {"dir": str(here), "key": key, **run, "command": stage["command"], "args": args}
    if dry_run:
        return results
    write_text(output_dir / "pipeline.json", json.dumps({"recipe": recipe, "stages": results}, indent=2))
    if report is not None:
        from deltapref.report.build import build_report

        build_report(output_dir, results, report)
    return results


def stage_seconds(output_dir: str | Path) -> float:
    """The seconds a pipeline's stages took when they ran (a cached stage counts its first run;
    0 for a folder no pipeline finished in)."""
    path = Path(output_dir) / "pipeline.json"
    if not path.exists():
        return 0.0
    return sum(stage.get("seconds", 0.0) for stage in json.loads(path.read_text())["stages"].values())


def pipeline(config: PipelineConfig) -> int:
    """Entry point of ``deltapref pipeline``."""
    recipe = load_recipe(config.recipe)
    output_dir = config.output_dir or recipe.get("output_dir") or "runs/" + Path(config.recipe).stem
    force = set((config.force or "").split(",")) - {""}
    unknown = sorted(force - set(recipe["stages"]))
    if unknown:
        raise PipelineError(f"--force {','.join(unknown)}: no such stage (stages: {', '.join(recipe['stages'])})")
    started = time.time()
    run_pipeline(recipe, output_dir, force, config.dry_run)
    print(f"[pipeline] done in {time.time() - started:.0f}s: {output_dir}")
    return 0
