"""The Python API: the CLI's options as keyword arguments, the same checks, the same runs.

Guards: api.py, __init__.py."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

import deltapref
from deltapref.cli import main


def test_import_is_light_and_names_the_api():
    code = "import sys, deltapref; print('torch' in sys.modules, 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
    names = {"align", "score", "train_scorer", "load_preferences", "reward_difference_coefficient"}
    assert names <= set(dir(deltapref))
    with pytest.raises(AttributeError):
        deltapref.no_such_name  # noqa: B018


def test_options_carry_the_cli_defaults():
    options = deltapref.options_of("align")
    assert options["loss"] == "dpo" and options["learning_rate"] is None  # by the model, as on the command line
    assert options["per_device_train_batch_size"] == 16 and options["save_strategy"] == "no"
    assert deltapref.options_of("data synth")["n_train"] == 2000


def test_bad_options_raise_what_the_cli_prints():
    with pytest.raises(TypeError, match="unknown option.*alhpa"):
        deltapref.build_configs("align", {"alhpa": 0.5, "output_dir": "x"})
    with pytest.raises(ValueError, match="alpha"):
        deltapref.build_configs("align", {"alpha": -1.0, "model": "m", "train_data": "x", "output_dir": "x"})
    with pytest.raises(ValueError, match="output_dir is required"):
        deltapref.build_configs("align", {"model": "m", "train_data": "x"})
    with pytest.raises(ValueError, match="unknown command 'allign'"):
        deltapref.options_of("allign")
    with pytest.raises(deltapref.DataError, match="does not exist"):
        deltapref.load_preferences("no/such/file.jsonl")


def test_python_and_command_line_train_the_same_model(scored_task, tmp_path):
    options = dict(model=scored_task["sft"], train_data=scored_task["data"], loss="dpo", coef="difference", max_steps=3)
    summary = deltapref.align(**options, output_dir=str(tmp_path / "python"))
    argv = ["align", "--output_dir", str(tmp_path / "cli")]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    assert main(argv) == 0
    python, cli = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("python", "cli"))
    assert python.keys() == cli.keys() and all((python[k] == cli[k]).all() for k in python)
    assert summary["steps"] == 3 and summary["options"]["coef"] == "difference"


def test_python_generate_and_evaluate_write_the_command_lines_files(scored_task, builtin_task, tmp_path, capsys):
    generate = dict(model=scored_task["sft"], input=str(builtin_task / "test.jsonl"), limit=6, max_new_tokens=5)
    path = deltapref.generate(**generate, output=str(tmp_path / "python.jsonl"))
    argv = ["generate", "--output", str(tmp_path / "cli.jsonl")]
    assert main(argv + [x for name, value in generate.items() for x in (f"--{name}", str(value))]) == 0
    python, cli = ([json.loads(line) for line in open(p)] for p in (path, tmp_path / "cli.jsonl"))
    assert python == cli and len(python) == 6

    reports = {
        "policy": dict(completions=str(path)),
        "compare": dict(a=str(path), b=str(tmp_path / "cli.jsonl")),
        "scorer": dict(model=scored_task["root"] / "reward", data=str(builtin_task / "test.jsonl"), kind="reward"),
    }
    for what, options in reports.items():
        report = deltapref.evaluate(what, **options, output=tmp_path / f"{what}-python.json")
        capsys.readouterr()
        argv = ["evaluate", what, "--output", str(tmp_path / f"{what}-cli.json")]
        assert main(argv + [x for name, value in options.items() for x in (f"--{name}", str(value))]) == 0
        printed = json.loads(capsys.readouterr().out)
        files = [json.loads((tmp_path / f"{what}-{door}.json").read_text()) for door in ("python", "cli")]
        assert report == printed == files[0] == files[1], what
    assert deltapref.evaluate("compare", **reports["compare"])["tie"] == 6  # the same completions twice
    with pytest.raises(ValueError, match="one of policy, compare, scorer"):
        deltapref.evaluate("policies", completions=str(path))
