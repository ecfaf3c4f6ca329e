"""Process-group helpers for work done outside a Trainer (scoring, reference log-probs), and
``say``: a command's results, printed once per job.

Launched by ``torchrun`` / ``accelerate launch``, each process takes every ``world``-th chunk;
rank 0 assembles the results in the original order."""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta

import torch.distributed as dist

from deltapref.errors import OptionError

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
FORM_SECONDS = 60  # how long the processes of a launch wait for each other before giving up


def launched_world_size() -> int:
    """The number of processes a launcher started (``WORLD_SIZE``, 1 when unset), checked."""
    text = os.environ.get("WORLD_SIZE", "1")
    if not text.strip().isdigit() or int(text) < 1:
        raise OptionError(f"the environment variable WORLD_SIZE={text!r} is not a process count: unset it")
    return int(text)


def init_if_launched() -> None:
    """Join the process group a launcher set up (gloo on CPU, nccl on GPUs). The processes wait
    for each other at most ``FORM_SECONDS``: launch variables left in the environment by another
    shell fail in a minute with one line naming them, instead of waiting half an hour."""
    world = launched_world_size()
    if world <= 1 or dist.is_initialized():
        return
    import torch

    values = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    described = ", ".join(f"{name}={value}" for name, value in values.items())
    if not all(values.values()) or not values["RANK"].isdigit() or not values["MASTER_PORT"].isdigit():
        raise OptionError(
            f"launch variables incomplete or malformed ({described}): launch with torchrun, or unset them"
        )
    try:  # torch's own env:// rendezvous (it uses a torchrun agent's store), with a short timeout
        store, rank, world = next(dist.rendezvous("env://", timeout=timedelta(seconds=FORM_SECONDS)))
    except (RuntimeError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise OptionError(
            f"the {world} processes of this launch did not meet within {FORM_SECONDS} s ({described}; {reason}): "
            "if this is not a launch, unset these variables"
        ) from None
    store.set_timeout(timedelta(minutes=30))  # torch's default for what the group does later
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", store=store, rank=rank, world_size=world)


def leave() -> None:
    """Leave the process group, if this process joined one: its communication threads end
    before the interpreter does (an exit without it can abort a process of a finished run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def is_main() -> bool:
    return rank() == 0


def in_order(found: dict[int, object], n: int) -> list:
    """The items every process found (``found``: input index -> item, each index on one process)
    as one list in input order, on every process."""
    if world_size() > 1:
        gathered = [None] * world_size()
        dist.all_gather_object(gathered, found)
        found = {key: value for part in gathered for key, value in part.items()}
    return [found[i] for i in range(n)]


_COPIES: list = []  # streams that also get what ``say`` prints (a pipeline stage's log)


def say(message: str, error: bool = False) -> None:
    """Print a command's result once per job (on the main process), or with ``error`` its error
    line on stderr (every process); either also into every stream ``copied_to`` holds open."""
    if error or is_main():
        print(message, file=sys.stderr if error else sys.stdout)
        for stream in _COPIES:
            stream.write(message + "\n")
            stream.flush()


@contextlib.contextmanager
def copied_to(stream):
    """Within the block, what ``say`` prints also goes to ``stream``."""
    _COPIES.append(stream)
    try:
        yield
    finally:
        _COPIES.remove(stream)
