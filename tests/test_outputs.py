"""Who may write an output, and how: the ownership rule, locks, links, the umask, outputs
checked before any work, partitions and evaluations that never write over their inputs.

Guards: artifacts/outputs.py, artifacts/records.py, data/writing.py, stages/data.py."""

import json
import os
from pathlib import Path

import pytest

from deltapref.artifacts.outputs import exclusive
from deltapref.cli import main
from helpers import FAST_LR, TWO_STEPS, fails, rows_of, snapshot, write_rows


@pytest.fixture
def user_dir(tmp_path):
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "notes.txt").write_text("my notes")
    (directory / "config.json").write_text("{}")
    return directory


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
    fails(capsys, argv + TWO_STEPS, 1, "did not write.*--overwrite_output_dir")
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


def test_training_never_writes_over_its_own_model(capsys, scored_task, policy):
    before = snapshot(policy)
    argv = ["align", "--model", policy, "--train_data", scored_task["data"], "--output_dir", policy, "--max_steps", "2"]
    fails(capsys, argv + FAST_LR, 1, "is one of this run.s inputs; a command never writes over what it reads")
    fails(capsys, argv + FAST_LR + ["--overwrite_output_dir", "true"], 1, "one of this run.s inputs")
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
    assert main([str(a) for a in argv + ["--output_dir", out, "--max_steps", "2", *FAST_LR]]) == 0
    assert (out / "model.safetensors").exists() and not (tmp_path / ".o.lock").exists()


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
