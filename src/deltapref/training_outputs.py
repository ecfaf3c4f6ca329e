"""Where a training run writes: its output directory, claimed before any heavy work (the one
ownership rule, ``outputs.claim_output``) and locked while it trains, and its final model, written
aside and moved into place so that a failed save leaves the earlier model whole."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers import Trainer, TrainingArguments

from .errors import TrainingError
from .outputs import claim_output, exclusive, mark_directory, remove_output, written_by_deltapref
from .sharding import full_state_dict

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
        model = model.merge_and_unload()
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


@contextlib.contextmanager
def claimed_output_dir(args: TrainingArguments, command: str, inputs=(), overwrite: bool = False):
    """Claim ``--output_dir`` for ``command`` (``outputs.claim_output``: never one of the run's
    ``inputs``, never another command's or a user's directory), before any heavy work; mark it and
    hold its lock while training (on the main process)."""
    if not args.should_save:
        yield
        return
    resumes_here = (
        bool(args.resume_from_checkpoint)
        and Path(args.resume_from_checkpoint).resolve().parent == Path(args.output_dir).resolve()
    )  # its checkpoint names the run that saved it (checkpoints.check_resumable)
    claim_output(
        args.output_dir, command, inputs=inputs, overwrite=overwrite or resumes_here, flag="--overwrite_output_dir"
    )
    with exclusive(args.output_dir):
        if not args.resume_from_checkpoint and written_by_deltapref(args.output_dir):
            stale = sorted(Path(args.output_dir).glob("checkpoint-*")) + sorted(
                Path(args.output_dir).glob(".checkpoint-*.previous")
            )
            for checkpoint in stale:  # an earlier run's: a fresh run must not mix its own with them
                remove_output(checkpoint)
            if stale:
                logger.info("removed %d checkpoint(s) of an earlier run in %s", len(stale), args.output_dir)
        mark_directory(args.output_dir, command)
        yield
