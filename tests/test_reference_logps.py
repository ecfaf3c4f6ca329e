"""Reference log-probs written by ``score --reference_model`` equal the ones ``align``
computes, and columns from another reference are refused.

Guards: policy/reference.py, scorers/scoring.py, models/provenance.py."""

import json
import shutil

import pytest

from deltapref.cli import main
from helpers import TWO_STEPS, fails


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
        assert main(argv + TWO_STEPS) == 0
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
    assert main(argv + TWO_STEPS) == 0
    values = {"sft": scored_task["sft"], "dpo": str(dpo), "other_tokenizer": str(other)}
    extra = [e.format(**values) for e in extra]
    argv = ["align", "--train_data", with_reference, "--output_dir", str(tmp_path / "p")] + TWO_STEPS + extra
    fails(capsys, argv, 1, f"ref_logp_. columns do not belong to this run's reference.*{pattern}")
