"""Faults and bad input, tried as a careful user would: every case asserts the exit code, the one
line that names what is wrong, and that nothing the user did not ask to replace was touched.

Principles: (1) never destroy, (2) no non-finite number reaches training, (3) senseless options
are refused at parse time, (4) the right model in the right role, (5) reference log-probs belong
to the same reference, (6) checkpoints do what the flags say, (7) one line, never a traceback,
(8) say what was accepted. The kill -9 tests for score, align and pipeline are in
``test_interruptions.py``."""

import gzip
import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
from safetensors.torch import load_file

from deltapref.artifacts.outputs import exclusive
from deltapref.cli import main
from deltapref.errors import DeltaprefError
from deltapref.evaluation.scorer_metrics import scorer_report
from deltapref.evaluation.stats import bootstrap_ci

ALIGN = ["--max_steps", "2", "--disable_tqdm", "true", "--max_length", "96", "--max_prompt_length", "24"]


def fails(capsys, argv, code, pattern):
    """Run the CLI; assert its exit code and exactly one error line matching ``pattern``."""
    assert main(argv) == code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if re.match(r"(deltapref [\w -]+|usage.*): error: ", line)]
    assert "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def rows_of(path):
    return [json.loads(line) for line in open(path)]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def user_dir(tmp_path):
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "notes.txt").write_text("my notes")
    (directory / "config.json").write_text("{}")
    return directory


# -------------------------------------------------------------- (1) never destroy


def test_score_refuses_a_user_directory(capsys, scored_task, user_dir):
    before = snapshot(user_dir)
    argv = ["score", "--input", scored_task["test"], "--output", str(user_dir), "--reward_model"]
    fails(capsys, argv + [str(scored_task["root"] / "reward")], 1, "non-empty directory that deltapref did not write")
    assert snapshot(user_dir) == before


def test_convert_refuses_a_user_directory_and_file(capsys, fixtures, user_dir, tmp_path):
    before = snapshot(user_dir)
    fails(
        capsys,
        ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(user_dir)],
        1,
        "did not write",
    )
    assert snapshot(user_dir) == before
    mine = tmp_path / "mine.jsonl"
    mine.write_text("precious\n")
    fails(
        capsys,
        ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(mine)],
        1,
        "exists and deltapref did not write it.*--overwrite",
    )
    assert mine.read_text() == "precious\n"


def test_convert_replaces_its_own_output_and_a_user_file_with_overwrite(fixtures, tmp_path):
    out = tmp_path / "out.jsonl"
    for _ in range(2):  # its own output: replaced without asking
        assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)]) == 0
    mine = tmp_path / "mine.jsonl"
    mine.write_text("precious\n")
    argv = ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(mine), "--overwrite", "true"]
    assert main(argv) == 0 and len(rows_of(mine)) == len(rows_of(out))


def test_generate_synth_and_split_refuse_user_outputs(capsys, scored_task, fixtures, user_dir, tmp_path):
    mine = tmp_path / "completions.jsonl"
    mine.write_text("precious\n")
    fails(
        capsys,
        ["generate", "--model", scored_task["sft"], "--input", scored_task["test"], "--output", str(mine)],
        1,
        "did not write",
    )
    before = snapshot(user_dir)
    fails(capsys, ["data", "synth", "--output_dir", str(user_dir)], 1, "non-empty directory")
    fails(
        capsys,
        ["data", "split", "--input", str(fixtures / "hh.jsonl"), "--output_dir", str(user_dir)],
        1,
        "non-empty directory",
    )
    assert snapshot(user_dir) == before and mine.read_text() == "precious\n"


def test_training_refuses_a_user_output_dir(capsys, scored_task, user_dir):
    before = snapshot(user_dir)
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir", str(user_dir)]
    fails(capsys, argv + ALIGN, 1, "did not write.*--overwrite_output_dir")
    assert snapshot(user_dir) == before


def test_written_files_keep_the_umask(fixtures, tmp_path):
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(umask)
        try:
            out = tmp_path / f"out-{umask:o}.jsonl"
            assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)]) == 0
        finally:
            os.umask(old)
        assert out.stat().st_mode & 0o777 == mode


def test_a_second_writer_is_refused_while_the_first_holds_the_output(capsys, fixtures, tmp_path):
    out = tmp_path / "out.jsonl"
    with exclusive(out):
        fails(
            capsys,
            ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)],
            1,
            "being written by another deltapref run",
        )
    assert not out.exists()
    assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)]) == 0


def test_unwritable_outputs_are_refused_before_any_work(capsys, scored_task, fixtures, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    fails(
        capsys,
        ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(blocker / "o.jsonl")],
        1,
        "is a file, not a directory",
    )
    fails(
        capsys,
        ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", "/proc/deltapref/o.jsonl"],
        1,
        "not writable|cannot create",
    )
    argv = ["score", "--input", scored_task["data"], "--output", str(blocker / "s.jsonl"), "--reward_model"]
    fails(capsys, argv + [str(scored_task["root"] / "reward")], 1, "is a file, not a directory")
    assert not list(tmp_path.glob("**/*.parts"))  # refused before scoring anything


# -------------------------------------------------------------- (2) non-finite numbers


def with_column(scored_task, tmp_path, name, values, source="data"):
    rows = rows_of(scored_task[source])
    for row, value in zip(rows, values):
        row[name] = value
    return write_rows(tmp_path / f"with_{name}.jsonl", rows)


def test_nan_in_a_custom_coefficient_column_stops_before_training(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "weights", [1.0, 0.5, float("nan")] + [1.0] * 2000)
    argv = ["align", "--model", scored_task["sft"], "--train_data", data, "--coef", "weights", "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p")] + ALIGN, 1, r"row 3, field 'weights': must be finite, got nan")
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
    assert main(argv + ALIGN) == 0
    summary = json.loads((tmp_path / "p" / "train_summary.json").read_text())
    assert summary["skipped_rows"] == 2 and summary["train_rows"] == len(rows_of(scored_task["data"])) - 2


@pytest.mark.parametrize("option, value", [("--alpha", "nan"), ("--beta", "inf"), ("--learning_rate", "nan")])
def test_non_finite_options_are_refused(capsys, scored_task, tmp_path, option, value):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p"), option, value], 2, f"{option} must be a finite number")


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


def test_a_non_finite_loss_stops_training_and_writes_no_model(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "weights", [1e308] * 5000)  # finite weights whose sum overflows
    argv = ["align", "--model", scored_task["sft"], "--train_data", data, "--coef", "weights", "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p")] + ALIGN, 1, r"the loss became inf at step 1: training stopped")
    assert not (tmp_path / "p" / "model.safetensors").exists()


def test_nan_in_an_ensemble_list_is_refused(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "ensemble_reward_chosen", [[0.1, float("nan")]], source="test")
    fails(capsys, ["data", "validate", "--input", data], 1, r"field 'ensemble_reward_chosen\[1\]': must be finite")


def test_metrics_refuse_non_finite_values():
    with pytest.raises(DeltaprefError, match="1 of 3 values are not finite"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(DeltaprefError, match="scores are not finite"):
        scorer_report([0.5, float("inf")])


# -------------------------------------------------------------- (3) senseless options


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


# -------------------------------------------------------------- (4) the right model in the right role


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
    fails(capsys, argv + ALIGN, 1, "is a deltapref reward model .LlamaForSeq.*, not a causal-LM policy")
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


# -------------------------------------------------------------- (5) reference log-probs


@pytest.fixture(scope="module")
def with_reference(scored_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "ref.jsonl"
    argv = [
        "score",
        "--input",
        scored_task["data"],
        "--output",
        str(out),
        "--reference_model",
        scored_task["sft"],
        "--max_length",
        "96",
        "--max_prompt_length",
        "24",
        "--overwrite",
        "true",
    ]
    assert main(argv) == 0
    return str(out)


def test_precomputed_reference_columns_match_the_ones_align_computes(scored_task, with_reference, tmp_path):
    losses = []
    for data in (scored_task["data"], with_reference):
        argv = [
            "align",
            "--model",
            scored_task["sft"],
            "--train_data",
            data,
            "--loss",
            "kto",
            "--logging_steps",
            "1",
            "--output_dir",
            str(tmp_path / str(len(losses))),
        ]
        assert main(argv + ALIGN) == 0
        summary = json.loads((tmp_path / str(len(losses)) / "train_summary.json").read_text())
        losses.append([e["loss"] for e in summary["log_history"] if "loss" in e])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--model", "{dpo}"], "the reference weights differ .recorded .*sft"),
        (["--model", "{sft}", "--max_length", "128"], "the truncation differs"),
        (["--model", "{sft}", "--tokenizer", "{other_tokenizer}"], "the tokenizer differs"),
    ],
)
def test_reference_columns_from_another_reference_are_refused(
    capsys, scored_task, with_reference, tmp_path, extra, pattern
):
    other = tmp_path / "tokenizer"
    shutil.copytree(scored_task["sft"], other, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((other / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps(dict(config, model_max_length=77)))
    dpo = tmp_path / "dpo"
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir", str(dpo)]
    assert main(argv + ALIGN) == 0
    values = {"sft": scored_task["sft"], "dpo": str(dpo), "other_tokenizer": str(other)}
    extra = [e.format(**values) for e in extra]
    argv = ["align", "--train_data", with_reference, "--output_dir", str(tmp_path / "p")] + ALIGN + extra
    fails(capsys, argv, 1, f"ref_logp_. columns do not belong to this run's reference.*{pattern}")


# -------------------------------------------------------------- (6) checkpoints


def test_save_steps_without_a_save_strategy_is_refused(capsys, scored_task, tmp_path):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p"), "--save_steps", "10"], 2, "saves nothing with --save_strategy no")


@pytest.mark.parametrize("command", ["align", "sft"])
def test_remove_unused_columns_is_one_line_not_a_traceback(capsys, scored_task, tmp_path, command):
    argv = [command, "--model", scored_task["sft"], "--train_data", scored_task["data"], *ALIGN]
    fails(capsys, argv + ["--output_dir", str(tmp_path / "p"), "--remove_unused_columns", "true"], 1, "must stay false")
    assert not (tmp_path / "p" / "model.safetensors").exists()


def test_a_bad_resume_checkpoint_is_refused_before_any_work(capsys, scored_task, tmp_path):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir"]
    fails(
        capsys,
        argv + [str(tmp_path / "p"), "--resume_from_checkpoint", str(tmp_path / "nope")],
        2,
        "not a checkpoint directory",
    )


def test_summary_after_resume_describes_the_whole_run(scored_task, tmp_path):
    common = [
        "--model",
        scored_task["sft"],
        "--train_data",
        scored_task["data"],
        "--max_steps",
        "8",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
    ]
    assert main(["align", "--output_dir", str(tmp_path / "straight")] + common) == 0
    shutil.copytree(tmp_path / "straight" / "checkpoint-4", tmp_path / "resumed" / "checkpoint-4")
    resume = ["--resume_from_checkpoint", str(tmp_path / "resumed" / "checkpoint-4")]
    assert main(["align", "--output_dir", str(tmp_path / "resumed")] + common + resume) == 0
    straight, resumed = (json.loads((tmp_path / n / "train_summary.json").read_text()) for n in ("straight", "resumed"))
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == straight["steps"] == 8
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-5)
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("straight", "resumed"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


# -------------------------------------------------------------- (7) one line, never a traceback


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


def test_a_missing_model_says_both_local_and_hub(capsys, scored_task, tmp_path):
    argv = ["align", "--model", "someone/no-such-model", "--train_data", scored_task["data"], "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p")] + ALIGN, 1, "is not a local directory, and as a hub id it did not load")


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


class FailingJudge(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        FailingJudge.calls += 1
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failing_http_judge_is_retried_then_named_without_the_key(capsys, tmp_path, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), FailingJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    rows = [{"id": 0, "prompt": "p", "completion": "a"}]
    a, b = write_rows(tmp_path / "a.jsonl", rows), write_rows(tmp_path / "b.jsonl", rows)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        line = fails(
            capsys,
            [
                "evaluate",
                "compare",
                "--a",
                a,
                "--b",
                b,
                "--judges",
                f"http:judge-m@{url}",
                "--api_key_env",
                "JUDGE_KEY",
                "--judge_attempts",
                "3",
                "--judge_backoff",
                "0.01",
            ],
            1,
            f"judge http:judge-m at {url}/chat/completions failed after 3 attempt.s.: HTTP 503",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert FailingJudge.calls == 3 and "sk-secret" not in line
    port = server.server_port  # now closed: connection refused
    fails(
        capsys,
        [
            "evaluate",
            "compare",
            "--a",
            a,
            "--b",
            b,
            "--judges",
            f"http:m@http://127.0.0.1:{port}/v1",
            "--judge_attempts",
            "2",
            "--judge_backoff",
            "0",
        ],
        1,
        "failed after 2 attempt.s.: ConnectionError",
    )


def test_an_unknown_judge_is_one_line(capsys, tmp_path):
    a = write_rows(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "a"}])
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", a, "--judges", "oracle:x"], 1, "unknown judge 'oracle:x'")


# -------------------------------------------------------------- (8) say what was accepted


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


def test_loaders_and_sampling_leave_the_callers_random_state_alone(builtin_task):
    """Model loaders and generation seed their own work and give torch's random state back: two
    loads with one seed build the same weights, and the caller's next random number is unchanged."""
    from deltapref.models.loading import load_causal_lm, load_sequence_scorer, load_tokenizer
    from deltapref.policy.generation import generate_completions

    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    policy = load_causal_lm("tiny:32:1", tokenizer, seed=5)
    scorer = load_sequence_scorer("tiny:32:1", tokenizer, seed=5)
    generate_completions(policy, tokenizer, ["q: 3 5 ."], max_new_tokens=4, seed=9, progress=False)
    assert torch.equal(torch.rand(3), expected)
    again = load_causal_lm("tiny:32:1", tokenizer, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), again.state_dict().values()))
    other = load_sequence_scorer("tiny:32:1", tokenizer, seed=6)
    assert not torch.equal(next(scorer.parameters()), next(other.parameters()))
