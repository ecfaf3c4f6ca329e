"""A pipeline's checks before anything runs: the folder it owns, recipes that would run
something else or leave the output folder, every stage's options built first, the cache keyed
on content, the demo's and the study's recipes.

Guards: recipes/pipeline.py, recipes/recipe_file.py, config/safe_yaml.py, artifacts/fingerprint.py,
recipes/demo.py, study/recipes.py."""

import json
import time
from pathlib import Path

import pytest
import yaml

from deltapref.cli import main
from helpers import BOMB, fails, rows_of, snapshot, write_rows


def test_a_pipeline_refuses_a_users_directory_and_touches_nothing(capsys, tmp_path):
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "logs").mkdir()
    (mine / "data" / "notes.txt").write_text("my notes")
    (mine / "logs" / "data.log").write_text("my log")
    (mine / "pipeline.json").write_text("{}")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": {"data": {"command": "data synth", "args": {"n_train": 40}}}}))
    before = snapshot(mine)
    fails(capsys, ["pipeline", "--recipe", recipe, "--output_dir", mine], 1, "mine is a non-empty directory")
    fails(capsys, ["pipeline", "--recipe", recipe, "--output_dir", mine, "--dry_run", "true"], 1, "non-empty")
    assert snapshot(mine) == before


def test_a_pipeline_owns_the_directory_it_made(tmp_path):
    recipe = tmp_path / "r.yaml"
    stages = {"data": {"command": "data synth", "args": {"n_train": 40, "n_test": 20}}}
    recipe.write_text(yaml.safe_dump({"stages": stages}))
    assert main(["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")]) == 0
    stages["data"]["args"]["n_train"] = 50  # a changed stage reruns in its own folder
    recipe.write_text(yaml.safe_dump({"stages": stages}))
    assert main(["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")]) == 0
    assert len(rows_of(tmp_path / "run" / "data" / "train.jsonl")) == 50


def test_a_pipeline_stage_reruns_when_an_input_file_changes(scored_task, tmp_path):
    source = tmp_path / "ext.jsonl"
    rows = rows_of(scored_task["test"])
    write_rows(source, rows[:50])
    recipe = tmp_path / "r.yaml"
    stage = {"command": "data convert", "args": {"input": str(source), "output": "{here}/out.jsonl"}}
    recipe.write_text(yaml.safe_dump({"stages": {"conv": stage}}))
    run = ["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")]
    assert main(run) == 0 and len(rows_of(tmp_path / "run" / "conv" / "out.jsonl")) == 50
    write_rows(source, rows[:10])
    assert main(run) == 0 and len(rows_of(tmp_path / "run" / "conv" / "out.jsonl")) == 10
    memo = json.loads((tmp_path / "run" / ".deltapref-content.json").read_text())
    assert str(source.resolve()) in memo


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("stages:\n  a: {command: data synth}\n  a: {command: sft}\n", "line 3: key 'a' repeats the one on line 2"),
        ("output_dri: x\nstages:\n  a: {command: data synth}\n", "unknown key.s. output_dri"),
        ("stages:\n  1: {command: data synth}\n", "stage name 1 is not text; quote it"),
        ("stages:\n  a: {command: data synth, launcher: [python]}\n", "'launcher' must be one command line"),
        ("stages:\n  a: {command: data synth, args: {1: 2}}\n", "option name 1 is not text"),
        ("report: [1]\nstages:\n  a: {command: data synth}\n", "'report' must be a mapping"),
    ],
)
def test_recipes_that_would_run_something_else_are_refused(capsys, tmp_path, text, pattern):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    fails(capsys, ["pipeline", "--recipe", recipe, "--output_dir", tmp_path / "run"], 1, pattern)
    assert not (tmp_path / "run").exists()


def test_a_recipe_stage_runs_from_its_values_not_from_a_command_line(scored_task, tmp_path, monkeypatch):
    """A value a command line would misread (a path starting with '--') reaches the stage as it
    is; text from YAML converts as on the command line; a list becomes a comma list."""
    monkeypatch.chdir(tmp_path)
    Path("--odd.jsonl").write_bytes(Path(scored_task["test"]).read_bytes())
    stages = {
        "conv": {"command": "data convert", "args": {"input": "--odd.jsonl", "output": "{here}/out.jsonl"}},
        "parts": {"command": "data partition", "args": {"input": "{conv}/out.jsonl", "parts": ["a=5", "b=rest"]}},
        "data": {"command": "data synth", "args": {"n_train": "40", "n_test": "20", "seed": "3"}},
    }
    Path("r.yaml").write_text(yaml.safe_dump({"stages": stages}))
    assert main(["pipeline", "--recipe", "r.yaml", "--output_dir", "run"]) == 0
    assert len(rows_of("run/parts/a.jsonl")) == 5 and len(rows_of("run/data/train.jsonl")) == 40


def test_every_stage_is_checked_before_the_first_one_runs(capsys, tmp_path):
    stages = {
        "data": {"command": "data synth", "args": {"n_train": 40}},
        "later": {"command": "data synth", "args": {"n_train": "many"}},
    }
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": stages}))
    fails(
        capsys, ["pipeline", "--recipe", recipe, "--output_dir", tmp_path / "run"], 1, "stage 'later': invalid options"
    )
    assert not (tmp_path / "run" / "data").exists()


def test_study_test_seeds_never_overlap_the_validation_draws():
    """Learning rates are chosen on seeds 1000.. (validation draws): a test seed among them would
    judge a claim on the draw that tuned it."""
    from deltapref.study import StudyConfig

    with pytest.raises(ValueError, match="test seed.s. 1000 are validation draws"):
        StudyConfig(first_seed=998, seeds="5")
    with pytest.raises(ValueError, match="1001"):
        StudyConfig(seeds="3,1001", validation_draws=2)
    assert StudyConfig(first_seed=10, seeds="5").seed_list() == [10, 11, 12, 13, 14]


def test_the_demo_recipe_names_the_generation_backend_only_when_not_the_default():
    """Recipes written before the option keep their stage arguments (and so their cached results)."""
    from deltapref.recipes.demo import demo_recipe

    default, vllm = demo_recipe(quick=True), demo_recipe(quick=True, generation_backend="vllm")
    generation = [name for name in default["stages"] if name.startswith("gen-")]
    assert generation and all("backend" not in default["stages"][name]["args"] for name in generation)
    assert all(vllm["stages"][name]["args"]["backend"] == "vllm" for name in generation)


def test_a_recipe_stage_name_cannot_leave_the_output_dir(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  ../escape: {command: data synth}\n")
    fails(capsys, ["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")], 1, "not a plain name")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("stages: {a: {command: data synth}\n", r"not a plain YAML document \(line \d+, column \d+"),
        ("stages: [data synth]\n", "a recipe needs a 'stages' mapping"),
        ("stages: {a: {args: {seed: 1}}}\n", "stage 'a' needs a 'command'"),
        ("stages: {a: {command: data synth, args: [1]}}\n", "'args' must be a mapping"),
        ("stages: {a: {command: data synth, arg: {seed: 1}}}\n", "stage 'a' has unknown key.s. arg"),
        ("stages: {a: !!python/object:os.system {command: x}}\n", "not a plain YAML document.*python/object"),
        (BOMB + "stages: {a: {command: data synth, args: {seed: *i}}}\n", "aliases expand to more than 100000"),
    ],
)
def test_bad_recipes_are_one_line(capsys, tmp_path, text, pattern):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    started = time.time()
    fails(capsys, ["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")], 1, pattern)
    assert time.time() - started < 10 and not (tmp_path / "run").exists()
