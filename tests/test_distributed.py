"""Two real processes (torchrun, gloo on CPU) give the same results as one.

Guards: training/distributed.py, training/arguments.py, policy/reference.py, scorers/scoring.py,
stages/generate.py, policy/vllm_backend.py."""

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import rows_of

ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")


def deltapref(args, nproc=1, env=None):
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            "-m",
            "deltapref.cli",
        ]
        if nproc > 1
        else [sys.executable, "-m", "deltapref.cli"]
    )
    started = time.time()
    done = subprocess.run(launcher + args, env=dict(ENV, **(env or {})), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, time.time() - started


@pytest.mark.slow
@pytest.mark.parametrize("group_cost", [None, "0"])
def test_two_process_dpo_rc_matches_one_process(scored_task, tmp_path, group_cost):
    """... also when every batch's rows run in length groups (a forward per distinct length; the
    input embeddings looked up once, outside the wrapped model's forward): the gradients sync."""
    env = {"DELTAPREF_GROUP_COST_TOKENS": group_cost} if group_cost else None
    common = [
        "align",
        "--model",
        scored_task["sft"],
        "--train_data",
        scored_task["data"],
        "--loss",
        "dpo",
        "--coef",
        "diff",
        "--max_steps",
        "10",
        "--logging_steps",
        "2",
        "--disable_tqdm",
        "true",
        "--learning_rate",
        "5e-4",
        "--lr_scheduler_type",
        "constant",
        "--train_sampling_strategy",
        "sequential",
    ]
    one, t1 = deltapref(
        common + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"], env=env
    )
    two, t2 = deltapref(
        common + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"], nproc=2, env=env
    )
    curves = []
    for name in ("one", "two"):
        summary = json.loads((tmp_path / name / "train_summary.json").read_text())
        logged = [e for e in summary["log_history"] if "loss" in e]
        curves.append([(e["loss"], e["weights/mean"], e["rewards/margins"]) for e in logged])
    assert len(curves[0]) == 5
    for a, b in zip(*curves):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    assert two.stdout.count("dpo +rc(diff)") == 1  # only rank 0 reports
    print(f"\nalign DPO+rc, 10 steps: 1 process {t1:.1f}s, 2 processes {t2:.1f}s")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["reward", "difference:pooled", "difference:contrast"])
def test_two_process_scorer_training_matches_one_process(builtin_task, tmp_path, kind):
    """The scorers' forward runs each batch in length groups (several forward calls before one
    backward), the contrast readout through the wrapped model: under DDP the gradients sync, and
    2 processes × 8 pairs follow 1 × 16."""
    kind, _, readout = kind.partition(":")
    common = [
        "train-scorer",
        "--kind",
        kind,
        *(["--difference_readout", readout] if readout else []),
        "--model",
        "tiny:32:1",
        "--tokenizer",
        str(builtin_task / "tokenizer"),
        "--train_data",
        str(builtin_task / "train.jsonl"),
        "--max_steps",
        "6",
        "--logging_steps",
        "2",
        "--disable_tqdm",
        "true",
        "--learning_rate",
        "1e-3",
        "--lr_scheduler_type",
        "constant",
        "--train_sampling_strategy",
        "sequential",
    ]
    deltapref(common + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    deltapref(common + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"], nproc=2)
    curves = []
    for name in ("one", "two"):
        summary = json.loads((tmp_path / name / "scorer_eval.json").read_text())
        curves.append([e["loss"] for e in summary["log_history"] if "loss" in e])
    assert len(curves[0]) == 3 and curves[0][0] != curves[0][-1]
    assert curves[0] == pytest.approx(curves[1], rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_two_process_score_is_identical_and_in_order(scored_task, tmp_path):
    root = scored_task["root"]
    common = [
        "score",
        "--input",
        scored_task["test"],
        "--reward_model",
        str(root / "reward"),
        "--difference_model",
        str(root / "difference"),
        "--chunk_size",
        "16",
    ]
    _, t1 = deltapref(common + ["--output", str(tmp_path / "one.jsonl")])
    _, t2 = deltapref(common + ["--output", str(tmp_path / "two.jsonl")], nproc=2)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert ids == [f"test-{i}" for i in range(120)]
    print(f"\nscore 120 pairs: 1 process {t1:.1f}s, 2 processes {t2:.1f}s")


def test_two_process_generate_writes_what_one_process_writes(scored_task, tmp_path):
    """Data-parallel generation: each process completes every other prompt, the first writes them
    all in input order; with per-prompt seeds the file is the one process's, sample for sample."""
    common = ["generate", "--model", scored_task["sft"], "--input", scored_task["test"], "--max_new_tokens", "8"]
    common += ["--paired_sampling", "true", "--num_samples", "2", "--batch_size", "7"]
    deltapref(common + ["--output", str(tmp_path / "one.jsonl")])
    deltapref(common + ["--output", str(tmp_path / "two.jsonl")], nproc=2)
    one, two = (rows_of(tmp_path / f"{name}.jsonl") for name in ("one", "two"))
    assert len(one) == 240 and [r["completion"] for r in one] == [r["completion"] for r in two]
    assert [r["id"] for r in two[:120]] == [f"test-{i}" for i in range(120)]


def test_generate_in_several_processes_needs_per_prompt_seeds(scored_task, tmp_path, monkeypatch, capsys):
    from deltapref.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    argv = ["generate", "--model", scored_task["sft"], "--input", scored_task["test"], "--output", str(tmp_path / "c")]
    assert main(argv) == 1
    assert "generate in 2 processes samples with --paired_sampling true" in capsys.readouterr().err
    assert main([*argv, "--tensor_parallel_size", "2", "--temperature", "0"]) == 1
    assert "--tensor_parallel_size is vLLM's: add --backend vllm" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_each_launched_vllm_engine_sees_only_its_own_gpus(monkeypatch):
    import torch

    from deltapref.errors import OptionError
    from deltapref.policy.vllm_backend import own_gpus

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "2")
    own_gpus(2)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    with pytest.raises(OptionError, match="4 processes x --tensor_parallel_size 1 need 4 GPUs; this node shows 3"):
        own_gpus(1)


def test_launch_without_use_cpu_is_refused(monkeypatch, tmp_path):
    from transformers import TrainingArguments

    from deltapref.training.arguments import check_training_args

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("deltapref.training.arguments.init_if_launched", lambda: None)  # as if the group formed
    args = TrainingArguments(output_dir=str(tmp_path), remove_unused_columns=False, report_to="none")
    with pytest.raises(ValueError, match="--use_cpu true"):
        check_training_args(args)
