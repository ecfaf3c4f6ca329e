"""A folder across runs: a rerun resumes the same run or replaces the earlier one whole (never
mixing them), locks are taken before ownership is decided, a pipeline holds its folder, and
what a command writes is deltapref's only when its record describes it (issue 51's cases).

Guards: training/run_folder.py, artifacts/outputs.py, artifacts/records.py,
artifacts/fingerprint.py, training/checkpoints.py, recipes/pipeline.py, scorers/run.py,
data/writing.py."""

import dataclasses
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from deltapref.artifacts.outputs import exclusive
from deltapref.artifacts.records import read_marker
from deltapref.cli import main
from helpers import FAST_LR, fails, snapshot, write_rows


def align_argv(scored_task, out, *extra):
    data = scored_task["data"]
    argv = ["align", "--model", scored_task["sft"], "--train_data", data, "--output_dir", out, *FAST_LR, *extra]
    return [str(a) for a in argv]


CHECKPOINTING = ["--max_steps", "3", "--save_strategy", "steps", "--save_steps", "1", "--per_device_train_batch_size"]
CHECKPOINTING += ["8"]


def interrupted_after(out: Path, step: int) -> None:
    """Leave ``out`` as a run killed right after saving ``checkpoint-<step>`` leaves it."""
    for checkpoint in out.glob("checkpoint-*"):
        if int(checkpoint.name.split("-")[1]) > step:
            for file in sorted(checkpoint.rglob("*"), reverse=True):
                file.unlink() if file.is_file() else file.rmdir()
            checkpoint.rmdir()
    for name in ("model.safetensors", "train_summary.json"):
        (out / name).unlink()
    marker = read_marker(out)
    (out / ".deltapref").write_text(json.dumps(dict(marker, state="running")))


# ------------------------------------------------------------------ a rerun resumes (data loss 1)


def test_rerunning_an_interrupted_command_resumes_from_its_last_checkpoint(scored_task, tmp_path, capsys):
    out = tmp_path / "run"
    argv = align_argv(scored_task, out, *CHECKPOINTING)
    assert main(argv) == 0
    interrupted_after(out, 2)
    kept = snapshot(out / "checkpoint-1")
    assert main(argv) == 0  # the same command, as the interrupted message says
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 3
    assert snapshot(out / "checkpoint-1") == kept and read_marker(out)["state"] == "complete"


def test_a_rerun_with_other_options_is_refused_naming_them_until_told_to_start_over(scored_task, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(align_argv(scored_task, out, *CHECKPOINTING)) == 0
    interrupted_after(out, 2)
    before = snapshot(out)
    line = fails(capsys, align_argv(scored_task, out, *CHECKPOINTING, "--beta", "0.5"), 1, "interrupted")
    assert "--beta 0.1 -> 0.5" in line and "--overwrite_output_dir" in line
    assert snapshot(out) == before
    assert main(align_argv(scored_task, out, *CHECKPOINTING, "--beta", "0.5", "--overwrite_output_dir", "true")) == 0
    assert json.loads((out / "train_summary.json").read_text())["resumed_from_step"] is None


def test_an_interrupted_run_without_a_checkpoint_leaves_the_earlier_run_in_place(scored_task, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(align_argv(scored_task, out, "--max_steps", "2")) == 0
    before = snapshot(out)
    from deltapref.policy import run

    def interrupted(*args, **kwargs):
        (out / "partial.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_train", interrupted)
    assert main(align_argv(scored_task, out, "--max_steps", "2", "--seed", "3")) == 130
    assert snapshot(out) == before  # the new run's leftovers gone, the earlier run whole


# ------------------------------------------------------------------ a reused folder never mixes two runs


def test_a_scorer_trained_into_a_former_cross_fit_folder_leaves_no_fold_behind(builtin_task, tmp_path):
    from deltapref.models.loading import scorer_members

    out = tmp_path / "scorer"
    base = ["train-scorer", "--model", "tiny:16:1", "--tokenizer", str(builtin_task / "tokenizer"), "--max_steps", "2"]
    base += ["--train_data", str(builtin_task / "train.jsonl"), "--output_dir", str(out), *FAST_LR]
    assert main(base + ["--cross_fit", "2"]) == 0
    assert len(scorer_members(str(out))) == 2
    assert main(base) == 0
    assert scorer_members(str(out)) == [str(out)]
    assert not list(out.glob("fold-*")) and not (out / "cross_fit.json").exists()


def test_an_unmerged_lora_run_into_a_merged_models_folder_leaves_no_old_weights(scored_task, tmp_path):
    out = tmp_path / "lora"
    lora = ["--lora_r", "4", "--lora_target_modules", "q_proj,v_proj", "--max_steps", "2"]
    assert main(align_argv(scored_task, out, *lora)) == 0
    assert (out / "model.safetensors").exists()
    assert main(align_argv(scored_task, out, *lora, "--merge_lora", "false")) == 0
    assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists()


def test_a_cross_fit_interrupted_after_its_first_fold_keeps_it(builtin_task, tmp_path, monkeypatch):
    from deltapref.scorers import run as scorer_run

    out = tmp_path / "scorer"
    argv = ["train-scorer", "--model", "tiny:16:1", "--tokenizer", str(builtin_task / "tokenizer"), "--max_steps", "2"]
    argv += [
        "--train_data",
        str(builtin_task / "train.jsonl"),
        "--output_dir",
        str(out),
        "--cross_fit",
        "2",
        *FAST_LR,
    ]
    real, trained = scorer_run._train_one, []

    def second_fold_interrupted(config, objective, args, identity):
        if trained:
            raise KeyboardInterrupt
        trained.append(args.output_dir)
        return real(config, objective, args, identity)

    monkeypatch.setattr(scorer_run, "_train_one", second_fold_interrupted)
    assert main(argv) == 130
    first = snapshot(out / "fold-0")
    monkeypatch.setattr(scorer_run, "_train_one", real)
    assert main(argv) == 0
    assert snapshot(out / "fold-0") == first  # kept, not retrained
    assert (out / "cross_fit.json").exists() and read_marker(out)["state"] == "complete"


# ------------------------------------------------------------------ locks, pipelines and users' folders


def partition_recipe(seed=0):
    parts = {"input": "{data}/train.jsonl", "seed": seed, "parts": "a=20,b=rest"}
    return {
        "stages": {
            "data": {"command": "data synth", "args": {"n_train": 40, "n_test": 5}},
            "split": {"command": "data partition", "args": parts},
        }
    }


def test_a_second_pipeline_on_a_running_ones_folder_is_refused_and_deletes_nothing(tmp_path):
    from deltapref.errors import OutputError
    from deltapref.recipes.pipeline import run_pipeline

    run = tmp_path / "run"
    run_pipeline(partition_recipe(0), run)
    before = snapshot(run)
    with exclusive(run), pytest.raises(OutputError, match="being written by another deltapref run"):
        run_pipeline(partition_recipe(1), run)
    with exclusive(run / "split"), pytest.raises(OutputError, match="being written by another"):
        run_pipeline(partition_recipe(1), run)  # clearing a stage takes the stage's lock
    assert snapshot(run) == before


def test_a_users_folder_where_a_stage_would_write_is_refused_untouched(tmp_path):
    from deltapref.recipes.pipeline import PipelineError, run_pipeline

    run = tmp_path / "run"
    run_pipeline({"stages": {"data": partition_recipe()["stages"]["data"]}}, run)
    (run / "split").mkdir()
    (run / "split" / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="deltapref did not make it"):
        run_pipeline(partition_recipe(), run)
    assert (run / "split" / "notes.txt").read_text() == "mine"
    here = {"stages": {"gen": {"command": "data convert", "args": {"input": "x.jsonl", "output": "{here}"}}}}
    with pytest.raises(PipelineError, match="the stage's own folder"):
        run_pipeline(here, run)


def test_a_lock_held_on_a_new_output_refuses_a_second_command_before_it_claims(tmp_path, capsys):
    out = tmp_path / "task"
    with exclusive(out):
        fails(capsys, ["data", "synth", "--output_dir", out, "--n_train", "20"], 1, "being written by another")
    assert not out.exists()


def test_a_recipe_output_dir_under_home_is_expanded(tmp_path, monkeypatch):
    from deltapref.recipes.pipeline import run_pipeline

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    run_pipeline({"stages": {"data": partition_recipe()["stages"]["data"]}}, "~/runs/x")
    assert (tmp_path / "runs" / "x" / "data" / "train.jsonl").exists() and not (tmp_path / "~").exists()


# ------------------------------------------------------------------ what is deltapref's to replace


def test_a_sidecar_that_does_not_describe_the_file_makes_nothing_deltaprefs(fixtures, tmp_path, capsys):
    made = tmp_path / "made.jsonl"
    assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(made)]) == 0
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"note": "mine"}\n')
    (tmp_path / "mine.jsonl.deltapref.json").write_text((tmp_path / "made.jsonl.deltapref.json").read_text())
    argv = ["data", "convert", "--input", fixtures / "hh.jsonl", "--output", mine]
    fails(capsys, argv, 1, "deltapref did not write it")
    assert mine.read_text() == '{"note": "mine"}\n'
    assert main([str(a) for a in argv[:-1]] + [str(made)]) == 0  # its own output: replaced
    fails(capsys, argv[:-1] + [tmp_path / "x.deltapref.json"], 1, "provenance record")


def test_a_coefficient_column_never_replaces_a_column_the_run_or_the_data_keeps(scored_task, tmp_path, capsys):
    base = ["score", "--input", scored_task["test"], "--output", tmp_path / "s.jsonl"]
    base += ["--reward_model", scored_task["root"] / "reward"]
    fails(capsys, base + ["--coef_column", "reward_chosen"], 2, "would write over")
    fails(capsys, base + ["--coef_column", "chosen", "--overwrite", "true"], 2, "would write over")


def test_parts_keep_the_provenance_of_the_whole(scored_task, tmp_path):
    from deltapref.models.provenance import read_meta

    for command in (["data", "partition", "--parts", "a=50,b=rest"], ["data", "split"]):
        out = tmp_path / command[1]
        assert main([*command, "--input", scored_task["data"], "--output_dir", str(out)]) == 0
        whole = read_meta(scored_task["data"])["columns"]
        for part in out.glob("*.jsonl"):
            assert read_meta(part)["columns"] == whole and whole


def test_a_repartition_leaves_no_part_of_the_earlier_one(fixtures, builtin_task, tmp_path):
    out = tmp_path / "parts"
    data = str(builtin_task / "train.jsonl")
    assert main(["data", "partition", "--input", data, "--output_dir", str(out), "--parts", "a=5,b=rest"]) == 0
    assert main(["data", "partition", "--input", data, "--output_dir", str(out), "--parts", "c=5,d=rest"]) == 0
    assert sorted(p.name for p in out.glob("*.jsonl")) == ["c.jsonl", "d.jsonl"]


@dataclasses.dataclass
class Scored:
    input: str


def test_an_edit_keeping_size_and_mtime_changes_the_scoring_fingerprint(tmp_path):
    from deltapref.scorers.scoring import _fingerprint

    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n')
    stat = path.stat()
    before = _fingerprint(Scored(str(path)), 1, {})
    path.write_text('{"a": 2}\n')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _fingerprint(Scored(str(path)), 1, {}) != before


def test_the_pipeline_cache_hashes_a_path_with_a_comma(tmp_path):
    from deltapref.artifacts.fingerprint import read_paths

    path = tmp_path / "a,b.jsonl"
    path.write_text("{}\n")
    assert read_paths({"input": str(path)}, tmp_path / "run") == [path]


# ------------------------------------------------------------------ compare, generate, data shapes


def test_compare_refuses_two_sets_that_answer_different_prompts_and_repeated_judges(tmp_path, capsys):
    a = write_rows(tmp_path / "a.jsonl", [{"prompt": f"p{i}", "completion": "x"} for i in range(3)])
    b = write_rows(tmp_path / "b.jsonl", [{"prompt": f"q{i}", "completion": "y"} for i in range(3)])
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", b], 1, "different prompts at row 1")
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", a, "--judges", "gold,gold"], 2, "distinct judges")


def test_generate_on_an_input_without_prompts_is_one_line(scored_task, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    argv = ["generate", "--model", scored_task["sft"], "--input", empty, "--output", tmp_path / "g.jsonl"]
    fails(capsys, argv, 1, "holds no prompts")
    assert not (tmp_path / "g.jsonl").exists()


@pytest.mark.parametrize(
    ("output", "code", "pattern"),
    [("x.csv", 2, "deltapref writes"), ("x.json.gz", 2, "deltapref writes"), ("/", 1, "file-system root")],
)
def test_an_output_deltapref_cannot_write_is_refused_before_any_work(fixtures, tmp_path, capsys, output, code, pattern):
    target = output if output == "/" else tmp_path / output
    fails(capsys, ["data", "convert", "--input", fixtures / "hh.jsonl", "--output", target], code, pattern)


def test_an_upper_case_gz_suffix_is_written_compressed_and_read_back(fixtures, tmp_path):
    from deltapref.data.loading import load_preferences

    out = tmp_path / "x.jsonl.GZ"
    assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)]) == 0
    assert gzip.decompress(out.read_bytes())
    assert len(load_preferences(str(out))[0]) == len(load_preferences(str(fixtures / "hh.jsonl"))[0])


def test_repeated_keys_a_zero_limit_and_float_choices(tmp_path):
    from deltapref.data.loading import load_preferences
    from deltapref.data.schema import DataError

    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"prompt": "p", "chosen": "a", "chosen": "b", "rejected": "c"}\n')
    with pytest.raises(DataError, match="row 1.*repeats the key"):
        load_preferences(str(twice))
    pairs = write_rows(tmp_path / "p.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(ValueError, match="limit must be a count >= 1"):
        load_preferences(str(pairs), limit=0)  # not one row, as it used to return
    assert len(load_preferences(str(pairs), limit=1)[0]) == 1
    tldr = {"info": {"post": "a post", "title": "t", "subreddit": "s"}, "choice": 1.0}
    tldr["summaries"] = [{"text": "first"}, {"text": "second"}]
    assert load_preferences(str(write_rows(tmp_path / "t.jsonl", [tldr])))[0][0]["chosen"] == "second"


def test_ranked_lists_given_to_split_are_one_line(builtin_task, tmp_path, capsys):
    argv = ["data", "split", "--input", builtin_task / "ranked_train.jsonl", "--output_dir", tmp_path / "s"]
    fails(capsys, argv, 1, "ranked lists")


def test_broken_manifests_are_one_line(scored_task, tmp_path, capsys):
    import shutil

    folded = tmp_path / "folded"
    shutil.copytree(scored_task["root"] / "reward", folded)
    (folded / "cross_fit.json").write_text("{not json")
    base = ["score", "--input", scored_task["test"], "--output", tmp_path / "s.jsonl"]
    fails(capsys, base + ["--reward_model", folded], 1, "cross_fit.json manifest is unreadable")
    (folded / "cross_fit.json").write_text(json.dumps({"members": ["../elsewhere"]}))
    fails(capsys, base + ["--reward_model", folded], 1, "not a plain name")
    fails(capsys, base + ["--ensemble", ","], 1, "names no reward model")
    data = tmp_path / "d.jsonl"
    data.write_text(Path(scored_task["test"]).read_text())
    (tmp_path / "d.jsonl.deltapref.json").write_text("[1, 2")
    argv = [
        "score",
        "--input",
        data,
        "--output",
        tmp_path / "t.jsonl",
        "--reward_model",
        scored_task["root"] / "reward",
    ]
    fails(capsys, argv, 1, "provenance sidecar is unreadable")
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("spec", ["tiny:abc", "tiny:32:0", "tiny:33:1", "tiny:32:1:5"])
def test_a_malformed_tiny_spec_is_one_line(builtin_task, tmp_path, capsys, spec):
    argv = ["sft", "--model", spec, "--tokenizer", builtin_task / "tokenizer", "--train_data", "x.jsonl"]
    fails(capsys, argv + ["--output_dir", tmp_path / "o"], 2, "a tiny model is tiny or tiny:HIDDEN:LAYERS")


# ------------------------------------------------------------------ the environment a command reads


def test_environment_variables_are_checked(fixtures, monkeypatch, capsys):
    monkeypatch.setenv("DELTAPREF_LOG_LEVEL", "debug")
    assert main(["data", "validate", "--input", str(fixtures / "hh.jsonl")]) == 0
    monkeypatch.setenv("DELTAPREF_LOG_LEVEL", "loud")
    assert main(["data", "validate", "--input", str(fixtures / "hh.jsonl")]) == 2
    assert "DELTAPREF_LOG_LEVEL must be one of" in capsys.readouterr().err


def test_leftover_launch_variables_fail_fast_naming_them(monkeypatch):
    from deltapref.errors import OptionError
    from deltapref.training import distributed

    monkeypatch.setattr(distributed, "FORM_SECONDS", 2)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29571"}.items():
        monkeypatch.setenv(name, value)
    started = time.time()
    with pytest.raises(OptionError, match="did not meet within 2 s.*WORLD_SIZE=2"):
        distributed.init_if_launched()
    assert time.time() - started < 30
    monkeypatch.setenv("WORLD_SIZE", "abc")
    with pytest.raises(OptionError, match="WORLD_SIZE='abc' is not a process count"):
        distributed.init_if_launched()


def test_split_edit_distance_stays_fast_on_long_responses():
    from deltapref.data.splits import normalized_edit_distance

    words = [f"w{i}" for i in range(3000)]
    started = time.time()
    assert normalized_edit_distance(words, list(reversed(words))) > 0.9
    assert time.time() - started < 2.0


# ------------------------------------------------------------------ more shapes a command refuses in one line


def test_ranked_lists_given_to_score_are_one_line(builtin_task, scored_task, tmp_path, capsys):
    argv = ["score", "--input", builtin_task / "ranked_train.jsonl", "--output", tmp_path / "s.jsonl"]
    fails(capsys, argv + ["--reward_model", scored_task["root"] / "reward"], 1, "ranked lists.*score takes pairs")


def test_weights_that_are_not_one_number_per_pair_are_refused(tmp_path):
    from deltapref.data.schema import DataError
    from deltapref.policy.data import check_weight_column

    with pytest.raises(DataError, match="row 2, field 'w': is list: a weight is one number per pair"):
        check_weight_column([0.5, [0.1, 0.2]], "w", "d.jsonl")


def test_a_null_completion_is_one_line(tmp_path, capsys):
    a = write_rows(tmp_path / "a.jsonl", [{"prompt": "p", "completion": None}])
    fails(capsys, ["evaluate", "policy", "--completions", a], 1, r"a\.jsonl, row 1, field 'completion'")


def test_chat_messages_read_by_an_external_scorer_only_through_its_chat_template():
    from deltapref.errors import OptionError
    from deltapref.scorer_kinds.external import encode

    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(OptionError, match="--external_input chat"):
        encode(None, messages, [{"role": "assistant", "content": "yo"}], "pair", "{prompt}{response}", 64)


def test_plan_on_a_config_with_a_size_as_text_is_one_line(tmp_path, capsys):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": "768"}))
    fails(capsys, ["plan", "--model", model], 1, "'hidden_size' must be a positive integer")


def test_the_trl_bridge_refuses_a_dataset_it_cannot_check_before_training():
    datasets = pytest.importorskip("datasets")
    from deltapref.data.schema import DataError
    from deltapref.integrations.trl.weights import check_weights

    streamed = datasets.Dataset.from_list([{"coef": 1.0}]).to_iterable_dataset()
    with pytest.raises(DataError, match="IterableDataset: its weights cannot be checked"):
        check_weights(streamed, "coef")


def test_a_link_given_as_an_output_is_replaced_itself_never_what_it_points_to(fixtures, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    link = tmp_path / "task"
    link.symlink_to(elsewhere)
    argv = ["data", "synth", "--output_dir", str(link), "--n_train", "20", "--n_test", "5", "--overwrite", "true"]
    assert main(argv) == 0
    assert not link.is_symlink() and (link / "train.jsonl").exists()
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]


def test_options_the_issue_named_are_one_line(scored_task, tmp_path, capsys):
    base = align_argv(scored_task, tmp_path / "a", "--max_steps", "1")
    fails(capsys, base + ["--eval_strategy", "steps"], 2, "take no eval set during training")
    fails(capsys, base + ["--per_device_train_batch_size", "-1"], 2, "--per_device_train_batch_size must be between 1")
    fails(capsys, base + ["--seed", "-1"], 2, "--seed must be between 0")
    gen = ["generate", "--model", scored_task["sft"], "--input", scored_task["test"], "--output", tmp_path / "g.jsonl"]
    fails(capsys, gen + ["--stop", "\\x"], 2, "not a valid escape")


def test_a_full_disk_names_its_remedy(fixtures, tmp_path, capsys, monkeypatch):
    import errno

    from deltapref.data import writing

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writing, "write_jsonl", full)
    argv = ["data", "convert", "--input", fixtures / "hh.jsonl", "--output", tmp_path / "c.jsonl"]
    fails(capsys, argv, 1, "No space left on device .*free space, then rerun the same command")


def test_the_current_directory_as_an_output_is_one_line(fixtures, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(fixtures)
    fails(capsys, ["data", "convert", "--input", "hh.jsonl", "--output", "."], 1, "refusing to replace it")


def test_a_run_refused_before_training_leaves_nothing_that_blocks_other_options(capsys, scored_task, tmp_path):
    """A run that stops before its first checkpoint (here: refused for want of scores) left a
    "running" marker and nothing to resume: a run with other options takes the folder."""
    out = tmp_path / "run"
    fails(capsys, align_argv(scored_task, out, "--loss", "rdpo", "--epsilon", "auto"), 1, "--epsilon auto needs")
    assert main(align_argv(scored_task, out, "--loss", "dpo", "--max_steps", "1")) == 0
    assert read_marker(out)["state"] == "complete"
