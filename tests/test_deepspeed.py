"""DeepSpeed ZeRO-2 and ZeRO-3 really run: two CPU processes (gloo) through the Trainer train what
one process trains. DeepSpeed is not in the test environment (its source build would pull a CUDA
torch): scripts/deepspeed_check.sh installs it beside this environment and runs this file;
elsewhere it is skipped, saying so.

Guards: training/sharding.py, training/distributed.py."""

import json

import pytest
from safetensors.torch import load_file

from test_distributed import deltapref
from test_sharding import STEPS

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed here: scripts/deepspeed_check.sh runs these tests")


def zero_config(tmp_path, stage: int) -> str:
    """A ZeRO config a CPU runs: DeepSpeed's AdamW in torch (its CPU Adam is a compiled op)."""
    config = {
        "zero_optimization": {"stage": stage, "stage3_gather_16bit_weights_on_model_save": stage == 3},
        "optimizer": {"type": "AdamW", "params": {k: "auto" for k in ("lr", "weight_decay", "betas", "eps")}},
        "zero_force_ds_cpu_optimizer": False,
        **{
            key: "auto" for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size")
        },
    }
    path = tmp_path / f"zero{stage}.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_two_processes_train_what_one_process_trains(scored_task, tmp_path, stage):
    """ZeRO-3 partitions the model as it loads: the reference log-probs come with the data."""
    data = scored_task["data"]
    if stage == 3:
        data = str(tmp_path / "with_reference.jsonl")
        deltapref(["score", "--input", scored_task["data"], "--output", data, "--reference_model", scored_task["sft"]])
    args = ["align", "--model", scored_task["sft"], "--train_data", data, "--loss", "dpo", "--coef", "diff"]
    args += ["--learning_rate", "5e-4", *STEPS]
    deltapref(args + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    two, _ = deltapref(
        args + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"]
        + ["--deepspeed", zero_config(tmp_path, stage)],
        nproc=2,
    )  # fmt: skip
    assert "DeepSpeed: the model is sharded over 2 processes" in two.stderr
    losses = [
        [e["loss"] for e in json.loads((tmp_path / n / "train_summary.json").read_text())["log_history"] if "loss" in e]
        for n in ("one", "two")
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    first, second = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert first.keys() == second.keys()
    assert all((first[k] - second[k]).abs().max().item() < 5e-4 / 20 for k in first)


def test_zero3_without_reference_columns_is_refused_in_one_line(scored_task, tmp_path):
    import subprocess
    import sys

    from test_distributed import ENV

    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    argv += ["deltapref.cli", "align", "--model", scored_task["sft"], "--train_data", scored_task["data"]]
    argv += ["--loss", "dpo", "--output_dir", str(tmp_path / "p"), "--deepspeed", zero_config(tmp_path, 3), *STEPS]
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "needs the reference log-probs in the data" in done.stderr
