"""Pipelines end to end: stages cached by content and resumed after a failure, the quick demo's
report holds every method, a stage with changed arguments starts clean.

Guards: recipes/pipeline.py, recipes/demo.py, report/build.py, report/collect.py, report/plots.py."""

import json

import yaml

from deltapref.cli import main
from deltapref.recipes.pipeline import load_recipe, run_pipeline


def small_recipe(tmp_path, broken=False):
    return {
        "stages": {
            "data": {"command": "data synth", "args": {"n_train": 60, "n_test": 10}},
            "sft": {
                "command": "sft",
                "args": {
                    "model": "tiny:32:1",
                    "tokenizer": "{data}/tokenizer",
                    "train_data": "{data}/train.jsonl",
                    "max_steps": 2,
                    "disable_tqdm": True,
                    "max_length": 64,
                    "max_prompt_length": 16,
                },
            },
            "gen-sft": {
                "command": "generate",
                "args": {
                    "model": "{sft}",
                    "input": "{data}/test.jsonl" if not broken else "{data}/missing.jsonl",  # fails as it runs
                    "output": "{here}/completions.jsonl",
                    "max_new_tokens": 4,
                },
            },
        },
        "report": {"reward": "gold", "baselines": ["sft"]},
    }


def test_pipeline_caches_and_resumes_after_failure(tmp_path, capsys):
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(small_recipe(tmp_path, broken=True), sort_keys=False))
    assert main(["pipeline", "--recipe", str(recipe_path), "--output_dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "stage 'gen-sft'" in err and "gen-sft.log" in err
    log = (tmp_path / "run" / "logs" / "gen-sft.log").read_text()
    assert "deltapref generate: error:" in log and "missing.jsonl" in log  # its error line, and stderr had it too
    assert "deltapref generate: error:" in err
    assert "wrote the built-in gold-reward task" in (tmp_path / "run" / "logs" / "data.log").read_text()
    recipe_path.write_text(yaml.safe_dump(small_recipe(tmp_path), sort_keys=False))
    assert main(["pipeline", "--recipe", str(recipe_path), "--output_dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "data: cached" in out and "sft: cached" in out and "gen-sft: deltapref generate" in out
    assert "wrote 10 completions" in out  # a stage's results reach the terminal and its log alike
    assert "wrote 10 completions" in (tmp_path / "run" / "logs" / "gen-sft.log").read_text()
    assert (tmp_path / "run" / "report" / "report.html").exists()
    stages = run_pipeline(load_recipe(recipe_path), tmp_path / "run")
    assert all(s["cached"] for s in stages.values())
    changed = small_recipe(tmp_path)
    changed["stages"]["sft"]["args"]["max_steps"] = 3  # sft and everything reading it reruns
    stages = run_pipeline(changed, tmp_path / "run")
    assert [n for n, s in stages.items() if not s["cached"]] == ["sft", "gen-sft"]


def test_demo_quick_report_has_every_method(tmp_path):
    from deltapref.recipes.demo import METHODS

    assert main(["demo", "--quick", "--output_dir", str(tmp_path / "demo")]) == 0
    report = tmp_path / "demo" / "report"
    results = json.loads((report / "results.json").read_text())
    assert set(results["policies"]) == {"sft", *METHODS}
    for row in results["policies"].values():
        assert row["n"] == 200 and row["low"] < row["mean"] < row["high"]
        assert "vs_sft" in row and "vs_dpo" in row
    assert results["policies"]["dpo"]["mean"] > results["policies"]["sft"]["mean"]  # alignment helps
    assert set(results["scorers"]) == {"reward", "difference", "oracle"}
    for plot in ("training_curves.png", "rewards.png", "coefficients.png", "accuracy_by_score.png"):
        assert (report / plot).stat().st_size > 5000
    html = (report / "report.html").read_text()
    assert "data:image/png;base64" in html and "dpo-rc-diff" in html
    assert "img{max-width:100%" in html  # the training curves (wider than the page) fit it
    text = (report / "report.md").read_text()
    assert "mean length (words)" in text and "## Training" in text
    ipo_row = next(line for line in text.splitlines() if line.startswith("| ipo |"))
    assert ipo_row.rstrip(" |").endswith("(ipo)")  # a loss is shown with the objective it belongs to
    drdo_row = next(line for line in text.splitlines() if line.startswith("| drdo |") and "→" in line)
    assert " / " in drdo_row.split("|")[5]  # student / oracle margin


def test_a_stage_with_changed_arguments_starts_clean_and_an_interrupted_one_resumes(tmp_path, capsys):
    """Partial work of an attempt with the same key stays for the command to resume; whatever a
    run with other arguments left (a score run's .parts, stale files) is cleared before the
    stage reruns; the run's own folder names cannot name a stage."""
    import pytest

    from deltapref.recipes.pipeline import STAGE_RECORDS, PipelineError

    def recipe(seed):
        parts = {"input": "{data}/train.jsonl", "seed": seed, "parts": "a=20,b=rest"}
        return {
            "stages": {
                "data": {"command": "data synth", "args": {"n_train": 40, "n_test": 5}},
                "split": {"command": "data partition", "args": parts},
            }
        }

    run = tmp_path / "run"
    first = run_pipeline(recipe(0), run)
    stale = run / "split" / "out.jsonl.parts"
    stale.mkdir()
    record = run / STAGE_RECORDS / "split.json"
    record.write_text(json.dumps({"key": first["split"]["key"], "finished": False}))  # interrupted, same key
    assert not run_pipeline(recipe(0), run)["split"]["cached"]
    assert json.loads(record.read_text())["finished"]
    capsys.readouterr()
    again = run_pipeline(recipe(1), run)
    assert not stale.exists() and not again["split"]["cached"]
    assert "split: arguments or inputs changed since its last run: clearing" in capsys.readouterr().out
    assert (run / "split" / "a.jsonl").exists() and (run / "data" / "train.jsonl").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stages": {"logs": {"command": "data synth"}}}))
    with pytest.raises(PipelineError, match="'logs' cannot name a stage"):
        load_recipe(bad)
