"""`deltapref plan`: memory estimates from the parameter count, checked by hand.

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
