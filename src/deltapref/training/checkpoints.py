"""Checkpoints that are either complete or not resumable, and resumes that continue the same run.

A checkpoint counts as complete only when its manifest (``deltapref_checkpoint.json``, written
last) is there and every file it lists has the recorded size: a save that failed halfway (a full
disk, a file-size limit, a kill) leaves no manifest, so nothing can resume from it. Saving over an
existing checkpoint moves the old one aside first and puts it back if the new save fails, so a
failed save never loses a complete checkpoint.

The manifest also records the run's identity (the command, the objective's options, the model,
tokenizer, data content and truncation): resuming with options that change any of them is
refused, naming each, instead of training one objective on another's optimizer state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from pathlib import Path

from deltapref.artifacts.fingerprint import content_sha256
from deltapref.artifacts.outputs import write_text
from deltapref.errors import OptionError

MANIFEST = "deltapref_checkpoint.json"


# The training arguments a resume must not change: the batches it skips and the schedule it
# continues depend on them (--max_steps, --save_steps and the like may change).
TRAINING_IDENTITY = (
    "seed",
    "data_seed",
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "weight_decay",
)


def run_identity(command: str, config, objective_options, option_type, args=None) -> dict:
    """What a resume must not change: the command, every objective option (the fields of
    ``option_type`` read from ``objective_options``), the model, tokenizer, training data (by
    content), data format, truncation and LoRA settings, and the training arguments that shape
    the batches and the schedule (``TRAINING_IDENTITY``)."""
    data = Path(config.train_data)
    identity = {
        "command": command,
        **{f"--{f.name}": getattr(objective_options, f.name) for f in dataclasses.fields(option_type)},
        "--model": config.model,
        "--tokenizer": config.tokenizer,
        "--train_data": f"content sha256 {content_sha256(data, {})}" if data.exists() else config.train_data,
        "--format": config.format,
    }
    shape = ("max_length", "max_prompt_length", "prompt_truncation", "lora_r", "lora_alpha", "lora_target_modules")
    for name in shape + ("kind", "cross_fit", "ensemble_size"):  # the last three: a scorer run's
        if hasattr(config, name):
            identity[f"--{name}"] = getattr(config, name)
    for name in TRAINING_IDENTITY if args is not None else ():
        identity[f"--{name}"] = getattr(args, name)
    return json.loads(json.dumps(identity, default=str))


def _files(checkpoint: Path) -> dict[str, int]:
    return {
        str(p.relative_to(checkpoint)): p.stat().st_size
        for p in sorted(checkpoint.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(checkpoint: str | Path, identity: dict, progress: dict) -> None:
    """Mark ``checkpoint`` complete (call after every file of it is written)."""
    checkpoint = Path(checkpoint)
    manifest = {"files": _files(checkpoint), "run": identity, "progress": progress}
    write_text(checkpoint / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def incomplete_reason(checkpoint: str | Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (None when it is complete)."""
    checkpoint = Path(checkpoint)
    try:
        manifest = json.loads((checkpoint / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return f"it has no {MANIFEST}: its save did not finish (or an older deltapref wrote it)"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {MANIFEST} is unreadable"
    for name, size in files.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, its save wrote {size}"
    return None


def read_manifest(checkpoint: str | Path) -> dict:
    return json.loads((Path(checkpoint) / MANIFEST).read_text())


def identity_changes(saved: dict, identity: dict) -> list[str]:
    """Each option whose value in ``identity`` differs from the ``saved`` one, as ``--name old -> new``."""
    saved = saved if isinstance(saved, dict) else {}
    return [f"{name} {saved.get(name)!r} -> {value!r}" for name, value in identity.items() if saved.get(name) != value]


def latest_complete(output_dir: str | Path) -> Path | None:
    """The complete checkpoint (:func:`incomplete_reason`) with the most steps in ``output_dir``."""
    steps = {}
    for checkpoint in Path(output_dir).glob("checkpoint-*"):
        step = checkpoint.name.split("-", 1)[1]
        if step.isdigit() and checkpoint.is_dir() and incomplete_reason(checkpoint) is None:
            steps[int(step)] = checkpoint
    return steps[max(steps)] if steps else None


def check_resumable(checkpoint: str | Path, identity: dict) -> None:
    """Refuse a checkpoint that is incomplete or was saved by a run with another objective, model
    or data; one line naming the checkpoint and every option that differs."""
    reason = incomplete_reason(checkpoint)
    if reason:
        raise OptionError(f"--resume_from_checkpoint {checkpoint}: not a complete checkpoint ({reason})")
    changed = identity_changes(read_manifest(checkpoint).get("run", {}), identity)
    if changed:
        raise OptionError(
            f"--resume_from_checkpoint {checkpoint}: this run differs from the one that saved it "
            f"({'; '.join(changed)}); resume with the same options, or start a new run in another --output_dir"
        )


@contextlib.contextmanager
def replacing(checkpoint: str | Path):
    """Save into ``checkpoint``: an existing one is moved aside first and restored if the save
    fails (the partial new one removed); removed once the new one is complete."""
    checkpoint = Path(checkpoint)
    previous = checkpoint.with_name(f".{checkpoint.name}.previous")
    if previous.exists():  # left by a process killed mid-save: the checkpoint it held was complete
        if not checkpoint.exists() or incomplete_reason(checkpoint):
            shutil.rmtree(checkpoint, ignore_errors=True)
            os.replace(previous, checkpoint)
        else:
            shutil.rmtree(previous)
    if checkpoint.exists():
        os.replace(checkpoint, previous)
    try:
        yield
    except BaseException:
        shutil.rmtree(checkpoint, ignore_errors=True)
        if previous.exists():
            os.replace(previous, checkpoint)
        raise
    shutil.rmtree(previous, ignore_errors=True)
