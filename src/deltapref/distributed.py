"""Process-group helpers for work done outside a Trainer (scoring, reference log-probs).

Launched by ``torchrun`` / ``accelerate launch``, each process takes every ``world``-th chunk;
rank 0 assembles the results in the original order."""

from __future__ import annotations

import os

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


def say(message: str) -> None:
    """Print once per job (on the main process)."""
    if is_main():
        print(message)
