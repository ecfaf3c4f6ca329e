"""The Python API: the CLI's options as keyword arguments, the same checks, the same runs."""

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
