"""``deltapref launch PRESET [options] COMMAND ...``: a deltapref command in several processes under
one of the accelerate configs installed with the package (``ddp``, ``fsdp2``, ``zero2``,
``zero3``), as TRL's ``--accelerate_config`` does. A recipe stage names one the same way
(``launcher: fsdp2 --num_processes 2``). ``--write FILE`` copies the preset for editing."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

PRESETS = {
    "ddp": "data parallel: every process holds the whole model",
    "fsdp2": "FSDP2: parameters, gradients and optimizer states sharded over the processes",
    "zero2": "DeepSpeed ZeRO-2: optimizer states and gradients sharded (pip install deepspeed)",
    "zero3": "DeepSpeed ZeRO-3: parameters sharded too (pip install deepspeed)",
}
LAUNCHED = ("sft", "align", "train-scorer", "score", "generate")  # commands that run in several processes


def preset_path(name: str) -> Path:
    """The installed config file of a preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown launch preset {name!r}; presets: {', '.join(PRESETS)}")
    return Path(str(resources.files("deltapref.launch") / "presets" / f"{name}.yaml"))


def parser() -> argparse.ArgumentParser:
    described = "; ".join(f"{name}: {text}" for name, text in PRESETS.items())
    p = argparse.ArgumentParser(
        prog="deltapref launch",
        description=f"Run a deltapref command in several processes under an installed preset ({described}).",
    )
    p.add_argument("preset", choices=list(PRESETS), help="the accelerate config to launch with")
    p.add_argument("--num_processes", type=int, help="processes in all (default: the GPUs visible here, or 1)")
    p.add_argument("--num_machines", type=int, default=1, help="machines (nodes) taking part")
    p.add_argument("--machine_rank", type=int, default=0, help="this machine's rank among them")
    p.add_argument("--main_process_ip", help="the address of machine 0 (several machines)")
    p.add_argument("--main_process_port", type=int, help="the port of machine 0 (several machines)")
    p.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"], help="overrides the preset's bf16")
    p.add_argument("--dry_run", action="store_true", help="print the command line, run nothing")
    p.add_argument("--write", metavar="FILE", help="copy the preset to FILE for editing (nothing runs)")
    p.epilog = f"then the deltapref command and its options: one of {', '.join(LAUNCHED)}"
    return p


def parsed(argv: list[str]) -> argparse.Namespace:
    """The launcher's options (everything before the first command word) and the command."""
    at = next((i for i, word in enumerate(argv) if word in LAUNCHED), len(argv))
    args, extra = parser().parse_known_args(argv[:at])
    if extra:
        raise ValueError(f"{' '.join(extra)}: not a launcher option, and the command is one of {', '.join(LAUNCHED)}")
    args.command = argv[at:]
    return args


def launch_argv(words: list[str], command: list[str]) -> list[str]:
    """The process's command line for launcher ``words`` (a preset and its options, as after
    ``deltapref launch``) running the deltapref ``command``; a bad one raises ValueError."""
    try:
        args = parsed([*words, *command])
    except SystemExit:
        raise ValueError(f"launcher {shlex.join(words)!r}: see deltapref launch --help") from None
    return _argv(args)


def _argv(args: argparse.Namespace) -> list[str]:
    if not args.command or args.command[0] not in LAUNCHED:
        raise ValueError(f"give the command to launch, one of {', '.join(LAUNCHED)} (e.g. ... {args.preset} align ...)")
    for name in ("num_processes", "num_machines"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1")
    if not 0 <= args.machine_rank < args.num_machines:
        raise ValueError(f"--machine_rank must be in [0, {args.num_machines})")
    if args.num_machines > 1 and not (args.main_process_ip and args.main_process_port):
        raise ValueError("several machines need --main_process_ip and --main_process_port (machine 0's address)")
    overrides = ["--num_processes", str(args.num_processes or _visible_gpus())]
    overrides += ["--num_machines", str(args.num_machines), "--machine_rank", str(args.machine_rank)]
    for name in ("main_process_ip", "main_process_port", "mixed_precision"):
        if getattr(args, name) is not None:
            overrides += [f"--{name}", str(getattr(args, name))]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(preset_path(args.preset))]
    return [*launcher, *overrides, "-m", "deltapref", *args.command]


def _visible_gpus() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def main(argv: list[str]) -> int:
    """Entry point of ``deltapref launch``: 2 with one line for a bad launcher, else the launched
    command's exit code."""
    try:
        args = parsed(argv)
        if args.write:
            if Path(args.write).exists():
                raise ValueError(f"--write {args.write}: exists; deltapref does not replace a file it did not make")
            shutil.copyfile(preset_path(args.preset), args.write)
            print(f"wrote {args.write}: edit it, then accelerate launch --config_file {args.write} -m deltapref ...")
            return 0
        launched = _argv(args)
    except ValueError as error:
        print(f"deltapref launch: error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(launched))
        return 0
    return subprocess.run(launched).returncode
