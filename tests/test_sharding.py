"""FSDP2 really run: two CPU processes (gloo) shard the model through the Trainer and accelerate,
by the same launchers a GPU user runs, and train what one process trains.

Guards: training/sharding.py, training/run_folder.py."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from test_distributed import ENV, deltapref

FSDP2 = ["--fsdp", "full_shard", "--fsdp_config", '{"fsdp_version": 2}']
STEPS = [
    "--max_steps",
    "6",
    "--logging_steps",
    "2",
    "--disable_tqdm",
    "true",
    "--lr_scheduler_type",
    "constant",
    "--train_sampling_strategy",
    "sequential",
    "--use_cpu",
    "true",
]
# The Bradley–Terry loss does not depend on a reward head's bias: its gradient is float rounding
# around zero, which Adam turns into steps of ±lr in either run. Elsewhere Adam divides a
# near-zero gradient by its own size too: weights agree within a twentieth of one step (lr / 20).
NO_GRADIENT = {"reward_head.bias"}


def commands(scored_task, tokenizer):
    policy = ["--model", scored_task["sft"], "--train_data", scored_task["data"], "--learning_rate", "5e-4"]
    scorer = ["--model", "tiny:32:1", "--tokenizer", tokenizer, "--train_data", scored_task["test"]]
    return {
        "dpo+rc": (["align", *policy, "--loss", "dpo", "--coef", "diff"], "train_summary.json", 5e-4),
        "drdo": (["align", *policy, "--loss", "drdo"], "train_summary.json", 5e-4),
        "sft": (["sft", *policy], "train_summary.json", 5e-4),
        "oracle": (["train-scorer", "--kind", "oracle", *scorer, "--learning_rate", "1e-3"], "scorer_eval.json", 1e-3),
    }


def logged_losses(directory, summary):
    history = json.loads((directory / summary).read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def assert_same_training(one, two, summary, learning_rate):
    """Equal logged losses and final weights (float tolerance); the sharded run saved one whole
    state dict that plain transformers loads."""
    assert logged_losses(one, summary) == pytest.approx(logged_losses(two, summary), rel=1e-5, abs=1e-7)
    first, second = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert first.keys() == second.keys()
    for name in first.keys() - NO_GRADIENT:
        assert (first[name] - second[name]).abs().max().item() < learning_rate / 20, name


@pytest.mark.parametrize("method", ["dpo+rc", "drdo", "sft", "oracle"])
def test_fsdp2_two_processes_train_what_one_process_trains(scored_task, builtin_task, tmp_path, method):
    args, summary, learning_rate = commands(scored_task, str(builtin_task / "tokenizer"))[method]
    deltapref(args + STEPS + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    two, _ = deltapref(
        args + STEPS + FSDP2 + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"], nproc=2
    )
    assert "FSDP2: the model is sharded over 2 processes" in two.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two", summary, learning_rate)
    if method != "oracle":
        from transformers import AutoModelForCausalLM

        assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "two")).num_parameters() > 0


def test_fsdp2_resumes_a_sharded_checkpoint(scored_task, builtin_task, tmp_path):
    """A run stopped after its step-3 checkpoint and resumed under FSDP2 ends with the weights of
    the run that was never stopped."""
    args, summary, _ = commands(scored_task, str(builtin_task / "tokenizer"))["dpo+rc"]
    run = args + STEPS + FSDP2 + ["--output_dir", str(tmp_path / "run"), "--per_device_train_batch_size", "8"]
    deltapref(run + ["--save_strategy", "steps", "--save_steps", "3"], nproc=2)
    whole = load_file(tmp_path / "run" / "model.safetensors")
    assert (tmp_path / "run" / "checkpoint-3" / "pytorch_model_fsdp.bin").exists()  # accelerate's FSDP checkpoint
    deltapref(run + ["--resume_from_checkpoint", str(tmp_path / "run" / "checkpoint-3")], nproc=2)
    resumed = load_file(tmp_path / "run" / "model.safetensors")
    assert json.loads((tmp_path / "run" / summary).read_text())["resumed_from_step"] == 3
    assert all((whole[name] - resumed[name]).abs().max().item() < 1e-6 for name in whole)


def assert_preset_trains_what_one_process_trains(preset, command, tmp_path, sharded: str) -> None:
    """``deltapref launch PRESET`` (accelerate launch with the preset installed in the package: what
    a GPU user runs; here 2 processes, fp32) logs ``sharded`` and trains what one process trains
    (``command``: an entry of ``commands``)."""
    args, summary, learning_rate = command
    launcher = [sys.executable, "-m", "deltapref", "launch", preset, "--num_processes", "2", "--mixed_precision", "no"]
    done = subprocess.run(
        launcher + args + STEPS + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"],
        env=dict(ENV),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sharded in done.stderr
    deltapref(args + STEPS + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    assert_same_training(tmp_path / "one", tmp_path / "two", summary, learning_rate)


def test_the_installed_fsdp2_preset_shards_and_trains_what_one_process_trains(scored_task, builtin_task, tmp_path):
    command = commands(scored_task, str(builtin_task / "tokenizer"))["dpo+rc"]
    assert_preset_trains_what_one_process_trains(
        "fsdp2", command, tmp_path, "FSDP2: the model is sharded over 2 processes"
    )


@pytest.mark.parametrize("method", ["dpo+rc", "sft", "oracle"])
def test_lora_under_fsdp2_trains_what_one_process_trains(scored_task, builtin_task, tmp_path, method):
    """LoRA under FSDP2 (the layout `deltapref plan` recommends for 70B): two processes train the
    adapters one process trains; the merged model (from the gathered tensors) and the adapter
    saved with --merge_lora false (policies) equal one process's."""
    args, summary, learning_rate = commands(scored_task, str(builtin_task / "tokenizer"))[method]
    lora = args + STEPS + ["--lora_r", "4"]
    deltapref(lora + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    two, _ = deltapref(
        lora + FSDP2 + ["--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "8"], nproc=2
    )
    assert "FSDP2: the model is sharded over 2 processes" in two.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two", summary, learning_rate)
    if method == "oracle":
        return  # scorers are always saved merged
    adapters = lora + FSDP2 + ["--merge_lora", "false", "--per_device_train_batch_size", "8"]
    deltapref(adapters + ["--output_dir", str(tmp_path / "adapter")], nproc=2)
    one = lora + ["--merge_lora", "false", "--per_device_train_batch_size", "16"]
    deltapref(one + ["--output_dir", str(tmp_path / "adapter-one")])
    first = load_file(tmp_path / "adapter-one" / "adapter_model.safetensors")
    second = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert first.keys() == second.keys() and any("lora_B" in name for name in first)
    assert all((first[k] - second[k]).abs().max().item() < learning_rate / 20 for k in first)


def test_lora_under_fsdp2_resumes_a_sharded_checkpoint(scored_task, builtin_task, tmp_path):
    """A LoRA run stopped after its step-3 checkpoint resumes under FSDP2 to the weights of the
    run that was never stopped."""
    args, _, _ = commands(scored_task, str(builtin_task / "tokenizer"))["dpo+rc"]
    run = args + STEPS + FSDP2 + ["--lora_r", "4", "--output_dir", str(tmp_path / "run")]
    run += ["--per_device_train_batch_size", "8"]
    deltapref(run + ["--save_strategy", "steps", "--save_steps", "3"], nproc=2)
    whole = load_file(tmp_path / "run" / "model.safetensors")
    deltapref(run + ["--resume_from_checkpoint", str(tmp_path / "run" / "checkpoint-3")], nproc=2)
    resumed = load_file(tmp_path / "run" / "model.safetensors")
    assert all((whole[name] - resumed[name]).abs().max().item() < 1e-6 for name in whole)
