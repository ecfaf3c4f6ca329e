"""The prepared accelerator check (benchmarks/gpu_check.py): its CPU dry run and its report.

Guards: benchmarks/gpu_check.py."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


def test_dry_run_runs_every_check_and_writes_its_summary(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry_run", "--output", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {row["check"]: row for row in json.loads((tmp_path / "gpu_check.json").read_text())}
    assert set(rows) == {
        "environment",
        *(f"attention {impl} float32" for impl in ("eager", "sdpa", "flex_attention", "flash_attention_2")),
        "step dpo",
        "step dpo+rc",
        "step drdo",
        "timing tiny",
        "fsdp step",
        "deepspeed step",
        *(f"run {stage}" for stage in ("sft", "reward", "oracle", "score", "dpo+rc", "drdo")),
        "run generate (hf)",
    }
    assert all(row["status"] in {"ok", "skipped", "unsupported"} for row in rows.values()), rows
    assert "torch" in rows["environment"]["detail"]
    for impl in ("eager", "sdpa"):  # the CPU paths deltapref uses: shared-prefix and packed equal padded
        row = rows[f"attention {impl} float32"]
        assert row["status"] == "ok" and float(row["shared_vs_padded"]) < 1e-3, row
        assert float(row["packed_vs_padded"]) < 1e-3, row
    assert all(rows[f"step {name}"]["status"] == "ok" for name in ("dpo", "dpo+rc", "drdo"))
    whole = [name for name in rows if name.startswith("run ")]
    assert all(rows[name]["status"] == "ok" and rows[name]["seconds"] > 0 for name in whole), rows
    assert "completions" in rows["run generate (hf)"]["detail"]
    assert "deltapref dpo pairs/s" in rows["timing tiny"]
    assert (tmp_path / "gpu_check.md").read_text().startswith("| check | status |")


def test_a_check_that_raises_is_reported_and_the_budget_skips_the_rest(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from gpu_check import Report
    finally:
        sys.path.remove(str(SCRIPT.parent))

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access")

    report = Report(tmp_path, budget_s=60)
    report.run("broken", broken)
    report.deadline = 0
    report.run("late", lambda: {"status": "ok"})
    rows = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(r["check"], r["status"]) for r in rows] == [("broken", "failed"), ("late", "skipped")]
    assert "illegal memory access" in rows[0]["detail"] and "time budget" in rows[1]["detail"]
