"""Host memory on a CPU: glibc keeps freed blocks for the next step once deltapref asks it to,
and a user's own allocator settings or opt-out are left alone. Each case runs in a fresh
process (the setting is process-wide).

Guards: training/host_memory.py."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, torch
from deltapref.training.host_memory import keep_freed_memory
kept = keep_freed_memory() if os.environ.get("ASK") else False
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
block = torch.ones(4 * 2**20)  # 16 MiB, touched
before = rss()
del block
print(json.dumps({"kept": kept, "returned_mib": (before - rss()) / 2**20}))
"""


def probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_blocks_stay_in_the_process_once_asked():
    untouched = probe()
    asked = probe(ASK="1")
    assert not untouched["kept"] and untouched["returned_mib"] > 12  # glibc unmaps the block on free
    assert asked["kept"] and asked["returned_mib"] < 4  # kept for the next allocation


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize("env", [{"DELTAPREF_KEEP_FREED_MEMORY": "0"}, {"MALLOC_ARENA_MAX": "2"}])
def test_an_opt_out_or_the_users_own_malloc_settings_are_left_alone(env):
    result = probe(ASK="1", **env)
    assert not result["kept"] and result["returned_mib"] > 12
