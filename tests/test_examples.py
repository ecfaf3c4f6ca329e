"""Every script in examples/ runs as a user would run it (the built-in task, or the real HH pairs
shipped in examples/data with SmolLM2 and MiniLM).

Guards: examples/, integrations/trl/dpo.py, api.py."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"python_api.py", "trl_weighted_dpo.py", "trl_hh_smollm2.py"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "work")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "train loss" in last and "nan" not in last
