"""Checkpoints and resumes: a bad or truncated checkpoint is refused, a failed save keeps the
complete one, a resume keeps the run's objective, a fresh run clears an earlier run's
checkpoints, a failed final save keeps the earlier model.

Guards: training/checkpoints.py, training/run_folder.py, training/trainer.py."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from deltapref.cli import main
from helpers import FAST_LR, align_argv, cli, fails, snapshot


@pytest.fixture(scope="module")
def checkpointed(scored_task, policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", out]
    argv += ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2", *FAST_LR]
    cli(*argv)
    return out, argv


def test_a_bad_resume_checkpoint_is_refused_before_any_work(capsys, scored_task, tmp_path):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(
        capsys,
        argv + [str(tmp_path / "p"), "--resume_from_checkpoint", str(tmp_path / "nope")],
        2,
        "not a checkpoint directory",
    )


def test_summary_after_resume_describes_the_whole_run(scored_task, tmp_path):
    common = [
        "--model",
        scored_task["sft"],
        "--train_data",
        scored_task["data"],
        "--max_steps",
        "8",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
    ]
    assert main(["align", "--output_dir", str(tmp_path / "straight")] + common) == 0
    shutil.copytree(tmp_path / "straight" / "checkpoint-4", tmp_path / "resumed" / "checkpoint-4")
    resume = ["--resume_from_checkpoint", str(tmp_path / "resumed" / "checkpoint-4")]
    assert main(["align", "--output_dir", str(tmp_path / "resumed")] + common + resume) == 0
    straight, resumed = (json.loads((tmp_path / n / "train_summary.json").read_text()) for n in ("straight", "resumed"))
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == straight["steps"] == 8
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-5)
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("straight", "resumed"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_failed_checkpoint_save_keeps_the_complete_one_and_leaves_nothing_resumable(checkpointed):
    out, argv = checkpointed
    before = snapshot(out / "checkpoint-4")
    optimizer = (out / "checkpoint-4" / "optimizer.pt").stat().st_size
    resumed = cli(*argv, "--resume_from_checkpoint", out / "checkpoint-2", limit_bytes=optimizer // 2, check=False)
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    assert "saving" in resumed.stderr and "failed" in resumed.stderr
    assert snapshot(out / "checkpoint-4") == before  # the complete checkpoint it tried to replace is intact
    assert not list(out.glob(".checkpoint-*"))
    partial = out / "checkpoint-partial"
    partial.mkdir()
    for name in ("trainer_state.json", "config.json"):
        (partial / name).write_bytes((out / "checkpoint-4" / name).read_bytes())
    refused = cli(*argv, "--resume_from_checkpoint", partial, check=False)
    assert refused.returncode == 2 and "not a complete checkpoint" in refused.stderr


def test_a_truncated_checkpoint_file_is_not_resumable(capsys, checkpointed, tmp_path):
    out, argv = checkpointed
    damaged = tmp_path / "checkpoint-4"
    damaged.mkdir()
    for file in (out / "checkpoint-4").iterdir():
        (damaged / file.name).write_bytes(file.read_bytes())
    optimizer = damaged / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    fails(capsys, argv + ["--resume_from_checkpoint", damaged], 2, "optimizer.pt has 100 bytes, its save wrote")


def test_resume_refuses_options_that_change_the_objective(capsys, checkpointed):
    out, argv = checkpointed
    changed = argv + ["--resume_from_checkpoint", out / "checkpoint-2", "--loss", "ipo", "--beta", "0.5"]
    line = fails(capsys, changed, 1, "differs from the one that saved it")
    assert "--loss 'dpo' -> 'ipo'" in line and "--beta 0.1 -> 0.5" in line
    assert snapshot(out / "checkpoint-2")


def test_a_failed_final_save_keeps_the_earlier_model(scored_task, policy, tmp_path):
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", tmp_path / "p"]
    argv += ["--max_steps", "2", *FAST_LR]
    cli(*argv)
    before = (tmp_path / "p" / "model.safetensors").read_bytes()
    result = cli(*argv, "--seed", "1", limit_bytes=len(before) // 2, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "saving the final model" in result.stderr
    assert (tmp_path / "p" / "model.safetensors").read_bytes() == before
    assert not list((tmp_path / "p").glob(".saving-*"))


def test_a_fresh_run_clears_an_earlier_runs_checkpoints(scored_task, tmp_path):
    out = tmp_path / "out"
    checkpointing = ["--save_strategy", "steps", "--save_steps", "1"]
    assert main(align_argv(scored_task, out, *checkpointing)) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    before = snapshot(out / "checkpoint-1")
    resumed = ["--resume_from_checkpoint", str(out / "checkpoint-1"), *checkpointing]
    assert main(align_argv(scored_task, out, *resumed)) == 0  # resuming keeps them
    assert snapshot(out / "checkpoint-1") == before
    finished = ["--resume_from_checkpoint", str(out / "checkpoint-2")]
    assert main(align_argv(scored_task, out, *finished)) == 0  # nothing left to train: not "changed no weight"
    assert main(align_argv(scored_task, out)) == 0  # a fresh run into deltapref's own output
    assert not list(out.glob("checkpoint-*")) and (out / "model.safetensors").exists()
