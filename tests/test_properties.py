"""Property-based tests: inputs made by ``hypothesis`` (derandomized: the same examples every run,
see conftest's profile) for the three doors user input comes through: data files, recipes and
``--config`` files, and the Python API's keyword arguments. Whatever they hold, the answer is a
valid result or one line naming what is wrong; never a traceback, never a file changed outside
the output.

Guards: data/loading.py, recipes/recipe_file.py, config/values.py, report/options.py, api.py."""

import contextlib
import dataclasses
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deltapref import api
from deltapref.cli import main
from deltapref.errors import DeltaprefError
from deltapref.stages import STAGES, parse

ERROR_LINE = re.compile(r"^deltapref [\w -]+: error: ")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)  # lone surrogates too
texts = st.text(min_size=1, max_size=20) | any_text
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "x"]), "content": texts}))
responses = texts | messages | json_values
rows = st.fixed_dictionaries(
    {"prompt": texts, "chosen": responses, "rejected": responses},
    optional={
        "id": json_values,
        "confidence": json_values,
        "chosen_score": json_values,
        "rejected_score": json_values,
        "extra": json_values,
        "responses": st.lists(texts, max_size=3),
        "scores": st.lists(json_values, max_size=3),
    },
)
files = st.lists(rows | json_values, max_size=6)


def run_cli(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def assert_valid_or_one_line(code: int, err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    if code == 0:
        assert not errors, err
    else:
        assert code in (1, 2) and len(errors) == 1, err[-3000:]


def tree(directory: Path) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@given(records=files, suffix=st.sampled_from([".jsonl", ".json"]))
def test_any_data_file_validates_or_is_one_line(records, suffix):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        source = directory / f"data{suffix}"
        if suffix == ".jsonl":
            source.write_text("".join(json.dumps(r) + "\n" for r in records))
        else:
            source.write_text(json.dumps(records))
        before = tree(directory)
        assert_valid_or_one_line(*run_cli(["data", "validate", "--input", source]))
        assert tree(directory) == before
        code, err = run_cli(["data", "convert", "--input", source, "--output", directory / "out.jsonl"])
        assert_valid_or_one_line(code, err)
        added = set(tree(directory)) - set(before)
        assert added <= {Path("out.jsonl"), Path("out.jsonl.deltapref.json")}
        assert tree(directory)[Path(source.name)] == before[Path(source.name)]


plain_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=10)
commands = st.sampled_from([" ".join(words) for words in STAGES] + ["nosuch", "data", ""])
option_names = st.sampled_from(["n_train", "model", "seed", "input", "output", "beta", "loss", "nosuch", "1"])
option_values = st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | plain_text
option_values |= st.sampled_from(["{data}", "{here}/x.jsonl", "{nosuch}", "tiny:16:1"]) | st.lists(
    plain_text, max_size=2
)
stages = st.fixed_dictionaries(
    {"command": commands | st.integers()},
    optional={"args": st.dictionaries(option_names, option_values, max_size=3), "launcher": st.none() | plain_text},
)
report_keys = st.sampled_from(["reward", "baselines", "tie_threshold", "alpha", "seed", "title", "baseline", "1"])
report_blocks = st.dictionaries(report_keys, option_values, max_size=4)
recipes = st.fixed_dictionaries(
    {},
    optional={
        "stages": st.dictionaries(st.sampled_from(["data", "sft", "here", "../up", "a b", "x"]), stages, max_size=3),
        "report": st.none() | st.dictionaries(plain_text, plain_text, max_size=2) | report_blocks,
        "output_dir": st.none() | plain_text,
        "output_dri": plain_text,
    },
)


@given(recipe=recipes)
def test_any_recipe_dry_runs_or_is_one_line(recipe):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        path = directory / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        before = tree(directory)
        code, err = run_cli(["pipeline", "--recipe", path, "--output_dir", directory / "run", "--dry_run", "true"])
        assert_valid_or_one_line(code, err)
        assert tree(directory) == before


@given(block=report_blocks)
def test_any_report_block_is_typed_or_refused_in_one_line(block):
    """A recipe's ``report:`` block builds typed options (each value in its field's range) or is
    one ValueError naming the file and the block; a misspelt key is never ignored."""
    from deltapref.report.options import ReportOptions, report_options

    try:
        options = report_options(block, "r.yaml")
    except ValueError as error:
        assert str(error).startswith("r.yaml: report: ") and "\n" not in str(error)
        return
    assert isinstance(options, ReportOptions) and set(block) <= {f.name for f in dataclasses.fields(ReportOptions)}
    assert options.alpha >= 0 and options.tie_threshold >= 0 and 0 <= options.seed <= 2**32 - 1
    assert all(name in options.baselines for name in options.baseline_names)


def test_a_misspelt_report_key_names_the_one_it_resembles():
    from deltapref.report.options import report_options

    with pytest.raises(ValueError, match=r"r.yaml: report: unknown option\(s\) baseline; did you mean baselines\?"):
        report_options({"baseline": ["sft"]}, "r.yaml")
    assert report_options({"baselines": ["sft", "dpo"], "alpha": "0.5"}, "r.yaml").baseline_names == ["sft", "dpo"]


config_options = st.sampled_from(
    ["model", "tokenizer", "train_data", "output_dir", "beta", "alpha", "loss", "coef", "max_steps", "lora_r"]
    + ["learning_rate", "max_length", "max_prompt_length", "seed", "nosuch"]
)


@given(values=st.dictionaries(config_options, option_values | json_values, max_size=6))
def test_any_option_file_parses_or_is_one_line(values):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "options.yaml"
        path.write_text(yaml.safe_dump(values))
        command = STAGES[("align",)]
        required = ["--model", "tiny:16:1", "--tokenizer", "t", "--train_data", "d.jsonl", "--output_dir", "o"]
        try:
            parse(("align",), command, ["--config", str(path)] + [a for a in required if a.strip("-") not in values])
        except ValueError as error:
            assert "\n" not in str(error).strip()


api_options = st.sampled_from(
    ["model", "tokenizer", "train_data", "beta", "alpha", "loss", "coef", "lora_r", "lora_target_modules", "pack"]
    + ["max_steps", "learning_rate", "seed", "max_length", "per_device_train_batch_size", "warmup_steps", "nosuch"]
)
api_values = option_values | json_values | st.builds(Path, plain_text)


@given(options=st.dictionaries(api_options, api_values, max_size=5))
def test_any_api_keywords_build_configs_or_are_one_line(options):
    base = {"model": "tiny:16:1", "tokenizer": "t", "train_data": "d.jsonl", "output_dir": "o"}
    try:
        api.build_configs("align", {**base, **options})
    except (ValueError, TypeError, DeltaprefError) as error:
        assert str(error).strip() and "\n" not in str(error).strip()
