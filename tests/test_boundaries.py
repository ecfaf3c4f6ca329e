"""Every option of every command at its edges: enumerated from the parsers (not listed by hand),
each fed 0, -1, a huge number, non-finite numbers, empty text, a lone comma, the wrong type. A
command given one of them either runs or exits with one line (code 1 or 2): never a traceback.

The cases are the cross product of every option and its type's edge values (about 900), each run
through the real entry point on a tiny model and a tiny data file (about a minute in all).

Guards: config/commands.py, config/values.py, training/arguments.py, stages/__init__.py, cli.py."""

import dataclasses
import json
import tempfile
import typing
from pathlib import Path

import pytest

from deltapref.cli import main
from deltapref.config.values import field_hints
from deltapref.stages import STAGES

EDGES = {
    int: ["0", "-1", "99999999999999999999", "abc"],
    float: ["0", "-1", "1e400", "nan", "abc"],
    str: ["", ",", "abc", "."],
    bool: ["maybe"],
}
# The TrainingArguments fields deltapref passes on and documents (the rest are transformers' own
# integrations: hub, logging services, torch.compile, ...).
TRAINING_FIELDS = {
    "seed",
    "data_seed",
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "eval_strategy",
    "eval_steps",
    "lr_scheduler_type",
    "dataloader_num_workers",
    "gradient_checkpointing",
    "resume_from_checkpoint",
}
PATH_OPTIONS = {"output", "output_dir", "recipe", "config"}  # outputs get their own tests (test_lifecycle)


def _kind(hint) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal or any(typing.get_origin(a) is typing.Literal for a in args):
        return str
    for kind in (bool, int, float, str):
        if hint is kind or kind in args:
            return kind
    return str


def cases() -> list[tuple[tuple[str, ...], str, str]]:
    """(command words, option, edge value) for every option of every command."""
    found = []
    for words, command in STAGES.items():
        for cls in command.config_types():
            library = cls.__module__.split(".")[0] != "deltapref"
            hints = field_hints(cls)
            for field in dataclasses.fields(cls):
                if not field.init or field.name in PATH_OPTIONS or (library and field.name not in TRAINING_FIELDS):
                    continue
                for value in EDGES[_kind(hints.get(field.name))]:
                    found.append((words, field.name, value))
    return sorted(set(found))


CASES = cases()


@pytest.fixture(scope="module")
def world(builtin_task, scored_task, tmp_path_factory):
    """Small inputs every command can run on in a second or two."""
    root = tmp_path_factory.mktemp("edges")
    rows = [json.loads(line) for line in open(scored_task["data"])][:12]
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts = root / "completions.jsonl"
    completions = [{"prompt": r["prompt"], "completion": r["chosen"], "id": i} for i, r in enumerate(rows)]
    prompts.write_text("".join(json.dumps(c) + "\n" for c in completions))
    reward = str(scored_task["root"] / "reward")
    return {
        "pairs": pairs,
        "completions": prompts,
        "tokenizer": builtin_task / "tokenizer",
        "reward": reward,
        **scored_task,
    }


def base_argv(words: tuple[str, ...], world: dict, out: Path) -> list[str]:
    """A valid, fast command line for ``words`` writing under ``out``."""
    tiny = ["--model", "tiny:16:1", "--tokenizer", str(world["tokenizer"]), "--max_length", "64"]
    tiny += ["--max_prompt_length", "16", "--train_data", str(world["pairs"]), "--output_dir", str(out / "run")]
    tiny += ["--max_steps", "1", "--disable_tqdm", "true"]
    pairs = str(world["pairs"])
    return {
        ("data", "synth"): ["--output_dir", str(out / "task"), "--n_train", "20", "--n_test", "5"],
        ("data", "inspect"): ["--input", pairs],
        ("data", "validate"): ["--input", pairs],
        ("data", "convert"): ["--input", pairs, "--output", str(out / "c.jsonl")],
        ("data", "partition"): ["--input", pairs, "--output_dir", str(out / "p"), "--parts", "a=4,b=rest"],
        ("data", "split"): ["--input", pairs, "--output_dir", str(out / "s")],
        ("sft",): tiny,
        ("train-scorer",): tiny,
        ("align",): tiny + ["--loss", "dpo"],
        ("score",): ["--input", pairs, "--output", str(out / "s.jsonl"), "--reward_model", world["reward"]],
        ("generate",): ["--model", world["sft"], "--input", pairs, "--output", str(out / "g.jsonl"), "--limit", "2"]
        + ["--max_new_tokens", "4"],
        ("evaluate", "scorer"): ["--model", str(world["root"] / "reward"), "--kind", "reward", "--data", pairs],
        ("evaluate", "policy"): ["--completions", str(world["completions"])],
        ("evaluate", "compare"): ["--a", str(world["completions"]), "--b", str(world["completions"])],
    }[words]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``--option value`` (replacing the base's own value of that option)."""
    flag = f"--{option}"
    if flag in argv:
        i = argv.index(flag)
        return argv[:i] + argv[i + 2 :] + [flag, value]
    return argv + [flag, value]


def test_every_command_and_option_is_enumerated():
    commands = {words for words, _, _ in CASES}
    assert commands == set(STAGES)
    options = {(words, option) for words, option, _ in CASES}
    assert (("sft",), "per_device_train_batch_size") in options and (("generate",), "seed") in options
    assert len(CASES) > 500


@pytest.mark.parametrize("case", CASES, ids=[f"{' '.join(w)}--{o}={v!r}" for w, o, v in CASES])
def test_an_edge_value_runs_or_is_one_line(world, capsys, case):
    words, option, value = case
    with tempfile.TemporaryDirectory() as out:
        argv = [*words, *with_option(base_argv(words, world, Path(out)), option, value)]
        capsys.readouterr()
        code = main(argv)  # an exception here is a traceback a user would see
        err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code)
    if code:
        lines = [line for line in err.strip().splitlines() if " error: " in line]
        assert lines and "Traceback" not in err, (argv, err[-2000:])
