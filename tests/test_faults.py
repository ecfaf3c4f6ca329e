"""Reliability, second round: faults a hostile user tries after the first round held. Each case
asserts the exit code, the one line that says what is wrong (no traceback), and that user files
are unchanged or no final model was written. The shared helpers are ``test_reliability``'s."""

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from deltapref.cli import main
from test_reliability import ALIGN, fails, rows_of, snapshot, write_rows


def align_argv(scored_task, out, *extra):
    data = scored_task["data"]
    return ["align", "--model", scored_task["sft"], "--train_data", data, "--output_dir", str(out), *ALIGN, *extra]


# -------------------------------------------------------------- paths from user input stay inside their directory


@pytest.mark.parametrize(
    "parts, pattern",
    [
        ("../../victim=1,b=rest", "part name '../../victim' is not a plain name"),
        ("/tmp/abs=1,b=rest", "is not a plain name"),
        (".hidden=1,b=rest", "is not a plain name"),
        ("a=0,b=rest", "part 'a' needs at least 1 row, got 0"),
        ("a=-3,b=rest", "needs at least 1 row, got -3"),
        ("a=1,a=rest", "names a part twice"),
        ("a=rest,b=rest", "at most one part may take the rest"),
    ],
)
def test_partition_names_and_sizes_are_checked(capsys, fixtures, tmp_path, parts, pattern):
    victim = tmp_path / "victim.jsonl"
    victim.write_text("mine\n")
    out = tmp_path / "o" / "p"
    argv = ["data", "partition", "--input", str(fixtures / "hh.jsonl"), "--output_dir", str(out), "--parts", parts]
    fails(capsys, argv, 2, pattern)
    assert victim.read_text() == "mine\n" and not out.exists()


def test_a_recipe_stage_name_cannot_leave_the_output_dir(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  ../escape: {command: data synth}\n")
    fails(capsys, ["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "run")], 1, "not a plain name")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "run").exists()


# -------------------------------------------------------------- models and tokenizers that do not load


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
    argv += [str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path / "out"), *ALIGN]
    fails(capsys, argv, 1, "holds no tokenizer files")


# -------------------------------------------------------------- errors raised while a command runs


def test_split_names_a_missing_confidence_field_and_the_columns_there(capsys, fixtures, tmp_path):
    argv = ["data", "split", "--input", str(fixtures / "hh.jsonl"), "--output_dir", str(tmp_path / "s")]
    line = fails(capsys, argv + ["--confidence_field", "nosuch"], 1, "hh.jsonl: rows .1, 2. have no numeric 'nosuch'")
    assert "columns here: chosen, prompt, rejected" in line


def test_ctrl_c_says_interrupted_and_exits_130(capsys, scored_task, tmp_path, monkeypatch):
    import deltapref.scorers.run as scorer_run

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scorer_run.ScorerTrainer, "train", interrupt)
    out = tmp_path / "rm"
    argv = ["train-scorer", "--kind", "reward", "--model", "tiny:32:1", "--tokenizer", str(scored_task["sft"])]
    assert main(argv + ["--train_data", scored_task["data"], "--output_dir", str(out), *ALIGN]) == 130
    err = capsys.readouterr().err
    assert "deltapref train-scorer: interrupted" in err and "Traceback" not in err
    assert not (out / "model.safetensors").exists() and not (tmp_path / ".rm.lock").exists()


class RepliesJudge(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint whose replies are, in turn, the items of ``replies``."""

    replies: list = []
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        content = RepliesJudge.replies[RepliesJudge.calls % len(RepliesJudge.replies)]
        RepliesJudge.calls += 1
        body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_judge_replies_without_a_verdict_are_counted_and_warned(capsys, tmp_path):
    """Replies that are not text (null, a list) or hold no A/B/T count as ties, and are reported."""
    RepliesJudge.replies, RepliesJudge.calls = [None, ["A"], "I cannot say", "A", "A", "B"], 0
    server = HTTPServer(("127.0.0.1", 0), RepliesJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = [{"id": i, "prompt": f"p{i}", "completion": f"c{i}"} for i in range(3)]
    a, b = write_rows(tmp_path / "a.jsonl", rows), write_rows(tmp_path / "b.jsonl", rows)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        argv = ["evaluate", "compare", "--a", a, "--b", b, "--judges", f"http:m@{url}"]
        assert main(argv + ["--output", str(tmp_path / "c.json")]) == 0
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert "WARNING: judge http:m gave no verdict (A, B or T) in 3 of 6 replies" in captured.err
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["judges"]["http:m"] == {"win": 1, "tie": 2, "loss": 0, "unparsed_replies": 3}


def test_compare_refuses_repeated_ids(capsys, tmp_path):
    rows = [{"id": 0, "prompt": "p", "completion": "a"}, {"id": 0, "prompt": "p", "completion": "b"}]
    a = write_rows(tmp_path / "a.jsonl", rows)
    b = write_rows(tmp_path / "b.jsonl", rows[:1])
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", b, "--judges", "gold"], 1, "A repeats id.s. 0")


# -------------------------------------------------------------- YAML: one line, bounded, no custom tags

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


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


# -------------------------------------------------------------- training that would change nothing


@pytest.mark.parametrize(
    "extra, code, pattern",
    [
        (["--max_steps", "0"], 2, "--max_steps must be > 0 .or -1"),
        (["--loss", "kto", "--kto_lambda_d", "0", "--kto_lambda_u", "0"], 2, "KTO would have no loss"),
        (["--gradient_accumulation_steps", "100000"], 1, "--gradient_accumulation_steps 100000 is more than the"),
        (["--learning_rate", "1e-30"], 1, r"2 optimizer step\(s\) changed no weight: its gradients were not finite"),
        (["--beta", "1e30"], 1, "changed no weight|the loss became|non-finite"),
    ],
)
def test_training_that_would_change_nothing_stops_without_a_model(capsys, scored_task, tmp_path, extra, code, pattern):
    argv = align_argv(scored_task, tmp_path / "out", *extra)  # a repeated flag: the last one wins
    fails(capsys, argv, code, pattern)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_the_reason_for_unchanged_weights_is_read_from_the_logs():
    from deltapref.training.trainer import unchanged_reason

    assert "not finite at every logged step" in unchanged_reason(
        [{"grad_norm": float("inf")}, {"grad_norm": float("nan")}]
    )
    assert "no gradient at any logged step" in unchanged_reason([{"loss": 0.0, "grad_norm": 0.0}] * 2)
    assert "too small to register" in unchanged_reason([{"loss": 0.7, "grad_norm": 0.5}])
    assert "too small to register" in unchanged_reason([])


def test_the_weight_watch_passes_a_run_that_learns(scored_task, tmp_path):
    assert main(align_argv(scored_task, tmp_path / "out")) == 0
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_a_one_step_smoke_test_inside_warmup_saves_with_a_warning(scored_task, tmp_path, caplog):
    """Decided: one step at learning rate 0 (warmup from 0) is what a smoke test asks for, so the
    model is saved, with a warning saying it equals its start; more steps that change nothing fail."""
    argv = align_argv(scored_task, tmp_path / "out", "--max_steps", "1", "--warmup_steps", "0.5")
    assert main(argv) == 0 and (tmp_path / "out" / "model.safetensors").exists()
    assert "only step had learning rate 0" in caplog.text


# -------------------------------------------------------------- outputs: suffix-less files, symbolic links, locks


def test_convert_replaces_a_plain_file_with_a_dataset_directory(fixtures, tmp_path):
    target = tmp_path / "plainfile"
    target.write_text("old")
    argv = ["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(target), "--overwrite", "true"]
    assert main(argv) == 0
    assert target.is_dir() and main(["data", "validate", "--input", str(target)]) == 0


def test_score_replaces_a_symbolic_link_never_its_target(scored_task, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(victim)
    argv = ["score", "--input", scored_task["test"], "--output", str(link), "--overwrite", "true"]
    assert main(argv + ["--reward_model", str(scored_task["root"] / "reward")]) == 0
    assert victim.read_text() == "mine" and link.is_dir() and not link.is_symlink()
    assert not (tmp_path / "link.parts").exists() and not (tmp_path / ".link.lock").exists()


def test_a_failed_run_leaves_no_lock_file(capsys, fixtures, tmp_path):
    bad = write_rows(tmp_path / "bad.jsonl", [{"prompt": "p"}])
    out = tmp_path / "out.jsonl"
    fails(capsys, ["data", "convert", "--input", bad, "--output", str(out)], 1, "bad.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


# -------------------------------------------------------------- every input checked before any model loads


def test_train_scorer_checks_eval_data_before_training(capsys, scored_task, tmp_path):
    not_data = tmp_path / "dir"
    not_data.mkdir()
    (not_data / "x.txt").write_text("x")
    out = tmp_path / "rm"
    argv = ["train-scorer", "--kind", "reward", "--model", "tiny:32:1", "--tokenizer", scored_task["sft"]]
    argv += ["--train_data", scored_task["data"], "--eval_data", str(not_data), "--output_dir", str(out), *ALIGN]
    fails(capsys, argv, 1, str(not_data))
    assert not (out / "model.safetensors").exists()


# -------------------------------------------------------------- data decisions are said


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


# -------------------------------------------------------------- checkpoints of an earlier run


def test_a_fresh_run_clears_an_earlier_runs_checkpoints(scored_task, tmp_path):
    out = tmp_path / "out"
    checkpointing = ["--save_strategy", "steps", "--save_steps", "1"]
    assert main(align_argv(scored_task, out, *checkpointing)) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    before = snapshot(out / "checkpoint-1")
    resumed = ["--resume_from_checkpoint", str(out / "checkpoint-1"), *checkpointing]
    assert main(align_argv(scored_task, out, *resumed)) == 0  # resuming keeps them
    assert snapshot(out / "checkpoint-1") == before
    finished = ["--resume_from_checkpoint", str(out / "checkpoint-2")]
    assert main(align_argv(scored_task, out, *finished)) == 0  # nothing left to train: not "changed no weight"
    assert main(align_argv(scored_task, out)) == 0  # a fresh run into deltapref's own output
    assert not list(out.glob("checkpoint-*")) and (out / "model.safetensors").exists()


@pytest.mark.parametrize("command", ["align", "sft", "train-scorer"])
def test_a_training_command_without_an_output_dir_is_refused(capsys, command):
    """Before: transformers turned a missing --output_dir into ./trainer_output silently."""
    assert main([command, "--model", "m", "--train_data", "x"]) == 2
    assert "--output_dir is required" in capsys.readouterr().err
