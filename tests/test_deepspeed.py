"""DeepSpeed ZeRO-2 and ZeRO-3 really run: two CPU processes (gloo) through the Trainer train what
one process trains, with full weights and with LoRA, resume a checkpoint, and run under the
installed ``zero2``/``zero3`` launch presets. DeepSpeed is not in the test environment (its source
build would pull a CUDA torch): scripts/deepspeed_check.sh installs it beside this environment and
runs this file; elsewhere it is skipped, saying so.

Guards: training/sharding.py, training/distributed.py, training/run_folder.py, launch/presets.py."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from test_distributed import ENV, deltapref
from test_sharding import STEPS, assert_preset_trains_what_one_process_trains, assert_same_training, commands

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
    data = with_reference(scored_task, tmp_path) if stage == 3 else scored_task["data"]
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


def with_reference(scored_task, tmp_path) -> str:
    """The task's pairs with their reference log-probs (ZeRO-3 cannot run the reference pass)."""
    data = str(tmp_path / "with_reference.jsonl")
    deltapref(["score", "--input", scored_task["data"], "--output", data, "--reference_model", scored_task["sft"]])
    return data


def policy_command(scored_task, tmp_path, method: str, builtin_task) -> tuple[list[str], str, float]:
    """A command of ``test_sharding.commands`` as ZeRO-3 runs it: a policy's data with reference
    log-probs; the oracle from the saved SFT model, not a fresh ``tiny:`` one (transformers builds a
    fresh model under ZeRO-3 partitioned and initializes it by another draw than one process)."""
    args, summary, learning_rate = commands(scored_task, str(builtin_task / "tokenizer"))[method]
    if method == "oracle":
        return [scored_task["sft"] if word == "tiny:32:1" else word for word in args], summary, learning_rate
    args = [with_reference(scored_task, tmp_path) if word == scored_task["data"] else word for word in args]
    return args, summary, learning_rate


@pytest.mark.parametrize("stage,method", [(3, "dpo+rc"), (3, "sft"), (3, "oracle"), (2, "dpo+rc")])
def test_lora_under_zero_trains_what_one_process_trains(scored_task, builtin_task, tmp_path, stage, method):
    """LoRA under ZeRO-3 (the frozen base partitioned with the adapters) and ZeRO-2: two processes
    train the adapters one process trains; the merged model (from the consolidated state dict) and
    the adapter saved with --merge_lora false equal one process's."""
    args, summary, learning_rate = policy_command(scored_task, tmp_path, method, builtin_task)
    lora = args + STEPS + ["--lora_r", "4"]
    deltapref(lora + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    sharded = lora + ["--deepspeed", zero_config(tmp_path, stage), "--per_device_train_batch_size", "8"]
    two, _ = deltapref(sharded + ["--output_dir", str(tmp_path / "two")], nproc=2)
    assert "DeepSpeed: the model is sharded over 2 processes" in two.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two", summary, learning_rate)
    if method != "dpo+rc":
        return
    deltapref(sharded + ["--merge_lora", "false", "--output_dir", str(tmp_path / "adapter")], nproc=2)
    one = lora + ["--merge_lora", "false", "--per_device_train_batch_size", "16"]
    deltapref(one + ["--output_dir", str(tmp_path / "adapter-one")])
    first = load_file(tmp_path / "adapter-one" / "adapter_model.safetensors")
    second = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert first.keys() == second.keys() and any("lora_B" in name for name in first)
    assert all((first[k] - second[k]).abs().max().item() < learning_rate / 20 for k in first)


@pytest.mark.parametrize("stage,lora", [(2, False), (3, False), (3, True)])
def test_zero_resumes_a_checkpoint(scored_task, builtin_task, tmp_path, stage, lora):
    """A run stopped after its step-3 checkpoint (DeepSpeed's own, one shard per process) and
    resumed under ZeRO ends with the weights of the run that was never stopped."""
    args, summary, _ = policy_command(scored_task, tmp_path, "dpo+rc", builtin_task)
    run = args + STEPS + ["--deepspeed", zero_config(tmp_path, stage), "--per_device_train_batch_size", "8"]
    run += ["--output_dir", str(tmp_path / "run")] + (["--lora_r", "4"] if lora else [])
    deltapref(run + ["--save_strategy", "steps", "--save_steps", "3"], nproc=2)
    whole = load_file(tmp_path / "run" / "model.safetensors")
    assert list((tmp_path / "run" / "checkpoint-3").glob("global_step3/*optim_states.pt"))  # DeepSpeed's checkpoint
    deltapref(run + ["--resume_from_checkpoint", str(tmp_path / "run" / "checkpoint-3")], nproc=2)
    assert json.loads((tmp_path / "run" / summary).read_text())["resumed_from_step"] == 3
    resumed = load_file(tmp_path / "run" / "model.safetensors")
    assert all((whole[name] - resumed[name]).abs().max().item() < 1e-6 for name in whole)


@pytest.mark.parametrize("preset", ["zero2", "zero3"])
def test_the_installed_zero_presets_train_what_one_process_trains(scored_task, builtin_task, tmp_path, preset):
    command = policy_command(scored_task, tmp_path, "dpo+rc", builtin_task)
    assert_preset_trains_what_one_process_trains(
        preset, command, tmp_path, "DeepSpeed: the model is sharded over 2 processes"
    )


def test_zero3_without_reference_columns_is_refused_in_one_line(scored_task, tmp_path):
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    argv += ["deltapref.cli", "align", "--model", scored_task["sft"], "--train_data", scored_task["data"]]
    argv += ["--loss", "dpo", "--output_dir", str(tmp_path / "p"), "--deepspeed", zero_config(tmp_path, 3), *STEPS]
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "needs the reference log-probs in the data" in done.stderr
