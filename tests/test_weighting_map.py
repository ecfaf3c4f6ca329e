"""``deltapref study map``: its recipes (every condition, arm and scorer) and its table, plot and
summary from per-seed reports (pipelines replaced by fixed rewards).

Guards: study/weighting_map.py."""

import json

import pytest

from deltapref.cli import main
from deltapref.study import weighting_map
from deltapref.study.weighting_map import ARMS, CONDITIONS, MAP_MARKERS, map_recipe


def test_each_condition_trains_every_arm_from_one_sft_model_with_the_gold_bound_at_its_temperature():
    for name, condition in CONDITIONS.items():
        stages = map_recipe(condition, 3000, 5e-4)["stages"]
        data = stages["data"]["args"]
        assert data["disjoint_test_prompts"] is True and all(data[k] == v for k, v in condition.items())
        assert {n for n, s in stages.items() if s["command"] == "train-scorer"} == {"reward", "difference", "oracle"}
        aligned = {n: s["args"] for n, s in stages.items() if s["command"] == "align"}
        assert set(aligned) == set(ARMS) and {a["model"] for a in aligned.values()} == {"{sft}"}
        assert {a["learning_rate"] for a in aligned.values()} == {5e-4}
        assert aligned["rc-gold"]["coef_temperature"] == condition.get("temperature", 0.5), name
        assert {n for n, s in stages.items() if s["command"] == "generate"} == {f"gen-{a}" for a in ("sft", *ARMS)}


def test_map_tables_every_arm_against_dpo_per_condition_and_draws_it(tmp_path, monkeypatch):
    gains = {"rc-gold": 0.2, "rc-reward": 0.1, "rc-difference": 0.0, "rc-oracle": -0.1, "drdo": 0.02}

    def fake_pipeline(recipe, run_dir):
        seed = recipe["stages"]["data"]["args"]["seed"]
        wobble = 0.01 * (seed % 3)  # seed-to-seed noise shared by the arms of one seed, and a bit of its own
        means = {"sft": 1.0, "dpo": 1.5 + wobble, **{a: 1.5 + wobble + g + wobble / 2 for a, g in gains.items()}}
        (run_dir / "report").mkdir(parents=True)
        (run_dir / "data").mkdir()
        noise = {s: {"auroc": 0.7} for s in ("reward", "difference", "oracle")}
        report = {"policies": {n: {"mean": m} for n, m in means.items()}, "noise": noise}
        (run_dir / "report" / "results.json").write_text(json.dumps(report))
        (run_dir / "data" / "task.json").write_text(json.dumps({"train_label_noise": 0.2}))

    monkeypatch.setattr(weighting_map, "run_pipeline", fake_pipeline)
    results, plot = tmp_path / "RESULTS.md", tmp_path / "plots" / "map.png"
    plot.parent.mkdir()
    results.write_text("# Results\n\nkept\n")
    out = tmp_path / "runs"
    argv = ["study", "map", "--seeds", "3", "--output_dir", str(out), "--results", str(results), "--plot", str(plot)]
    assert main(argv) == 0
    summary = json.loads((out / "map.json").read_text())
    assert summary["seeds"] == [3000, 3001, 3002] and set(summary["cells"]) == set(CONDITIONS)
    cell = summary["cells"]["flip 20%"]
    assert cell["gains"]["rc-gold"]["mean"] == pytest.approx(0.2 + 0.005) and cell["flipped"] == pytest.approx(0.2)
    verdicts = {arm: cell["gains"][arm]["verdict"] for arm in gains}
    assert verdicts["rc-gold"] == "reproduced" and verdicts["rc-oracle"] == "not reproduced"
    assert verdicts["drdo"] == "reproduced (smaller than SESOI)" and cell["auroc"] == pytest.approx(
        {"reward": 0.7, "difference": 0.7, "oracle": 0.7}
    )
    text = results.read_text()
    assert "kept" in text and text.count(MAP_MARKERS[0]) == 1 and "![weighting map](plots/map.png)" in text
    assert "| flip 20% | 20.0% |" in text and "**loss**" in text and "0.70 / 0.70 / 0.70" in text
    assert plot.stat().st_size > 5000
    assert main(["study", "map", "--seeds", "1", "--output_dir", str(out)]) == 2
