"""`deltapref plan`: memory estimates from the parameter count, checked by hand; the command it prints
for each layout that fits, run at tiny size (heavy).

Guards: training/plan.py."""

import pytest

from deltapref.cli import main
from deltapref.training.plan import GIB, PlanConfig, estimates, model_shape


def test_model_state_per_gpu_by_hand():
    shape = model_shape("8b")
    assert shape.parameters == 8e9 and shape.layers == shape.hidden // 128
    rows = {name: state for name, state, _, _ in estimates(PlanConfig(model="8b", gpus=8), shape)}
    assert rows["full fine-tune, DDP (1 GPU or many)"] == pytest.approx(16 * 8e9 / GIB)  # 119.2 GiB
    layer = 16 * 8e9 / shape.layers / GIB
    assert rows["full fine-tune, FSDP full shard over 8 GPUs"] == pytest.approx(16 * 8e9 / GIB / 8 + layer / 8)
    assert rows["LoRA, DDP (frozen model in bf16)"] > 2 * 8e9 / GIB  # frozen weights plus the adapters' 16 B
    single = [name for name, *_ in estimates(PlanConfig(model="8b", gpus=1), shape)]
    assert not any("FSDP" in name for name in single)  # nothing to shard over one GPU


def test_activations_by_hand_and_with_checkpointing():
    shape = model_shape("1b")
    tokens = 4 * 2 * 1024
    (_, _, plain, _), *_ = estimates(PlanConfig(model="1b"), shape)
    assert plain == pytest.approx(34 * shape.hidden * shape.layers * tokens / GIB)
    (_, _, kept, _), *_ = estimates(PlanConfig(model="1b", gradient_checkpointing=True), shape)
    assert kept == pytest.approx((2 * shape.hidden * tokens * shape.layers + 34 * shape.hidden * tokens) / GIB)


def test_a_model_directory_is_counted_exactly(tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    LlamaForCausalLM(config).save_pretrained(str(tmp_path / "m"))
    shape = model_shape(str(tmp_path / "m"))
    assert shape.parameters == LlamaForCausalLM(config).num_parameters() and shape.layers == 2
    assert main(["plan", "--model", str(tmp_path / "m"), "--gpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "FSDP full shard over 2 GPUs" in out and "estimates, not measurements" in out
    assert main(["plan", "--model", str(tmp_path / "nothing")]) == 1


def test_plan_prints_how_to_run_each_layout_that_fits(capsys):
    assert main(["plan", "--model", "70b", "--gpus", "8", "--gradient_checkpointing", "true"]) == 0
    out = capsys.readouterr().out
    assert "LoRA, FSDP over 8 GPUs: deltapref launch fsdp2 --num_processes 8 align --lora_r 16 ..." in out
    assert main(["plan", "--model", "8b", "--gpus", "2", "--nodes", "2"]) == 0
    assert "deltapref launch ddp --num_processes 4 --num_machines 2 --machine_rank RANK" in capsys.readouterr().out


def test_every_layout_plan_prints_as_fitting_runs_at_tiny_size(scored_task, tmp_path, capsys):
    """`plan` and the code agree: each layout it prints as fitting (here a 1M-parameter model on
    2 "GPUs": all four) trains, run as printed (on CPU: fp32, --use_cpu)."""
    import subprocess
    import sys

    from test_distributed import ENV

    assert main(["plan", "--model", "1m", "--gpus", "2"]) == 0
    printed = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if ": deltapref " in line]
    assert len(printed) == 4 and sum("fsdp2" in c for c in printed) == 2 and sum("--lora_r" in c for c in printed) == 2
    for i, command in enumerate(printed):
        words = command.removesuffix(" ...").split()[1:]  # after "deltapref"
        words.insert(words.index("align"), "--mixed_precision")
        words.insert(words.index("align"), "no")
        words += ["--model", scored_task["sft"], "--train_data", scored_task["data"], "--max_steps", "2"]
        words += ["--disable_tqdm", "true", "--use_cpu", "true", "--output_dir", str(tmp_path / str(i))]
        done = subprocess.run(
            [sys.executable, "-m", "deltapref", *words], env=dict(ENV), capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, command + "\n" + done.stderr[-3000:]
        assert (tmp_path / str(i) / "model.safetensors").exists()
