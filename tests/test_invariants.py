"""The reliability invariants, one test per probed case (issue 39's cases 1-11 and the tracebacks
that must be one line; the HTTP judge's cases 12-14 are in ``test_judge_http.py``, the TRL
bridge's weights in ``test_trl_bridge.py``): ownership of outputs, a cache keyed on content,
checkpoints that are complete or not resumable, resumes that keep the objective, one preflight
per model directory, typed options at both doors, one line at every reader of user input."""

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import deltapref
from deltapref.cli import main
from deltapref.errors import DeltaprefError

ALIGN = ["--max_length", "96", "--max_prompt_length", "24", "--disable_tqdm", "true", "--learning_rate", "1e-3"]


def fails(capsys, argv, code, pattern):
    """Run the CLI in-process; assert its exit code and one error line matching ``pattern``."""
    import re

    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def rows_of(path):
    return [json.loads(line) for line in open(path)]


def write_rows(path, rows):
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cli(*argv, limit_bytes=None, check=True):
    """Run ``deltapref`` in its own process (optionally under a file-size limit)."""

    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    result = subprocess.run(
        [sys.executable, "-m", "deltapref.cli", *map(str, argv)], capture_output=True, text=True, preexec_fn=limit
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def policy(scored_task, tmp_path_factory):
    """A small SFT policy of its own (tests may try to overwrite it)."""
    out = tmp_path_factory.mktemp("policy") / "sft"
    argv = ["sft", "--model", "tiny:32:1", "--tokenizer", str(Path(scored_task["sft"])), "--max_steps", "2"]
    assert main(argv + ["--train_data", scored_task["test"], "--output_dir", str(out), *ALIGN]) == 0
    return out


# ------------------------------------------------------------------ ownership (cases 1, 3, 4)


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


def test_training_never_writes_over_its_own_model(capsys, scored_task, policy):
    before = snapshot(policy)
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", policy, "--max_steps", "2"]
    fails(capsys, argv + ALIGN, 1, "is one of this run.s inputs; a command never writes over what it reads")
    fails(capsys, argv + ALIGN + ["--overwrite_output_dir", "true"], 1, "one of this run.s inputs")
    assert snapshot(policy) == before


def test_generate_refuses_another_commands_product(capsys, scored_task, policy, tmp_path):
    scored = Path(scored_task["data"])
    before = scored.read_bytes()
    argv = ["generate", "--model", policy, "--input", scored_task["test"], "--limit", "2", "--output", scored]
    fails(capsys, argv, 1, "was written by `deltapref score`, not by `deltapref generate`")
    assert scored.read_bytes() == before
    out = tmp_path / "completions.jsonl"
    argv[-1] = out
    assert main([str(a) for a in argv]) == 0 and main([str(a) for a in argv]) == 0  # its own: replaced


def test_score_never_writes_over_its_input(capsys, scored_task, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_bytes(Path(scored_task["test"]).read_bytes())
    argv = ["score", "--input", data, "--output", data, "--reward_model", scored_task["root"] / "reward"]
    fails(capsys, argv + ["--overwrite", "true"], 1, "one of this run.s inputs")


# ------------------------------------------------------------------ the cache keys on content (case 5)


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


# ------------------------------------------------------------------ checkpoints and resume (cases 2, 8)


@pytest.fixture(scope="module")
def checkpointed(scored_task, policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", out]
    argv += ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2", *ALIGN]
    cli(*argv)
    return out, argv


def test_a_failed_checkpoint_save_keeps_the_complete_one_and_leaves_nothing_resumable(checkpointed):
    out, argv = checkpointed
    before = snapshot(out / "checkpoint-4")
    optimizer = (out / "checkpoint-4" / "optimizer.pt").stat().st_size
    resumed = cli(*argv, "--resume_from_checkpoint", out / "checkpoint-2", limit_bytes=optimizer // 2, check=False)
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    assert "saving" in resumed.stderr and "failed" in resumed.stderr
    assert snapshot(out / "checkpoint-4") == before  # the complete checkpoint it tried to replace is intact
    assert not list(out.glob(".checkpoint-*"))
    partial = out / "checkpoint-partial"
    partial.mkdir()
    for name in ("trainer_state.json", "config.json"):
        (partial / name).write_bytes((out / "checkpoint-4" / name).read_bytes())
    refused = cli(*argv, "--resume_from_checkpoint", partial, check=False)
    assert refused.returncode == 2 and "not a complete checkpoint" in refused.stderr


def test_a_truncated_checkpoint_file_is_not_resumable(capsys, checkpointed, tmp_path):
    out, argv = checkpointed
    damaged = tmp_path / "checkpoint-4"
    damaged.mkdir()
    for file in (out / "checkpoint-4").iterdir():
        (damaged / file.name).write_bytes(file.read_bytes())
    optimizer = damaged / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    fails(capsys, argv + ["--resume_from_checkpoint", damaged], 2, "optimizer.pt has 100 bytes, its save wrote")


def test_resume_refuses_options_that_change_the_objective(capsys, checkpointed):
    out, argv = checkpointed
    changed = argv + ["--resume_from_checkpoint", out / "checkpoint-2", "--loss", "ipo", "--beta", "0.5"]
    line = fails(capsys, changed, 1, "differs from the one that saved it")
    assert "--loss 'dpo' -> 'ipo'" in line and "--beta 0.1 -> 0.5" in line
    assert snapshot(out / "checkpoint-2")


def test_a_failed_final_save_keeps_the_earlier_model(scored_task, policy, tmp_path):
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", tmp_path / "p"]
    argv += ["--max_steps", "2", *ALIGN]
    cli(*argv)
    before = (tmp_path / "p" / "model.safetensors").read_bytes()
    result = cli(*argv, "--seed", "1", limit_bytes=len(before) // 2, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "saving the final model" in result.stderr
    assert (tmp_path / "p" / "model.safetensors").read_bytes() == before
    assert not list((tmp_path / "p").glob(".saving-*"))


# ------------------------------------------------------------------ the scores users have (cases 6, 7)


def test_rrhf_weights_come_from_the_pairs_own_scores(capsys, scored_task, policy, tmp_path):
    rows = rows_of(scored_task["test"])
    scored = [dict(r, chosen_score=float(5 + i % 3), rejected_score=float(i % 4)) for i, r in enumerate(rows)]
    data = write_rows(tmp_path / "uf.jsonl", scored)
    argv = ["align", "--loss", "rrhf", "--coef", "scores", "--model", policy, "--max_steps", "2", "--logging_steps"]
    argv += ["1", *ALIGN]
    assert main([str(a) for a in argv + ["--train_data", data, "--output_dir", tmp_path / "a"]]) == 0
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    means = [entry["weights/mean"] for entry in summary["log_history"] if "weights/mean" in entry]
    assert means and all(abs(m - 0.7311) > 0.05 for m in means)  # not the constant sigma(1 - 0)
    unscored = write_rows(tmp_path / "plain.jsonl", rows)
    fails(capsys, argv + ["--train_data", unscored, "--output_dir", tmp_path / "b"], 1, "carry no scores")


def test_rrhf_with_every_score_tied_warns_and_writes_no_nan(scored_task, policy, tmp_path, caplog):
    rows = [dict(r, scores=[1.0] * len(r["scores"])) for r in rows_of(scored_task["ranked"])[:64]]
    data = write_rows(tmp_path / "tied.jsonl", rows)
    argv = ["align", "--loss", "rrhf", "--coef", "scores", "--model", policy, "--train_data", data]
    assert main([str(a) for a in argv + ["--output_dir", tmp_path / "a", "--max_steps", "2", *ALIGN]]) == 0
    assert "every list's scores tie" in caplog.text
    text = (tmp_path / "a" / "train_summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text


# ------------------------------------------------------------------ typed options at both doors (case 9)


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


# ------------------------------------------------------------------ recipes (case 11)


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


# ------------------------------------------------------------------ one line at every reader (15-35)


@pytest.mark.parametrize(
    "key, values, pattern",
    [
        ("id", {4: 7}, "row 4, field 'id': cannot be stored as a table column"),
        ("extra", {1: 1, 3: [1, 2]}, "row 3, field 'extra': cannot be stored"),
        ("prompt", {3: "hi \ud800 there"}, "row 3, field 'prompt': holds an unpaired surrogate"),
        ("id", {2: "x\ud800"}, "row 2, field 'id': cannot be stored.*surrogates"),
        ("confidence", {2: 10**400}, "row 2, field 'confidence': is too large"),
        ("id", {2: 10**30}, "row 2, field 'id'"),
    ],
)
def test_rows_that_do_not_make_a_table_are_one_line(capsys, scored_task, tmp_path, key, values, pattern):
    rows = rows_of(scored_task["test"])[:5]
    for row, value in values.items():
        rows[row - 1][key] = value
    data = write_rows(tmp_path / "d.jsonl", rows)
    fails(capsys, ["data", "validate", "--input", data], 1, pattern)


def test_deep_nesting_is_one_line(capsys, scored_task, tmp_path):
    data = tmp_path / "deep.jsonl"
    data.write_text(Path(scored_task["test"]).read_text().splitlines()[0] + "\n" + "[" * 100_000 + "]" * 100_000)
    fails(capsys, ["data", "validate", "--input", data], 1, "row 2: is nested too deeply")


def _gpt2(tmp_path, name, tokenizer_dir, **config):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    values = {"n_embd": 32, "n_layer": 1, "n_head": 2, "vocab_size": len(tokenizer), "n_positions": 128, **config}
    values.update(bos_token_id=tokenizer.eos_token_id % values["vocab_size"], eos_token_id=None)
    GPT2LMHeadModel(GPT2Config(**values)).save_pretrained(tmp_path / name)
    tokenizer.save_pretrained(tmp_path / name)
    return tmp_path / name


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
    argv = ["sft", "--model", model, "--train_data", scored_task["test"], "--output_dir", tmp_path / "o", *ALIGN]
    fails(capsys, argv + ["--max_steps", "1"], 1, pattern)
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "targets, code, pattern",
    [("nosuch_proj", 1, "--lora_target_modules nosuch_proj: no such module in this model"), ("", 2, "must name")],
)
def test_lora_targets_must_exist(capsys, scored_task, policy, tmp_path, targets, code, pattern):
    argv = ["sft", "--model", policy, "--train_data", scored_task["test"], "--output_dir", tmp_path / "o", *ALIGN]
    fails(capsys, argv + ["--lora_r", "4", "--lora_target_modules", targets, "--max_steps", "1"], code, pattern)


def test_an_api_error_is_a_deltapref_error_or_value_error(scored_task, tmp_path):
    with pytest.raises(DeltaprefError, match="does not exist"):
        reward = scored_task["root"] / "reward"
        deltapref.score(input=tmp_path / "nope.jsonl", output=tmp_path / "s.jsonl", reward_model=reward)
    assert not os.path.exists(tmp_path / "s.jsonl")


# ------------------------------------------------------------------ weights recorded as asked (issue 40, 4)


def test_a_precomputed_weight_column_refuses_options_it_would_ignore(capsys, scored_task, policy, tmp_path):
    argv = ["align", "--coef", "coef", "--alpha", "0.5", "--model", policy, "--train_data", scored_task["data"]]
    fails(capsys, argv + ["--output_dir", tmp_path / "a", *ALIGN], 2, "--coef coef is a column of precomputed weights")


def test_normalized_weights_are_recorded_as_the_source_asked(scored_task, policy, tmp_path):
    argv = ["align", "--coef", "difference", "--alpha", "0.5", "--coef_normalize", "true", "--model", policy]
    argv += ["--train_data", scored_task["data"], "--output_dir", tmp_path / "a", "--max_steps", "2", *ALIGN]
    assert main([str(a) for a in argv]) == 0
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["options"]["coef"] == "difference" and summary["options"]["alpha"] == 0.5
    assert summary["weights_mean_before_normalization"] > 0
    assert "+rc(difference)" in (tmp_path / "a" / "README.md").read_text()


# ------------------------------------------------------------------ every command's output, evaluate's too


def test_evaluate_writes_only_what_it_may(capsys, scored_task, tmp_path):
    completions = tmp_path / "c.jsonl"
    rows = [
        {"id": i, "prompt": r["prompt"], "completion": r["chosen"]} for i, r in enumerate(rows_of(scored_task["test"]))
    ]
    write_rows(completions, rows[:8])
    mine = tmp_path / "mine.json"
    mine.write_text("my results")
    argv = ["evaluate", "policy", "--completions", completions, "--output"]
    fails(capsys, argv + [mine], 1, "exists and deltapref did not write it")
    assert mine.read_text() == "my results"
    fails(capsys, argv + [completions], 1, "one of this run.s inputs")
    assert main([str(a) for a in argv + [tmp_path / "r.json"]]) == 0
    assert main([str(a) for a in argv + [tmp_path / "r.json"]]) == 0  # its own result: replaced
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 8


def test_a_partition_never_writes_over_its_input(capsys, scored_task, tmp_path):
    task = tmp_path / "task"
    task.mkdir()
    data = task / "train.jsonl"
    data.write_bytes(Path(scored_task["test"]).read_bytes())
    argv = ["data", "partition", "--input", data, "--output_dir", task, "--parts", "train=10,test=rest"]
    fails(capsys, argv + ["--overwrite", "true"], 1, "holds .*train.jsonl, an input of this run")
    assert data.read_bytes() == Path(scored_task["test"]).read_bytes()


def test_a_run_killed_outright_leaves_nothing_that_blocks_the_rerun(scored_task, tmp_path):
    """A process aborted where nothing can catch it (e.g. the tokenizer under ``ulimit -v``) leaves
    its lock file and an empty marked directory: the lock is an flock, released by the kernel,
    and the directory is the command's own, so the rerun goes through."""
    out = tmp_path / "o"
    out.mkdir()
    (out / ".deltapref").write_text(json.dumps({"made_by": "sft"}))
    (tmp_path / ".o.lock").write_text("")
    argv = ["sft", "--model", "tiny:32:1", "--tokenizer", scored_task["sft"], "--train_data", scored_task["test"]]
    assert main([str(a) for a in argv + ["--output_dir", out, "--max_steps", "2", *ALIGN]]) == 0
    assert (out / "model.safetensors").exists() and not (tmp_path / ".o.lock").exists()


@pytest.mark.parametrize(
    "weights, pattern", [({3: -0.5}, "row 3, field 'w': is -0.5: a weight must be >= 0"), ({}, "every weight")]
)
def test_precomputed_weights_that_would_train_wrong_are_refused(
    capsys, scored_task, policy, tmp_path, weights, pattern
):
    rows = [
        dict(r, w=weights.get(i, 0.0 if not weights else 1.0)) for i, r in enumerate(rows_of(scored_task["data"]), 1)
    ]
    data = write_rows(tmp_path / "w.jsonl", rows)
    argv = ["align", "--coef", "w", "--model", policy, "--train_data", data, "--output_dir", tmp_path / "a", *ALIGN]
    fails(capsys, argv, 1, pattern)


def test_prompts_and_completions_that_cannot_be_used_are_one_line(capsys, policy, tmp_path):
    prompts = write_rows(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": 5}])
    argv = ["generate", "--model", policy, "--input", prompts, "--output", tmp_path / "g.jsonl"]
    fails(capsys, argv, 1, "p.jsonl, row 2, field 'prompt': must be a string or a list of chat messages, got int")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    fails(capsys, ["evaluate", "compare", "--a", empty, "--b", empty], 1, "e.jsonl: holds no completions")


# ------------------------------------------------------------------ one path from options to a run (issue 40, 2)


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


def test_pair_objectives_refuse_ranked_lists_and_force_names_real_stages(capsys, scored_task, policy, tmp_path):
    argv = ["sft", "--model", policy, "--train_data", scored_task["ranked"], "--output_dir", tmp_path / "s", *ALIGN]
    fails(capsys, argv, 1, "holds ranked lists .prompt, responses, scores.; sft trains on pairs")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": {"d": {"command": "data synth", "args": {"n_train": 30}}}}))
    argv = ["pipeline", "--recipe", recipe, "--output_dir", tmp_path / "run", "--force", "nosuch"]
    fails(capsys, argv, 1, "--force nosuch: no such stage")


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


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--fsdp_config", '{"fsdp_version": 1}'], "FSDP2 only"),
        (["--fsdp_config", '{"fsdp_version": 2}', "--lora_r", "4"], "LoRA under --fsdp"),
    ],
)
def test_fsdp_that_cannot_shard_here_is_refused(builtin_task, tmp_path, capsys, extra, says):
    """FSDP runs on CPUs as FSDP2 (tests/test_sharding.py); FSDP version 1 on a CPU and LoRA under
    FSDP (its merge into sharded weights) are refused in one line, before any output is made."""
    from deltapref.cli import main

    argv = ["align", "--model", "tiny:32:1", "--tokenizer", str(builtin_task / "tokenizer")]
    argv += ["--train_data", str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path / "p")]
    assert main(argv + ["--fsdp", "full_shard", *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert says in err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_study_test_seeds_never_overlap_the_validation_draws():
    """Learning rates are chosen on seeds 1000.. (validation draws): a test seed among them would
    judge a claim on the draw that tuned it."""
    from deltapref.study import StudyConfig

    with pytest.raises(ValueError, match="test seed.s. 1000 are validation draws"):
        StudyConfig(first_seed=998, seeds="5")
    with pytest.raises(ValueError, match="1001"):
        StudyConfig(seeds="3,1001", validation_draws=2)
    assert StudyConfig(first_seed=10, seeds="5").seed_list() == [10, 11, 12, 13, 14]


def test_generate_on_vllm_without_vllm_is_one_line_and_writes_nothing(policy, builtin_task, tmp_path, capsys):
    """``--backend vllm`` where vLLM does not import (this test environment: tests/test_vllm.py runs
    in scripts/vllm_check.sh's) names the extra to install; no output file is made."""
    if importlib.util.find_spec("vllm"):
        pytest.skip("vLLM is installed here: tests/test_vllm.py covers the backend")
    out = tmp_path / "completions.jsonl"
    argv = ["generate", "--model", str(policy), "--input", str(builtin_task / "test.jsonl"), "--output", str(out)]
    assert main(argv + ["--backend", "vllm", "--limit", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--backend vllm needs vLLM" in err and "deltapref[vllm]" in err
    assert not out.exists()


def test_the_demo_recipe_names_the_generation_backend_only_when_not_the_default():
    """Recipes written before the option keep their stage arguments (and so their cached results)."""
    from deltapref.recipes.demo import demo_recipe

    default, vllm = demo_recipe(quick=True), demo_recipe(quick=True, generation_backend="vllm")
    generation = [name for name in default["stages"] if name.startswith("gen-")]
    assert generation and all("backend" not in default["stages"][name]["args"] for name in generation)
    assert all(vllm["stages"][name]["args"]["backend"] == "vllm" for name in generation)
