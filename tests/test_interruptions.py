"""kill -9 in the middle of ``score``, ``align`` and ``pipeline``: the rerun ends with the same
result as a run that was never interrupted.

Guards: scorers/scoring.py, training/run_folder.py, training/checkpoints.py, recipes/pipeline.py,
cli.py, __main__.py."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltapref.cli import main
from helpers import TWO_STEPS

ENV = dict(
    os.environ,
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TOKENIZERS_PARALLELISM="false",
    DELTAPREF_LOG_LEVEL="WARNING",
)


def deltapref(*args, check=True):
    done = subprocess.run(
        [sys.executable, "-m", "deltapref", *map(str, args)], env=ENV, capture_output=True, text=True, timeout=600
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def kill_when(args, ready, timeout=300):
    """Start ``deltapref args``, SIGKILL it as soon as ``ready()`` is true; fail if it ends first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deltapref", *map(str, args)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return x.keys() == y.keys() and all(torch.allclose(x[k], y[k], atol=1e-6) for k in x)


@pytest.fixture(scope="module")
def big_input(builtin_task, tmp_path_factory):
    rows = [json.loads(line) for line in open(builtin_task / "train.jsonl")]
    path = tmp_path_factory.mktemp("big") / "pairs.jsonl"
    path.write_text("".join(json.dumps(dict(r, copy=i)) + "\n" for i in range(8) for r in rows))
    return path


def test_killed_score_resumes_to_identical_output(scored_task, big_input, tmp_path):
    common = [
        "--input",
        big_input,
        "--reward_model",
        scored_task["root"] / "reward",
        "--difference_model",
        scored_task["root"] / "difference",
        "--chunk_size",
        "100",
        "--max_length",
        "96",
        "--max_prompt_length",
        "24",
    ]
    out = tmp_path / "scored.jsonl"
    parts = tmp_path / "scored.jsonl.parts"
    kill_when(["score", "--output", out, *common], lambda: len(list(parts.glob("part-*.jsonl"))) >= 3)
    assert not out.exists() and len(list(parts.glob("part-*.jsonl"))) >= 3
    deltapref("score", "--output", out, *common)
    deltapref("score", "--output", tmp_path / "straight.jsonl", *common)
    assert out.read_bytes() == (tmp_path / "straight.jsonl").read_bytes() and not parts.exists()


def complete_checkpoints(directory: Path) -> list[Path]:
    found = [c for c in directory.glob("checkpoint-*") if (c / "deltapref_checkpoint.json").exists()]
    return sorted(found, key=lambda c: int(c.name.split("-")[1]))


def test_killed_align_rerun_as_it_was_resumes_to_the_same_weights(scored_task, tmp_path):
    common = [
        "--model",
        scored_task["sft"],
        "--train_data",
        scored_task["data"],
        "--loss",
        "dpo",
        "--coef",
        "reward",
        "--max_steps",
        "300",
        "--save_strategy",
        "steps",
        "--save_steps",
        "50",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-3",
        "--data_seed",
        "0",
        "--disable_tqdm",
        "true",
    ]
    run = tmp_path / "run"
    kill_when(["align", "--output_dir", run, *common], lambda: len(complete_checkpoints(run)) >= 1)
    assert not (run / "model.safetensors").exists()
    latest = complete_checkpoints(run)[-1]
    again = deltapref("align", "--output_dir", run, *common)  # the same command, as the message says
    assert "resuming the interrupted run" in again.stderr
    deltapref("align", "--output_dir", tmp_path / "straight", *common)
    assert same_weights(run, tmp_path / "straight")
    resumed = json.loads((run / "train_summary.json").read_text())
    straight = json.loads((tmp_path / "straight" / "train_summary.json").read_text())
    assert resumed["resumed_from_step"] == int(latest.name.split("-")[1])
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-4)


def test_killed_pipeline_resumes_to_the_same_result(builtin_task, tmp_path):
    tiny = {
        "model": "tiny:32:1",
        "tokenizer": "{data}/tokenizer",
        "disable_tqdm": True,
        "max_length": 96,
        "max_prompt_length": 24,
        "seed": 0,
    }
    recipe = {
        "stages": {
            "data": {"command": "data synth", "args": {"n_train": 400, "n_test": 50}},
            "sft": {"command": "sft", "args": dict(tiny, train_data="{data}/train.jsonl", max_steps=30)},
            "dpo": {
                "command": "align",
                "args": dict(
                    tiny,
                    model="{sft}",
                    tokenizer=None,
                    train_data="{data}/train.jsonl",
                    max_steps=400,
                    per_device_train_batch_size=8,
                ),
            },
        }
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    run = tmp_path / "run"
    kill_when(["pipeline", "--recipe", path, "--output_dir", run], lambda: (run / "logs" / "dpo.log").exists())
    assert not (run / "dpo" / "model.safetensors").exists()
    second = deltapref("pipeline", "--recipe", path, "--output_dir", run)
    assert "data: cached" in second.stdout and "sft: cached" in second.stdout
    deltapref("pipeline", "--recipe", path, "--output_dir", tmp_path / "straight")
    assert same_weights(run / "dpo", tmp_path / "straight" / "dpo")


def test_ctrl_c_says_interrupted_and_exits_130(capsys, scored_task, tmp_path, monkeypatch):
    import deltapref.scorers.run as scorer_run

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scorer_run.ScorerTrainer, "train", interrupt)
    out = tmp_path / "rm"
    argv = ["train-scorer", "--kind", "reward", "--model", "tiny:32:1", "--tokenizer", str(scored_task["sft"])]
    assert main(argv + ["--train_data", scored_task["data"], "--output_dir", str(out), *TWO_STEPS]) == 130
    err = capsys.readouterr().err
    assert "deltapref train-scorer: interrupted" in err and "Traceback" not in err
    assert not (out / "model.safetensors").exists() and not (tmp_path / ".rm.lock").exists()
