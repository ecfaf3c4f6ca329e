"""What the CLI tests share: in-process and subprocess runs of ``deltapref``, the one-error-line
check, data rows in and out, a folder's snapshot, and short training options."""

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

from deltapref.cli import main

TWO_STEPS = ["--max_steps", "2", "--disable_tqdm", "true", "--max_length", "96", "--max_prompt_length", "24"]
FAST_LR = ["--max_length", "96", "--max_prompt_length", "24", "--disable_tqdm", "true", "--learning_rate", "1e-3"]


def fails(capsys, argv, code, pattern):
    """Run the CLI in-process; assert its exit code and exactly one error line matching ``pattern``."""
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if re.match(r"(deltapref [\w -]+|usage.*): error: ", line)]
    assert "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def rows_of(path):
    return [json.loads(line) for line in open(path)]


def write_rows(path, rows) -> str:
    """Write ``rows`` as JSONL to ``path``; its path as text (for an argv)."""
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


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


def align_argv(scored_task, out, *extra):
    data = scored_task["data"]
    return [
        "align",
        "--model",
        scored_task["sft"],
        "--train_data",
        data,
        "--output_dir",
        str(out),
        *TWO_STEPS,
        *extra,
    ]


def with_column(scored_task, tmp_path, name, values, source="data"):
    rows = rows_of(scored_task[source])
    for row, value in zip(rows, values):
        row[name] = value
    return write_rows(tmp_path / f"with_{name}.jsonl", rows)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)
