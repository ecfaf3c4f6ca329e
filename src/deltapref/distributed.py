"""Process-group helpers for work done outside a Trainer (scoring, reference log-probs), and
``say``: a command's results, printed once per job.

Launched by ``torchrun`` / ``accelerate launch``, each process takes every ``world``-th chunk;
rank 0 assembles the results in the original order."""

from __future__ import annotations

import contextlib
import os
import sys

import torch.distributed as dist


def init_if_launched() -> None:
    """Join the process group a launcher set up (gloo on CPU, nccl on GPUs)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        import torch

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


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
