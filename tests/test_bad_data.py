"""Data that cannot train as it is: non-finite and malformed values, corrupt files, rows that
do not make a table, duplicates, empty responses, weights and scores that would train wrong;
each skipped and counted on request or refused in one line naming the file, row and field.

Guards: data/loading.py, data/schema.py, data/tables.py, data/adapters.py, coefficients.py,
objectives/ranked.py, policy/generation.py."""

import gzip
import json
from pathlib import Path

import pytest
import yaml

from deltapref.cli import main
from helpers import FAST_LR, TWO_STEPS, fails, rows_of, with_column, write_rows


def test_nan_in_a_custom_coefficient_column_stops_before_training(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "weights", [1.0, 0.5, float("nan")] + [1.0] * 2000)
    argv = ["align", "--model", scored_task["sft"], "--train_data", data, "--coef", "weights", "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p")] + TWO_STEPS, 1, r"row 3, field 'weights': must be finite, got nan")
    assert not (tmp_path / "p" / "model.safetensors").exists()


def test_skip_bad_rows_skips_and_counts_a_nan_coefficient(scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "weights", [float("nan"), "abc"] + [0.5] * 2000)
    argv = [
        "align",
        "--model",
        scored_task["sft"],
        "--train_data",
        data,
        "--coef",
        "weights",
        "--skip_bad_rows",
        "true",
        "--output_dir",
        str(tmp_path / "p"),
    ]
    assert main(argv + TWO_STEPS) == 0
    summary = json.loads((tmp_path / "p" / "train_summary.json").read_text())
    assert summary["skipped_rows"] == 2 and summary["train_rows"] == len(rows_of(scored_task["data"])) - 2


def test_infinite_margin_and_nan_gold_reward_are_refused(capsys, scored_task, builtin_task, tmp_path):
    data = with_column(scored_task, tmp_path, "margin", [float("inf")] + [0.0] * 2000, source="test")
    argv = [
        "train-scorer",
        "--kind",
        "reward",
        "--model",
        "tiny:32:1",
        "--tokenizer",
        str(builtin_task / "tokenizer"),
        "--train_data",
        data,
        "--margin_column",
        "margin",
        "--output_dir",
        str(tmp_path / "rm"),
        "--max_steps",
        "1",
    ]
    fails(capsys, argv, 1, r"row 1, field 'margin': must be finite, got inf")
    data = with_column(scored_task, tmp_path, "gold_reward_chosen", [0.1, float("nan")], source="test")
    fails(capsys, ["data", "validate", "--input", data], 1, r"row 2, field 'gold_reward_chosen': must be finite")


def test_nan_in_an_ensemble_list_is_refused(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "ensemble_reward_chosen", [[0.1, float("nan")]], source="test")
    fails(capsys, ["data", "validate", "--input", data], 1, r"field 'ensemble_reward_chosen\[1\]': must be finite")


def test_missing_paths_say_both_local_and_hub(capsys, tmp_path):
    fails(
        capsys,
        ["data", "validate", "--input", str(tmp_path / "nope.jsonl")],
        1,
        "does not exist .not a local file or directory, nor a hub id",
    )
    fails(
        capsys,
        ["data", "validate", "--input", "someone/no-such-dataset"],
        1,
        "not a local file or directory, and as a hub dataset id it did not load",
    )


def test_corrupt_and_truncated_compressed_files(capsys, fixtures, tmp_path):
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(b"not gzip at all")
    fails(capsys, ["data", "validate", "--input", str(garbage)], 1, "cannot be read .BadGzipFile")
    whole = gzip.compress((fixtures / "hh.jsonl").read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    fails(capsys, ["data", "validate", "--input", str(cut)], 1, "cannot be read .EOFError")
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 nonsense")
    fails(capsys, ["data", "validate", "--input", str(parquet)], 1, "cannot be read as Parquet")


def test_malformed_values_are_skipped_and_counted_with_skip_bad_rows(capsys, scored_task, tmp_path):
    rows = rows_of(scored_task["test"])[:10]
    rows[2]["chosen"], rows[5]["diff"], rows[7]["confidence"] = 42, "high", None
    data = write_rows(tmp_path / "bad.jsonl", rows)
    fails(capsys, ["data", "validate", "--input", data], 1, r"row 3, field 'chosen': must be a string")
    assert main(["data", "validate", "--input", data, "--skip_bad_rows", "true"]) == 0
    assert "kept 8 rows, skipped 2" in capsys.readouterr().out


def test_duplicates_are_counted_and_dropped_on_request(capsys, fixtures, tmp_path):
    rows = rows_of(fixtures / "hh.jsonl")
    data = write_rows(tmp_path / "dup.jsonl", rows + rows[:2])
    assert main(["data", "validate", "--input", data]) == 0
    out = capsys.readouterr().out
    assert f"kept {len(rows) + 2} rows" in out and "2 repeated row(s) kept (--drop_duplicates drops them)" in out
    assert (
        main(["data", "convert", "--input", data, "--output", str(tmp_path / "o.jsonl"), "--drop_duplicates", "true"])
        == 0
    )
    assert "2 repeated row(s) dropped" in capsys.readouterr().out and len(rows_of(tmp_path / "o.jsonl")) == len(rows)


def test_rrhf_weights_come_from_the_pairs_own_scores(capsys, scored_task, policy, tmp_path):
    rows = rows_of(scored_task["test"])
    scored = [dict(r, chosen_score=float(5 + i % 3), rejected_score=float(i % 4)) for i, r in enumerate(rows)]
    data = write_rows(tmp_path / "uf.jsonl", scored)
    argv = ["align", "--loss", "rrhf", "--coef", "scores", "--model", policy, "--max_steps", "2", "--logging_steps"]
    argv += ["1", *FAST_LR]
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
    assert main([str(a) for a in argv + ["--output_dir", tmp_path / "a", "--max_steps", "2", *FAST_LR]]) == 0
    assert "every list's scores tie" in caplog.text
    text = (tmp_path / "a" / "train_summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text


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


def test_a_precomputed_weight_column_refuses_options_it_would_ignore(capsys, scored_task, policy, tmp_path):
    argv = ["align", "--coef", "coef", "--alpha", "0.5", "--model", policy, "--train_data", scored_task["data"]]
    fails(
        capsys,
        argv + ["--output_dir", tmp_path / "a", *FAST_LR],
        2,
        "--coef coef is a column of precomputed weights",
    )


def test_normalized_weights_are_recorded_as_the_source_asked(scored_task, policy, tmp_path):
    argv = ["align", "--coef", "difference", "--alpha", "0.5", "--coef_normalize", "true", "--model", policy]
    argv += ["--train_data", scored_task["data"], "--output_dir", tmp_path / "a", "--max_steps", "2", *FAST_LR]
    assert main([str(a) for a in argv]) == 0
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["options"]["coef"] == "difference" and summary["options"]["alpha"] == 0.5
    assert summary["weights_mean_before_normalization"] > 0
    assert "+rc(difference)" in (tmp_path / "a" / "README.md").read_text()


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
    argv = [
        "align",
        "--coef",
        "w",
        "--model",
        policy,
        "--train_data",
        data,
        "--output_dir",
        tmp_path / "a",
        *FAST_LR,
    ]
    fails(capsys, argv, 1, pattern)


def test_prompts_and_completions_that_cannot_be_used_are_one_line(capsys, policy, tmp_path):
    prompts = write_rows(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": 5}])
    argv = ["generate", "--model", policy, "--input", prompts, "--output", tmp_path / "g.jsonl"]
    fails(capsys, argv, 1, "p.jsonl, row 2, field 'prompt': must be a string or a list of chat messages, got int")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    fails(capsys, ["evaluate", "compare", "--a", empty, "--b", empty], 1, "e.jsonl: holds no completions")


def test_pair_objectives_refuse_ranked_lists_and_force_names_real_stages(capsys, scored_task, policy, tmp_path):
    argv = [
        "sft",
        "--model",
        policy,
        "--train_data",
        scored_task["ranked"],
        "--output_dir",
        tmp_path / "s",
        *FAST_LR,
    ]
    fails(capsys, argv, 1, "holds ranked lists .prompt, responses, scores.; sft trains on pairs")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": {"d": {"command": "data synth", "args": {"n_train": 30}}}}))
    argv = ["pipeline", "--recipe", recipe, "--output_dir", tmp_path / "run", "--force", "nosuch"]
    fails(capsys, argv, 1, "--force nosuch: no such stage")


def test_split_names_a_missing_confidence_field_and_the_columns_there(capsys, fixtures, tmp_path):
    argv = ["data", "split", "--input", str(fixtures / "hh.jsonl"), "--output_dir", str(tmp_path / "s")]
    line = fails(capsys, argv + ["--confidence_field", "nosuch"], 1, "hh.jsonl: rows .1, 2. have no numeric 'nosuch'")
    assert "columns here: chosen, prompt, rejected" in line


def test_train_scorer_checks_eval_data_before_training(capsys, scored_task, tmp_path):
    not_data = tmp_path / "dir"
    not_data.mkdir()
    (not_data / "x.txt").write_text("x")
    out = tmp_path / "rm"
    argv = ["train-scorer", "--kind", "reward", "--model", "tiny:32:1", "--tokenizer", scored_task["sft"]]
    argv += [
        "--train_data",
        scored_task["data"],
        "--eval_data",
        str(not_data),
        "--output_dir",
        str(out),
        *TWO_STEPS,
    ]
    fails(capsys, argv, 1, str(not_data))
    assert not (out / "model.safetensors").exists()


def test_no_valid_rows_names_the_reason_and_the_first_row(capsys, tmp_path):
    data = write_rows(tmp_path / "d.jsonl", [{"prompt": "p", "chosen": "a"}] * 3)
    argv = ["data", "validate", "--input", data, "--format", "pairwise", "--skip_bad_rows", "true"]
    line = fails(capsys, argv, 1, "holds no valid rows")
    assert "3 skipped: 3 x" in line and "rejected" in line and "row 1" in line


def test_empty_responses_are_skipped_counted_and_named(capsys, fixtures, tmp_path):
    rows = rows_of(fixtures / "hh.jsonl")
    rejected = rows[0]["rejected"]
    empty = rejected[: rejected.rindex("\n\nAssistant:")] + "\n\nAssistant: "
    data = write_rows(tmp_path / "d.jsonl", rows + [dict(rows[0], chosen=empty)])
    assert main(["data", "validate", "--input", data, "--format", "hh"]) == 0
    out = capsys.readouterr().out
    assert f"kept {len(rows)} rows, skipped 1" in out and f"row {len(rows) + 1}" in out


def test_inspect_refuses_a_negative_row_count(capsys, fixtures):
    fails(capsys, ["data", "inspect", "--input", str(fixtures / "hh.jsonl"), "--rows", "-1"], 2, "--rows must be >= 0")
