"""Models checked before any work: the right model in the right role, a model or tokenizer
that does not load, config.json values, LoRA targets; each one line.

Guards: models/preflight.py, models/loading.py, training/lora.py, scorer_kinds/base.py."""

import json
import shutil

import pytest
import torch

from helpers import FAST_LR, TWO_STEPS, align_argv, fails


def _gpt2(tmp_path, name, tokenizer_dir, **config):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    values = {"n_embd": 32, "n_layer": 1, "n_head": 2, "vocab_size": len(tokenizer), "n_positions": 128, **config}
    values.update(bos_token_id=tokenizer.eos_token_id % values["vocab_size"], eos_token_id=None)
    GPT2LMHeadModel(GPT2Config(**values)).save_pretrained(tmp_path / name)
    tokenizer.save_pretrained(tmp_path / name)
    return tmp_path / name


def _damaged(source, target, damage):
    shutil.copytree(source, target)
    if damage == "no config.json":
        (target / "config.json").unlink()
    elif damage == "truncated weights":
        with open(target / "model.safetensors", "r+b") as handle:
            handle.truncate(100)
    elif damage == "garbage weights":
        (target / "model.safetensors").write_bytes(b"\x00" * 5000)
    elif damage == "pickled weights":
        (target / "model.safetensors").unlink()
        torch.save({"lm_head.weight": torch.zeros(2)}, target / "pytorch_model.bin")
    elif damage == "unknown model_type":
        config = json.loads((target / "config.json").read_text())
        (target / "config.json").write_text(json.dumps(dict(config, model_type="nosuch")))
    elif damage == "lora adapter":
        for name in ("config.json", "model.safetensors"):
            (target / name).unlink()
        (target / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
        (target / "adapter_model.safetensors").write_bytes(b"")
    return target


@pytest.mark.parametrize(
    "role, model, pattern",
    [
        ("--reward_model", "sft", "is a deltapref policy model .*, not a pointwise reward model.*no reward head"),
        ("--reward_model", "difference", "is a deltapref difference model.*pass it as --difference_model"),
        ("--difference_model", "reward", "is a deltapref reward model.*not a difference model"),
        ("--difference_model", "sft", "is a deltapref policy model.*not a difference model"),
        ("--oracle", "reward", "is a deltapref reward model.*no reward head"),
        ("--reference_model", "reward", "is a deltapref reward model.*not a causal-LM policy"),
    ],
)
def test_score_refuses_models_in_the_wrong_role(capsys, scored_task, tmp_path, role, model, pattern):
    argv = ["score", "--input", scored_task["test"], "--output", str(tmp_path / "o.jsonl"), role]
    fails(capsys, argv + [str(scored_task["root"] / model)], 1, pattern)


def test_policy_commands_refuse_a_reward_model(capsys, scored_task, tmp_path):
    reward = str(scored_task["root"] / "reward")
    argv = ["align", "--model", reward, "--train_data", scored_task["data"], "--output_dir", str(tmp_path / "p")]
    fails(capsys, argv + TWO_STEPS, 1, "is a deltapref reward model .LlamaForSeq.*, not a causal-LM policy")
    fails(
        capsys,
        ["generate", "--model", reward, "--input", scored_task["test"], "--output", str(tmp_path / "g")],
        1,
        "not a causal-LM policy",
    )
    fails(
        capsys,
        ["evaluate", "scorer", "--model", reward, "--kind", "difference", "--data", scored_task["test"]],
        1,
        "not a difference model",
    )


def test_a_missing_model_says_both_local_and_hub(capsys, scored_task, tmp_path):
    argv = ["align", "--model", "someone/no-such-model", "--train_data", scored_task["data"], "--output_dir"]
    fails(
        capsys,
        argv + [str(tmp_path / "p")] + TWO_STEPS,
        1,
        "is not a local directory, and as a hub id it did not load",
    )


@pytest.mark.parametrize(
    "config, edit, pattern",
    [
        ({"n_positions": 16}, None, "--max_length 96 is more than the 16 positions the model embeds"),
        ({"vocab_size": 10}, None, "its tokenizer has \\d+ tokens but the model embeds only 10"),
        ({}, {"n_embd": "64"}, "field 'n_embd' must be a positive integer, got '64'"),
        ({}, {"vocab_size": None}, "field 'vocab_size' must be a positive integer, got None"),
        ({}, [1, 2], "must hold a JSON object of settings, not a list"),
    ],
)
def test_model_directories_are_checked_before_training(capsys, scored_task, tmp_path, config, edit, pattern):
    model = _gpt2(tmp_path, "gpt2", scored_task["sft"], **config)
    if edit is not None:
        settings = json.loads((model / "config.json").read_text())
        settings = {**settings, **edit} if isinstance(edit, dict) else edit
        (model / "config.json").write_text(json.dumps(settings))
    argv = [
        "sft",
        "--model",
        model,
        "--train_data",
        scored_task["test"],
        "--output_dir",
        tmp_path / "o",
        *FAST_LR,
    ]
    fails(capsys, argv + ["--max_steps", "1"], 1, pattern)
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "targets, code, pattern",
    [("nosuch_proj", 1, "--lora_target_modules nosuch_proj: no such module in this model"), ("", 2, "must name")],
)
def test_lora_targets_must_exist(capsys, scored_task, policy, tmp_path, targets, code, pattern):
    argv = [
        "sft",
        "--model",
        policy,
        "--train_data",
        scored_task["test"],
        "--output_dir",
        tmp_path / "o",
        *FAST_LR,
    ]
    fails(capsys, argv + ["--lora_r", "4", "--lora_target_modules", targets, "--max_steps", "1"], code, pattern)


@pytest.mark.parametrize(
    "damage, pattern",
    [
        ("no config.json", "has no config.json: not a model directory"),
        ("truncated weights", "does not load as a model .SafetensorError"),
        ("garbage weights", "does not load as a model"),
        ("pickled weights", r"has no .safetensors weights \(found pytorch_model.bin: pickled weights are never loaded"),
        ("unknown model_type", "does not load as a model .ValueError.*nosuch"),
        ("lora adapter", "is a LoRA adapter .adapter_config.json., not a full model: merge it"),
    ],
)
def test_a_model_that_does_not_load_is_one_line(capsys, scored_task, tmp_path, damage, pattern):
    model = _damaged(scored_task["root"] / "sft", tmp_path / "model", damage)
    argv = align_argv(scored_task, tmp_path / "out")
    argv[argv.index("--model") + 1] = str(model)
    argv += ["--tokenizer", str(scored_task["root"] / "sft")]  # the tokenizer is not what is damaged
    fails(capsys, argv, 1, pattern)
    assert not (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("contents", [[], ["config.json"]])
def test_a_directory_without_a_tokenizer_is_one_line(capsys, builtin_task, tmp_path, contents):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    for name in contents:
        (tokenizer / name).write_text("{}")
    argv = ["sft", "--model", "tiny:32:1", "--tokenizer", str(tokenizer), "--train_data"]
    argv += [str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path / "out"), *TWO_STEPS]
    fails(capsys, argv, 1, "holds no tokenizer files")
