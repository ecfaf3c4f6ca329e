"""The GPU check's whole small run (benchmarks/gpu_check.py): SFT -> reward model and oracle ->
score -> DPO+rc -> DRDO -> generate (vLLM where it imports), through deltapref's Python API in
bf16 on a GPU (fp32 in the CPU dry run), each stage one row of the check's report (timed, written
when it ends); with two or more GPUs the DPO+rc stage again under FSDP2 (torchrun, 2 processes).
A stage whose input a failed stage should have made is skipped, saying which."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def stage_options(size: dict, device: str) -> dict:
    """What every training stage shares: a few steps, bf16 on a GPU, no checkpoints."""
    dtype = {"dtype": "bfloat16", "bf16": True} if device == "cuda" else {"use_cpu": True}
    return dict(max_steps=size["steps"], per_device_train_batch_size=size["batch"], logging_steps=1,
                max_length=4096, max_prompt_length=2048, disable_tqdm=True, report_to="none",
                overwrite_output_dir=True, **dtype)  # fmt: skip


def whole_run(report, model_dir: Path, size: dict, device: str) -> None:
    """Run every stage as a row of ``report``; paths go under a fresh folder beside the model."""
    import deltapref

    work = Path(tempfile.mkdtemp(prefix="whole-run-", dir=model_dir.parent))
    pairs = str(model_dir.parent / "pairs.jsonl")
    common = stage_options(size, device)
    made: dict[str, bool] = {}

    def stage(name: str, needs: tuple[str, ...], run) -> None:
        missing = [n for n in needs if not made.get(n)]
        if missing:
            report.run(f"run {name}", lambda: {"status": "skipped", "detail": f"needs {', '.join(missing)}"})
            return
        made[name] = report.run(f"run {name}", run)["status"] == "ok"

    def losses(summary: dict) -> dict:
        values = [e["loss"] for e in summary["log_history"] if "loss" in e]
        ok = bool(values) and all(v == v and abs(v) != float("inf") for v in values)
        return {"status": "ok" if ok else "failed", "detail": f"losses {[round(v, 4) for v in values]}"}

    sft, scored = str(work / "sft"), str(work / "scored.jsonl")
    stage("sft", (), lambda: losses(deltapref.sft(model=str(model_dir), train_data=pairs, output_dir=sft, **common)))
    for kind in ("reward", "oracle"):
        stage(kind, ("sft",), lambda kind=kind: losses(deltapref.train_scorer(
            kind=kind, model=sft, train_data=pairs, output_dir=str(work / kind), **common)))  # fmt: skip
    stage(
        "score",
        ("reward", "oracle"),
        lambda: _scored(
            deltapref.score(
                input=pairs,
                output=scored,
                reward_model=str(work / "reward"),
                oracle=str(work / "oracle"),
                overwrite=True,
            )
        ),
    )  # fmt: skip (the step checks' pairs carry made-up oracle columns)
    dpo_rc = dict(model=sft, train_data=scored, loss="dpo", coef="reward", **common)
    stage("dpo+rc", ("score",), lambda: losses(deltapref.align(output_dir=str(work / "dpo-rc"), **dpo_rc)))
    stage("drdo", ("score",), lambda: losses(deltapref.align(
        model=sft, train_data=scored, loss="drdo", output_dir=str(work / "drdo"), **common)))  # fmt: skip
    backend = "vllm" if importlib.util.find_spec("vllm") else "hf"
    stage(f"generate ({backend})", ("dpo+rc",), lambda: _generated(deltapref.generate(
        model=str(work / "dpo-rc"), input=pairs, output=str(work / "completions.jsonl"), backend=backend,
        temperature=0.0, max_new_tokens=32)))  # fmt: skip
    if device == "cuda" and torch.cuda.device_count() >= 2:
        stage("dpo+rc fsdp2 (2 GPUs)", ("score",), lambda: _fsdp2(dpo_rc, work / "dpo-rc-fsdp2"))


def _scored(path) -> dict:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    columns = sorted(k for k in rows[0] if k.startswith(("reward_", "oracle_")))
    return {"status": "ok", "detail": f"{len(rows)} pairs scored: {', '.join(columns)}"}


def _generated(path) -> dict:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    return {"status": "ok", "detail": f"{len(rows)} completions, {sum(bool(r['completion']) for r in rows)} non-empty"}


def _fsdp2(options: dict, output: Path) -> dict:
    """The DPO+rc stage under torchrun with two processes and the Trainer's FSDP2 options."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    argv += ["deltapref.cli", "align", "--output_dir", str(output), "--fsdp", "full_shard"]
    argv += ["--fsdp_config", '{"fsdp_version": 2}']
    for key, value in options.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    if done.returncode:
        return {"status": "failed", "detail": (done.stderr.strip().splitlines() or ["no output"])[-1][:400]}
    sharded = "FSDP2: the model is sharded over 2 processes" in done.stderr
    return {"status": "ok" if sharded else "failed", "detail": "sharded" if sharded else "ran unsharded"}
