"""``deltapref launch PRESET COMMAND``: the accelerate presets installed with the package (each
loads as accelerate reads it), the command line a preset and its options build, recipe stages
that name a preset, and bad launchers refused in one line before anything runs. (The FSDP2 preset
really training over two processes: tests/test_sharding.py, heavy.)

Guards: launch/presets.py, recipes/recipe_file.py."""

import shlex
import subprocess
import sys

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

from deltapref.launch.presets import PRESETS, launch_argv, preset_path
from deltapref.recipes.recipe_file import PipelineError, launcher_argv, load_recipe

KINDS = {"ddp": "MULTI_GPU", "fsdp2": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_is_installed_with_the_package_and_loads_as_accelerate_reads_it(name):
    path = preset_path(name)
    assert "site-packages" in str(path) or "/src/deltapref/launch/presets/" in str(path)
    config = load_config_from_file(str(path))
    assert str(config.distributed_type).endswith(KINDS[name])
    raw = yaml.safe_load(path.read_text())
    if name == "fsdp2":
        assert (
            raw["fsdp_config"]["fsdp_version"] == 2 and raw["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
        )
    if name.startswith("zero"):
        assert raw["deepspeed_config"]["zero_stage"] == int(name[-1])


def test_a_preset_builds_accelerate_launch_with_the_options_given_and_the_command_after_it():
    argv = launch_argv(
        ["fsdp2", "--num_processes", "4", "--mixed_precision", "no"], ["align", "--num_train_epochs", "2"]
    )
    config = argv.index("--config_file")
    assert argv[1:3] == ["-m", "accelerate.commands.launch"] and argv[config + 1] == str(preset_path("fsdp2"))
    assert argv[argv.index("--num_processes") + 1] == "4" and argv[argv.index("--mixed_precision") + 1] == "no"
    assert argv[-5:] == ["-m", "deltapref", "align", "--num_train_epochs", "2"]  # the command's own options kept
    machines = launch_argv(
        [
            "zero3",
            "--num_machines",
            "2",
            "--machine_rank",
            "1",
            "--main_process_ip",
            "10.0.0.1",
            "--main_process_port",
            "29500",
        ],
        ["sft"],
    )
    assert shlex.join(machines).count("--machine_rank 1") == 1 and "10.0.0.1" in machines


@pytest.mark.parametrize(
    "words, command, pattern",
    [
        (["fsdp2"], [], r"give the command to launch, one of sft, align"),
        (["fsdp2"], ["demo"], r"demo: not a launcher option, and the command is one of sft, align"),
        (["zero3", "--num_machines", "2"], ["align"], r"several machines need --main_process_ip"),
        (["ddp", "--num_processes", "0"], ["align"], r"--num_processes must be >= 1"),
        (["ddp", "--machine_rank", "1"], ["align"], r"--machine_rank must be in \[0, 1\)"),
    ],
)
def test_bad_launchers_are_refused_in_one_line(words, command, pattern):
    with pytest.raises(ValueError, match=pattern):
        launch_argv(words, command)
    done = subprocess.run(
        [sys.executable, "-m", "deltapref", "launch", *words, *command], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if "error:" in line]) == 1


def test_a_dry_run_prints_what_would_run_and_write_copies_a_preset(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "deltapref", "launch", "ddp", "--num_processes", "2", "--dry_run", "sft", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shlex.split(done.stdout.strip()) == launch_argv(
        ["ddp", "--num_processes", "2"], ["sft", "--help"]
    )
    target = tmp_path / "mine.yaml"
    done = subprocess.run([sys.executable, "-m", "deltapref", "launch", "zero3", "--write", str(target)], timeout=120)
    assert done.returncode == 0 and target.read_text() == preset_path("zero3").read_text()
    target.write_text("mine\n")
    again = subprocess.run(
        [sys.executable, "-m", "deltapref", "launch", "ddp", "--write", str(target)], capture_output=True, text=True
    )
    assert again.returncode == 2 and "exists" in again.stderr and target.read_text() == "mine\n"


def test_a_recipe_stage_names_a_preset_as_its_launcher(tmp_path):
    assert launcher_argv("fsdp2 --num_processes 2", ["align", "--model", "m"]) == launch_argv(
        ["fsdp2", "--num_processes", "2"], ["align", "--model", "m"]
    )
    assert launcher_argv("torchrun --nproc_per_node 2", ["sft"]) == [
        "torchrun",
        "--nproc_per_node",
        "2",
        "-m",
        "deltapref",
        "sft",
    ]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  dpo:\n    command: align\n    launcher: fsdp2 --num_machines 2\n    args: {}\n")
    with pytest.raises(PipelineError, match=r"stage 'dpo': several machines need --main_process_ip"):
        load_recipe(str(recipe))
    recipe.write_text("stages:\n  dpo:\n    command: align\n    launcher: zero3 --num_processes 8\n    args: {}\n")
    assert load_recipe(str(recipe))["stages"]["dpo"]["launcher"] == "zero3 --num_processes 8"
