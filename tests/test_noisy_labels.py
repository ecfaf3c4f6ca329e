"""rDPO, cDPO, ODPO, label correction and ``--epsilon auto`` end to end: from the command line, a
recipe and Python; ε = 0 trains exactly what DPO trains; what the label options did is in the
summary and the model card; bad values are one line before any model loads.

Guards: objectives/policy.py, policy/labels.py, policy/preparation.py, scorers/scoring.py,
training/card.py, evaluation/label_noise.py."""

import json

import pytest
import yaml
from safetensors.torch import load_file

import deltapref
from deltapref.cli import main
from deltapref.models.provenance import read_meta
from helpers import TWO_STEPS, fails, rows_of, write_rows


def align(scored_task, out, *extra, data=None):
    argv = ["align", "--model", scored_task["sft"], "--train_data", data or scored_task["data"]]
    return main([*argv, "--output_dir", str(out), *TWO_STEPS, "--learning_rate", "1e-3", *extra])


def summary(out):
    return json.loads((out / "train_summary.json").read_text())


@pytest.mark.parametrize(
    "extra, labels",
    [
        (["--loss", "rdpo", "--epsilon", "0.2"], {"epsilon": 0.2}),
        (["--loss", "rdpo", "--epsilon", "difference", "--epsilon_max", "0.3"], {"epsilon_from": "difference"}),
        (["--loss", "cdpo", "--epsilon", "gold", "--label_temperature", "0.5"], {"epsilon_from": "gold"}),
        (["--loss", "odpo", "--odpo_offset", "reward", "--odpo_alpha", "0.5"], {"offset_from": "reward"}),
        (["--loss", "dpo", "--label_correction", "flip", "--correct_with", "gold"], {"label_correction": "flip"}),
        (["--loss", "kto", "--label_correction", "drop", "--correct_with", "difference"], {"label_correction": "drop"}),
    ],
)
def test_each_objective_and_correction_trains_and_says_what_it_did(scored_task, tmp_path, extra, labels):
    out = tmp_path / "run"
    assert align(scored_task, out, *extra) == 0
    said = summary(out)["labels"]
    for key, value in labels.items():
        assert (said[key]["mode"] if key == "label_correction" else said[key]) == value
    if "label_correction" in said:
        done, n = said["label_correction"], len(rows_of(scored_task["data"]))
        assert done["pairs"] == n and 0 < done.get("flipped", done.get("dropped")) < n
        assert summary(out)["train_rows"] == n - done.get("dropped", 0)
    assert "## Labels it did not take as given" in (out / "README.md").read_text()
    assert load_file(out / "model.safetensors")


def test_epsilon_zero_trains_exactly_what_dpo_trains(scored_task, tmp_path):
    assert align(scored_task, tmp_path / "dpo", "--loss", "dpo") == 0
    for loss in ("rdpo", "cdpo"):
        assert align(scored_task, tmp_path / loss, "--loss", loss, "--epsilon", "0") == 0
        ours, dpo = load_file(tmp_path / loss / "model.safetensors"), load_file(tmp_path / "dpo" / "model.safetensors")
        assert all((ours[name] == dpo[name]).all() for name in dpo), loss


def test_a_recipe_and_python_take_the_same_options(scored_task, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    args = dict(model=scored_task["sft"], train_data=scored_task["data"], max_steps=2, loss="cdpo", epsilon=0.25)
    recipe.write_text(yaml.safe_dump({"stages": {"cdpo": {"command": "align", "args": args}}}))
    assert main(["pipeline", "--recipe", str(recipe), "--output_dir", str(tmp_path / "pipe")]) == 0
    assert summary(tmp_path / "pipe" / "cdpo")["labels"] == {"epsilon": 0.25}
    python = {k: v for k, v in args.items() if k not in ("epsilon", "loss")}
    result = deltapref.align(**python, loss="odpo", odpo_offset="gold", output_dir=str(tmp_path / "py"))
    assert result["labels"]["offset_from"] == "gold"


def test_epsilon_auto_reads_the_share_score_estimated_from_a_cross_fitted_scorer(builtin_task, scored_task, tmp_path):
    scorer = [
        "train-scorer",
        "--kind",
        "reward",
        "--model",
        "tiny:32:1",
        "--tokenizer",
        str(builtin_task / "tokenizer"),
    ]
    scorer += ["--train_data", str(builtin_task / "train.jsonl"), "--cross_fit", "2", "--max_steps", "20"]
    assert main([*scorer, "--output_dir", str(tmp_path / "rm"), "--max_length", "96", "--max_prompt_length", "24"]) == 0
    scored = tmp_path / "scored.jsonl"
    argv = ["score", "--input", str(builtin_task / "train.jsonl"), "--output", str(scored), "--reward_model"]
    assert main([*argv, str(tmp_path / "rm"), "--max_length", "96", "--max_prompt_length", "24"]) == 0
    noise = read_meta(scored)["noise"]["reward"]
    assert noise["low"] <= noise["estimate"] <= noise["high"] and 0 < noise["gold_wrong_share"] < 0.5
    assert align(scored_task, tmp_path / "auto", "--loss", "rdpo", "--epsilon", "auto", data=str(scored)) == 0
    said = summary(tmp_path / "auto")["labels"]
    assert said == {"epsilon": pytest.approx(noise["estimate"]), "epsilon_from": "auto (reward)"}


def test_bad_label_values_are_one_line_before_any_model_loads(capsys, scored_task, tmp_path):
    out = tmp_path / "run"
    fails(capsys, _argv(scored_task, out, "--loss", "rdpo", "--epsilon", "0.7"), 2, r"--epsilon must be .* \[0, 0.5\)")
    fails(capsys, _argv(scored_task, out, "--loss", "rdpo", "--epsilon", "auto"), 1, "--epsilon auto needs")
    rows = rows_of(scored_task["data"])
    for i, row in enumerate(rows):
        row["eps"] = float("nan") if i == 4 else 0.1
    data = write_rows(tmp_path / "eps.jsonl", rows)
    argv = _argv(scored_task, out, "--loss", "cdpo", "--epsilon", "eps")
    fails(capsys, [*argv[:4], data, *argv[5:]], 1, r"row 5, field 'eps'")
    doubt_all = ["--label_correction", "drop", "--correct_with", "gold", "--correction_margin", "0"]
    for row in rows:
        row["gold_reward_chosen"], row["gold_reward_rejected"] = 0.0, 1.0
    data = write_rows(tmp_path / "wrong.jsonl", rows)
    argv = _argv(scored_task, out, *doubt_all)
    fails(capsys, [*argv[:4], data, *argv[5:]], 1, "nothing would be left to train on")
    assert not out.exists() or not (out / "model.safetensors").exists()


def _argv(scored_task, out, *extra):
    argv = ["align", "--model", scored_task["sft"], "--train_data", scored_task["data"], "--output_dir", str(out)]
    return [*argv, *TWO_STEPS, *extra]
