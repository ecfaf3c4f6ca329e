"""Options at every door (flags, ``--config`` files, Python keywords): non-finite and
out-of-range values, unknown choices and flags, wrong types, former names, layouts this
machine cannot run; each refused in one line before any model loads.

Guards: config/commands.py, config/values.py, training/arguments.py, training/sharding.py,
stages/__init__.py, api.py, errors.py."""

import os
from pathlib import Path

import pytest

import deltapref
from deltapref.cli import main
from deltapref.errors import DeltaprefError
from helpers import BOMB, TWO_STEPS, fails, rows_of


@pytest.mark.parametrize("option, value", [("--alpha", "nan"), ("--beta", "inf"), ("--learning_rate", "nan")])
def test_non_finite_options_are_refused(capsys, scored_task, tmp_path, option, value):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p"), option, value], 2, f"{option} must be a finite number")


@pytest.mark.parametrize(
    "command, extra, pattern",
    [
        ("align", ["--beta", "0"], "--beta must be > 0"),
        ("align", ["--beta", "-0.1"], "--beta must be > 0"),
        ("align", ["--tau", "0"], "--tau must be > 0"),
        ("align", ["--alpha", "-1"], "--alpha must be >= 0"),
        ("align", ["--learning_rate", "0"], "--learning_rate must be > 0"),
        ("align", ["--kto_lambda_d", "-1"], "--kto_lambda_d must be >= 0"),
        ("align", ["--max_length", "64", "--max_prompt_length", "64"], "max_prompt_length must be smaller"),
        ("align", ["--lora_dropout", "1.5"], "--lora_dropout must be < 1"),
        ("train-scorer", ["--lambda_dup", "-1"], "--lambda_dup must be >= 0"),
        ("train-scorer", ["--oracle_lm_weight", "2"], "--oracle_lm_weight must be <= 1"),
    ],
)
def test_out_of_range_options_are_refused_at_parse_time(capsys, scored_task, tmp_path, command, extra, pattern):
    argv = [command, "--model", "no/such-model", "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "x")] + extra, 2, pattern)  # before any model loads: no hub error
    assert not (tmp_path / "x").exists()


def test_unknown_choices_are_refused(capsys, scored_task, tmp_path):
    argv = ["align", "--model", "x", "--train_data", scored_task["data"], "--output_dir", str(tmp_path / "x")]
    fails(capsys, argv + ["--loss", "orpo"], 2, "invalid choice: 'orpo'")
    fails(
        capsys,
        ["data", "synth", "--temperature", "0", "--output_dir", str(tmp_path / "t")],
        2,
        "--temperature must be > 0",
    )
    fails(
        capsys, ["generate", "--model", "x", "--input", "y", "--output", "z", "--top_p", "0"], 2, "--top_p must be > 0"
    )


def test_save_steps_without_a_save_strategy_is_refused(capsys, scored_task, tmp_path):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p"), "--save_steps", "10"], 2, "saves nothing with --save_strategy no")


@pytest.mark.parametrize("command", ["align", "sft"])
def test_remove_unused_columns_is_one_line_not_a_traceback(capsys, scored_task, tmp_path, command):
    argv = [command, "--model", scored_task["sft"], "--train_data", scored_task["data"], *TWO_STEPS]
    fails(capsys, argv + ["--output_dir", str(tmp_path / "p"), "--remove_unused_columns", "true"], 1, "must stay false")
    assert not (tmp_path / "p" / "model.safetensors").exists()


def test_a_null_output_dir_in_a_config_file_is_not_given(capsys, scored_task, tmp_path):
    config = tmp_path / "o.yaml"
    config.write_text("output_dir: null\nmodel: tiny:32:1\n")
    argv = ["sft", "--config", config, "--tokenizer", scored_task["sft"], "--train_data", scored_task["test"]]
    fails(capsys, argv, 2, "--output_dir is required")
    assert not (Path.cwd() / "trainer_output").exists()


@pytest.mark.parametrize(
    "text, pattern", [("beta: [1]\n", "--beta must be a number, got \\[1\\]"), ("lora_r: true\n", "--lora_r must be")]
)
def test_config_file_values_of_the_wrong_type_are_refused(capsys, scored_task, tmp_path, text, pattern):
    config = tmp_path / "o.yaml"
    config.write_text(text)
    argv = ["align", "--config", config, "--model", "tiny:32:1", "--tokenizer", scored_task["sft"]]
    fails(capsys, argv + ["--train_data", scored_task["test"], "--output_dir", tmp_path / "o"], 2, pattern)


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"model": 5}, "--model must be text"),
        ({"max_steps": "2"}, "--max_steps must be an integer, got '2'"),
        ({"beta": None}, "--beta must be a number, got None"),
        ({"lora_r": True}, "--lora_r must be an integer, got True"),
    ],
)
def test_the_api_refuses_wrong_types_naming_the_option(scored_task, tmp_path, options, pattern):
    base = {"model": "tiny:32:1", "tokenizer": scored_task["sft"], "train_data": scored_task["test"]}
    with pytest.raises(ValueError, match=pattern):
        deltapref.align(**{**base, **options}, output_dir=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_the_api_takes_paths_wherever_a_path_goes(scored_task, policy, tmp_path):
    summary = deltapref.align(
        model=policy, train_data=Path(scored_task["data"]), output_dir=tmp_path / "p", max_steps=2, disable_tqdm=True
    )
    assert summary["steps"] == 2 and (tmp_path / "p" / "README.md").exists()
    reward = scored_task["root"] / "reward"
    out = deltapref.score(input=Path(scored_task["test"]), output=tmp_path / "s.jsonl", reward_model=reward)
    assert out == tmp_path / "s.jsonl" and "reward_chosen" in rows_of(out)[0]


def test_an_api_error_is_a_deltapref_error_or_value_error(scored_task, tmp_path):
    with pytest.raises(DeltaprefError, match="does not exist"):
        reward = scored_task["root"] / "reward"
        deltapref.score(input=tmp_path / "nope.jsonl", output=tmp_path / "s.jsonl", reward_model=reward)
    assert not os.path.exists(tmp_path / "s.jsonl")


def test_an_unknown_flag_suggests_the_close_one_before_any_work(capsys, tmp_path):
    argv = ["align", "--loss_type", "sigmoid", "--model", "m", "--train_data", "d.jsonl", "--output_dir", tmp_path]
    fails(capsys, argv, 2, "unrecognized arguments: --loss_type sigmoid; did you mean --loss\\?")


def test_renamed_options_keep_their_former_names_at_every_door(tmp_path):
    """--drdo_alpha is now --drdo_focal_weight and --alpha_lm --oracle_lm_weight: the former names
    still work on the command line, in a --config file, in a recipe's args and as Python keywords;
    both names at once are refused."""
    import deltapref
    from deltapref.config.commands import load_yaml_options, parse_config
    from deltapref.objectives import PolicyLossOptions, ScorerLossOptions

    (options,) = parse_config([PolicyLossOptions], ["--loss", "drdo", "--drdo_alpha", "0.3"], "deltapref align", "")
    assert options.drdo_focal_weight == 0.3
    config = tmp_path / "c.yaml"
    config.write_text("alpha_lm: 0.2\n")
    assert load_yaml_options(str(config), [ScorerLossOptions]) == {"oracle_lm_weight": 0.2}
    built = deltapref.build_configs("align", {"drdo_alpha": 0.4, "model": "m", "train_data": "d", "output_dir": "o"})
    assert built[0].drdo_focal_weight == 0.4
    with pytest.raises(ValueError, match="given twice"):
        deltapref.build_configs("align", {"drdo_alpha": 0.4, "drdo_focal_weight": 0.5, "output_dir": "o"})


@pytest.mark.parametrize("extra, says", [(["--fsdp_config", '{"fsdp_version": 1}'], "FSDP2 only")])
def test_fsdp_that_cannot_shard_here_is_refused(builtin_task, tmp_path, capsys, extra, says):
    """FSDP runs on CPUs as FSDP2, LoRA included (tests/test_sharding.py); FSDP version 1 on a CPU
    is refused in one line, before any output is made."""
    from deltapref.cli import main

    argv = ["align", "--model", "tiny:32:1", "--tokenizer", str(builtin_task / "tokenizer")]
    argv += ["--train_data", str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path / "p")]
    assert main(argv + ["--fsdp", "full_shard", *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert says in err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("seed: [1\n", "not a plain YAML document"),
        ("seed: !!python/object/apply:os.system [echo]\n", "python/object"),
        (BOMB, "aliases expand to more than"),
        ("- 1\n", "must hold a mapping"),
    ],
)
def test_bad_option_files_are_one_line(capsys, tmp_path, text, pattern):
    options = tmp_path / "o.yaml"
    options.write_text(text)
    argv = ["data", "synth", "--config", str(options), "--output_dir", str(tmp_path / "t")]
    fails(capsys, argv, 2, pattern)


@pytest.mark.parametrize("command", ["align", "sft", "train-scorer"])
def test_a_training_command_without_an_output_dir_is_refused(capsys, command):
    """Before: transformers turned a missing --output_dir into ./trainer_output silently."""
    assert main([command, "--model", "m", "--train_data", "x"]) == 2
    assert "--output_dir is required" in capsys.readouterr().err
