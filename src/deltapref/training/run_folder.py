"""Where a training run writes: its output directory, claimed before any heavy work (the one
ownership rule, ``outputs.claim_output``) and locked while it trains, and its final model, written
aside and moved into place so that a failed save leaves the earlier model whole."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transformers import Trainer, TrainingArguments

from deltapref.artifacts.outputs import ASIDE, claim_output, exclusive, mark_directory, replacing
from deltapref.artifacts.records import read_marker
from deltapref.errors import OptionError, TrainingError
from deltapref.training.checkpoints import check_resumable, identity_changes, latest_complete
from deltapref.training.distributed import barrier
from deltapref.training.lora import merged_state_dict
from deltapref.training.sharding import full_state_dict

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def save_failures(what: str, kept: str):
    """A write that fails (a full disk, a file-size limit: an OSError, or torch's and safetensors'
    own errors for a short write) becomes one line naming what was being saved."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, RuntimeError, SafetensorError) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise TrainingError(f"{what} failed ({reason}); {kept}") from error


def final_save(trainer: Trainer, output_dir: str, kind: str, merge_lora: bool = True) -> None:
    """Save the trained model (LoRA merged into the base weights unless told otherwise) and
    its tokenizer as safetensors on the main process, written aside and moved into place; its
    config records its ``kind`` (policy, reward, difference, oracle) so later commands can check
    its role."""
    state_dict = full_state_dict(trainer)  # a sharded model's, gathered by every process
    model = trainer.accelerator.unwrap_model(trainer.model)
    if merge_lora and hasattr(model, "merge_and_unload"):
        if state_dict is None:
            model = model.merge_and_unload()
        else:  # sharded: merged from the gathered tensors, saved under the base model's names
            state_dict = merged_state_dict(state_dict, model.peft_config["default"])
            model = model.get_base_model()
    model.config.deltapref_kind = kind
    if trainer.args.should_save:
        staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".saving-"))
        try:
            with save_failures(f"saving the final model to {output_dir}", "its checkpoints, if any, are intact"):
                model.save_pretrained(staging, state_dict=state_dict, safe_serialization=True)
                if trainer.processing_class is not None:
                    trainer.processing_class.save_pretrained(staging)
            for file in sorted(staging.iterdir()):  # each file complete before it takes its name
                os.replace(file, Path(output_dir) / file.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()


RUNNING, COMPLETE = "running", "complete"  # a training run's state, in its directory's marker


@dataclass
class Claim:
    """What a claimed output directory keeps for this run: nothing (a fresh start), the
    checkpoint it resumes from, the members of an interrupted composite run, or (``reused``) this
    very run, complete, kept as it is; and the run's ``identity`` (``checkpoints.run_identity``)."""

    resume_from: Path | None = None
    kept: bool = False
    reused: bool = False
    identity: dict = field(default_factory=dict)


@contextlib.contextmanager
def claimed_output_dir(
    args: TrainingArguments,
    command: str,
    inputs=(),
    overwrite: bool = False,
    identity=dict,
    composite: bool = False,
    reuse_complete: bool = False,
):
    """Claim ``--output_dir`` for one run of ``command`` and hold its lock while it trains; yields
    a :class:`Claim`. The lock is taken first; then ownership (``outputs.claim_output``: never one
    of the run's ``inputs``, never another command's or a user's directory unless ``overwrite``);
    then what the folder keeps, decided in one place (:func:`_rerun`): an interrupted run with
    the same ``identity()`` resumes from its last complete checkpoint (``composite``: a run of
    member runs keeps its members, which resume alike; ``reuse_complete``: a member that finished
    is kept as it is); any other earlier run is replaced whole (``outputs.replacing``: put back if
    this run fails before it has a checkpoint). A checkpoint to resume is checked against the
    run's identity before any heavy work. The marker records the run's state, complete only once
    the block ends without an error. Every process of a launched job resumes from the checkpoint
    the main process chose."""
    output, current = Path(args.output_dir), identity()
    if not args.should_save:
        barrier()  # the main process has decided (below)
        marker = read_marker(output) or {}
        if not args.resume_from_checkpoint and marker.get("resumed_from"):
            args.resume_from_checkpoint = str(output / marker["resumed_from"])
        resume_from = Path(args.resume_from_checkpoint) if args.resume_from_checkpoint else None
        _check_resume(args, current)
        yield Claim(resume_from, kept=True, reused=bool(marker.get("reused")), identity=current)
        return
    with exclusive(output):
        claim = _decide(args, command, inputs, overwrite, current, composite, reuse_complete)
        resumed = None
        if claim.resume_from is not None and not args.resume_from_checkpoint:
            args.resume_from_checkpoint, resumed = str(claim.resume_from), claim.resume_from.name
            logger.warning(
                "resuming the interrupted run in %s from %s (--overwrite_output_dir starts it over)", output, resumed
            )
        _check_resume(args, current)
        if not claim.kept and _earlier_run(output):
            logger.info("replacing the earlier run in %s (kept aside in %s until this run completes)", output, ASIDE)
        with replacing(output, keep=claim.kept, resumable=_progress):
            mark_directory(output, command, state=RUNNING, identity=current, resumed_from=resumed, reused=claim.reused)
            barrier()
            yield claim
        mark_directory(output, command, state=COMPLETE, identity=current)


def _check_resume(args: TrainingArguments, identity: dict) -> None:
    """Refuse, before any heavy work, a checkpoint that is incomplete or was saved by another run."""
    if args.resume_from_checkpoint:
        check_resumable(args.resume_from_checkpoint, identity)


def _earlier_run(output: Path) -> bool:
    return output.is_dir() and any(output.iterdir())


def _progress(output: Path) -> bool:
    """``output`` holds something of this run to resume from: a complete checkpoint, or a member
    run (cross-fit fold, ensemble member) that completed or has one."""
    members = [entry for entry in output.iterdir() if entry.is_dir() and entry.name != ASIDE]
    done = any((read_marker(member) or {}).get("state") == COMPLETE for member in members)
    return done or any(latest_complete(member) for member in [output, *members])


def _decide(args, command: str, inputs, overwrite: bool, current: dict, composite: bool, reuse: bool) -> Claim:
    """Under the lock: claim ``--output_dir`` (``outputs.claim_output``) and decide what of it this
    run keeps (:class:`Claim`)."""
    output, explicit = Path(args.output_dir), args.resume_from_checkpoint
    resumes_here = bool(explicit) and Path(explicit).resolve().parent == output.resolve()
    claim_output(
        output,
        command,
        inputs=inputs,
        overwrite=overwrite or resumes_here,
        flag="--overwrite_output_dir",
        replaced_whole=True,
    )
    if explicit:
        claim = Claim(Path(explicit), kept=resumes_here)
    elif reuse and _done(output, command, current):
        claim = Claim(kept=True, reused=True)
    else:
        claim = _rerun(output, command, current, overwrite, composite)
    claim.identity = current
    return claim


def _done(output: Path, command: str, identity: dict) -> bool:
    """``output`` holds a complete run of ``command`` with this ``identity``."""
    marker = read_marker(output) or {}
    return marker.get("made_by") == command and marker.get("state") == COMPLETE and marker.get("identity") == identity


def _rerun(output: Path, command: str, identity: dict, overwrite: bool, composite: bool) -> Claim:
    """What an earlier run in ``output`` leaves to this one: an interrupted run of ``command``
    with the same identity resumes (from its last complete checkpoint, or, ``composite``, with
    its members); one with another identity is refused, naming every change, unless
    ``overwrite``; anything else (a complete run, an unmarked or foreign folder, an interrupted run
    that left nothing to resume, e.g. one refused before training) is replaced."""
    marker = read_marker(output) or {}
    if overwrite or marker.get("made_by") != command or marker.get("state") != RUNNING or not _progress(output):
        return Claim()
    changed = identity_changes(marker.get("identity"), identity)
    if changed:
        raise OptionError(
            f"{output} holds an interrupted `deltapref {command}` run started with other options "
            f"({'; '.join(changed)}): rerun it with those options to resume it, or pass --overwrite_output_dir "
            "to replace it"
        )
    checkpoint = latest_complete(output)
    if checkpoint is not None:
        return Claim(checkpoint, kept=True)
    if composite:
        return Claim(kept=True)
    logger.info("%s holds an interrupted run with no complete checkpoint: starting it over", output)
    return Claim()
