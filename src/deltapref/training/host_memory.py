"""Host-memory allocation for training on a CPU.

glibc's allocator hands every block above its mmap threshold straight back to the system when
it is freed and trims the heap as it shrinks, so each training step faults the pages of its
activations and gradients in again (the kernel zeroes every page). Raising the threshold to its
ceiling and not trimming keeps freed memory in the process for the next step: 1.2x per DPO step
on SmolLM2-135M on a 2-core CPU at the same peak RSS (benchmarks/README.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit systems
SETTINGS = {M_MMAP_THRESHOLD: MMAP_THRESHOLD_MAX, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 2**30}
OPT_OUT = "DELTAPREF_KEEP_FREED_MEMORY"  # "0" leaves the allocator as it is
_applied = False


def keep_freed_memory(on_cpu: bool = True) -> bool:
    """Tell glibc's allocator to keep freed memory for reuse (once per process) when training
    runs ``on_cpu``. Skipped where the C library is not glibc, where the user set ``MALLOC_*`` or
    ``GLIBC_TUNABLES`` (their choice stands), or with ``DELTAPREF_KEEP_FREED_MEMORY=0``. Returns
    whether it is in effect."""
    global _applied
    if _applied or not on_cpu:
        return _applied
    if os.environ.get(OPT_OUT, "1") == "0" or any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ):
        return False
    libc = _glibc()
    if libc is None:
        return False
    _applied = all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())
    if _applied:
        logger.info("glibc malloc keeps freed memory (mmap threshold 32 MiB, no trimming); %s=0 turns it off", OPT_OUT)
    return _applied


def _glibc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
