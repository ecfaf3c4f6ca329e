"""``deltapref study map`` (the fair map) and ``deltapref study decide`` (the decisive test): their
recipes (cross-fitted scorers, every arm at every rate on validation, the chosen rates on test),
rates and picks made on validation alone, the cell's statistics (gains, Holm, recovery, weights)
and the sections they write, from fake pipelines with known rewards.

Guards: study/weighting_map.py, study/map_arms.py, study/map_markdown.py, study/decisive.py,
study/decisive_markdown.py."""

import json
import random

import numpy as np
import pytest

from deltapref.cli import main
from deltapref.study import decisive, weighting_map
from deltapref.study.map_arms import (
    ARMS,
    CONDITIONS,
    CONTROLS,
    LEARNED,
    LEARNING_RATES,
    learned_candidates,
    rate_stage,
    seed_recipe,
    validation_recipe,
)
from deltapref.study.verdicts import corrected_verdict
from deltapref.study.weighting_map import MAP_MARKERS, recovery
from helpers import write_rows


def aligned(recipe):
    return {n: s["args"] for n, s in recipe["stages"].items() if s["command"] == "align"}


def test_validation_trains_every_arm_at_every_rate_from_one_sft_model_and_cross_fitted_scorers():
    for name, condition in CONDITIONS.items():
        recipe = validation_recipe(condition, 1000, list(ARMS))
        stages = recipe["stages"]
        assert all(stages["data"]["args"][k] == v for k, v in condition.items())
        scorers = {n: s["args"] for n, s in stages.items() if s["command"] == "train-scorer"}
        assert set(scorers) == {"reward", "difference", "oracle"}
        assert all(a["cross_fit"] == 3 and a["eval_data"] is None for a in scorers.values())
        arms = aligned(recipe)
        assert set(arms) == {rate_stage(a, lr) for a in ARMS for lr in LEARNING_RATES}
        assert {a["model"] for a in arms.values()} == {"{sft}"}
        tau = condition.get("temperature", 0.5)
        assert arms[rate_stage("gold-sign", 5e-4)]["coef_temperature"] == tau, name
        assert {n for n, s in stages.items() if s["command"] == "generate"} == {f"gen-{a}" for a in ("sft", *arms)}


def test_a_test_seed_trains_each_arm_at_its_rate_and_only_the_scorers_its_arms_read():
    recipe = seed_recipe(CONDITIONS["flip-30"], 6000, {"dpo": 5e-4, "rc-difference-a2": 1e-3, "rdpo-auto": 2.5e-4}, 4)
    arms = aligned(recipe)
    assert {n: a["learning_rate"] for n, a in arms.items()} == {
        "dpo": 5e-4,
        "rc-difference-a2": 1e-3,
        "rdpo-auto": 2.5e-4,
    }
    scorers = {n for n, s in recipe["stages"].items() if s["command"] == "train-scorer"}
    assert scorers == {"difference", "reward"}  # the reward model's held-out Δ gives auto ε
    assert recipe["stages"]["gen-dpo"]["args"]["num_samples"] == 4
    assert set(learned_candidates()) <= {a for a, (g, _) in ARMS.items() if g == LEARNED} - set(CONTROLS)


# every arm's true effect over DPO (gold reward) in the fake pipelines; the rest 0
EFFECT = {"ceiling": 0.4, "gold": 0.3, "gold-sign": 0.25, "rc-difference-a2": 0.12, "drdo": -0.3}
BEST_RATE = {"rc-difference-a2": 1e-3}  # validation prefers this rate for this arm, 5e-4 for the rest


def fake_pipeline(recipe, run_dir):
    """Rewards with a known structure: a seed effect shared by the arms, each arm's effect, a
    small per-arm noise; a validation arm loses 0.1 per grid step from its best rate."""
    seed = recipe["stages"]["data"]["args"]["seed"]
    rng = random.Random(seed)
    shared = rng.gauss(0, 0.05)
    means = {"sft": 1.0 + shared}
    for stage, args in aligned(recipe).items():
        arm = next(a for a in sorted(ARMS, key=len, reverse=True) if stage == a or stage.startswith(a + "-lr"))
        steps = abs(np.log2(args["learning_rate"] / BEST_RATE.get(arm, 5e-4)))
        test_bonus = 0.5 if seed >= 5000 and arm == "drdo" else 0.0  # test seeds must never pick anything
        means[stage] = 1.5 + shared + EFFECT.get(arm, 0.0) - 0.1 * steps + rng.gauss(0, 0.01) + test_bonus
    (run_dir / "report").mkdir(parents=True)
    (run_dir / "data").mkdir()
    (run_dir / "score").mkdir()
    noise = {s: {"auroc": 0.7} for s in ("reward", "difference", "oracle")}
    report = {"policies": {n: {"mean": m} for n, m in means.items()}, "noise": noise}
    (run_dir / "report" / "results.json").write_text(json.dumps(report))
    (run_dir / "data" / "task.json").write_text(json.dumps({"train_label_noise": 0.3}))
    rows = []
    for i in range(40):  # the pairs the weights describe: every third label wrong
        gap = (1 + i % 4) * (-1 if i % 3 == 0 else 1)
        row = {"gold_reward_chosen": gap, "gold_reward_rejected": 0.0, "reward_chosen": gap / 2}
        rows.append(dict(row, reward_rejected=0.0, diff=gap / 3, oracle_reward_chosen=gap, oracle_reward_rejected=0.0))
    write_rows(run_dir / "score" / "train_scored.jsonl", rows)


@pytest.fixture
def map_run(tmp_path, monkeypatch):
    monkeypatch.setattr(weighting_map, "run_pipeline", fake_pipeline)
    results, plot, out = tmp_path / "RESULTS.md", tmp_path / "plots" / "map.png", tmp_path / "runs"
    plot.parent.mkdir()
    results.write_text("# Results\n\nkept\n")
    argv = ["study", "map", "--conditions", "flip-30,bt-1", "--seeds", "4", "--output_dir", str(out)]
    assert main([*argv, "--results", str(results), "--plot", str(plot)]) == 0
    return json.loads((out / "map.json").read_text()), results, plot


def test_map_chooses_rates_on_validation_and_reads_gains_recovery_and_weights_per_cell(map_run):
    summary, results, plot = map_run
    assert summary["seeds"] == [5000, 5001, 5002, 5003] and list(summary["cells"]) == ["flip-30", "bt-1"]
    assert summary["rates"]["flip-30"]["rc-difference-a2"] == 1e-3 and summary["rates"]["flip-30"]["dpo"] == 5e-4
    cell = summary["cells"]["flip-30"]
    assert cell["gains"]["gold"]["mean"] == pytest.approx(0.3, abs=0.03)
    assert cell["gains"]["gold"]["verdict"] == "reproduced" and cell["gains"]["drdo"]["mean"] > 0  # test bonus
    assert cell["gains"]["gold"]["holm_p"] >= cell["gains"]["gold"]["p"]
    assert cell["recovery"]["gold"]["mean"] == pytest.approx(0.75, abs=0.1)
    assert cell["recovery"]["gold"]["low"] <= cell["recovery"]["gold"]["mean"] <= cell["recovery"]["gold"]["high"]
    weights = cell["weights"]
    assert weights["dpo"]["mean"] == 1 and weights["dpo"]["on_wrong"] == pytest.approx(14 / 40)
    assert weights["gold"]["on_wrong"] < weights["gold-magnitude"]["on_wrong"]  # the sign is what keeps it off
    assert weights["gold-shuffled"]["mean"] == pytest.approx(weights["gold"]["mean"])
    assert "rdpo" not in weights and "flip" not in weights  # no weights: their cells read —
    text = results.read_text()
    assert "kept" in text and text.count(MAP_MARKERS[0]) == 1 and "![fair weighting map](plots/map.png)" in text
    assert "### flip 30%: 30.0% of training labels wrong" in text and "| gold-shuffled | gold |" in text
    assert plot.stat().st_size > 5000


def test_the_decisive_test_picks_on_validation_and_judges_its_primaries_with_holm(map_run, tmp_path, monkeypatch):
    summary, results, _ = map_run
    chosen = decisive.picks(summary)
    # validation says rc-difference-a2 (its effect); drdo's test-seed bonus must not pick it
    assert {c: p["arm"] for c, p in chosen.items()} == {"flip-30": "rc-difference-a2", "bt-1": "rc-difference-a2"}
    assert {p["rdpo"] for p in chosen.values()} <= {"rdpo", "rdpo-auto"}
    map_json = tmp_path / "map.json"
    map_json.write_text(json.dumps(summary))
    confirm = tmp_path / "confirm.json"
    seeds = range(10)
    confirm.write_text(
        json.dumps(
            {
                "rewards": {
                    "0.5": {
                        m: [1.0 + 0.01 * s + (0.02 if "rc" in m else 0) for s in seeds]
                        for m in ("dpo", "dpo-rc-diff-a0.5", "kto", "kto-rc-diff", "rrhf", "rrhf-rc")
                    },
                    "1.0": {m: [1.0 + 0.02 * s * (m == "drdo") for s in seeds] for m in ("dpo", "drdo")},
                }
            }
        )
    )
    monkeypatch.setattr(decisive, "run_pipeline", fake_pipeline)
    out = tmp_path / "decide"
    common = ["study", "decide", "--map", str(map_json), "--confirm", str(confirm), "--output_dir", str(out)]
    assert main([*common, "--pilot", "true"]) == 0
    assert json.loads((out / "pilot.json").read_text())["seeds"] == [5900]
    assert main([*common, "--max_seeds", "5", "--results", str(results)]) == 0
    result = json.loads((out / "decisive.json").read_text())
    needed = max(p["seeds_needed"] for p in result["plan"].values())
    assert result["seeds"] == [6000 + i for i in range(min(5, needed))] and len(result["plan"]) == 4
    rows = result["primaries"]["decisive"]
    assert list(rows) == [
        "rc-difference-a2 − dpo (flip 30%)",
        f"rc-difference-a2 − {chosen['flip-30']['rdpo']} (flip 30%)",
        "rc-difference-a2 − dpo (BT, T = 1)",
        f"rc-difference-a2 − {chosen['bt-1']['rdpo']} (BT, T = 1)",
    ]
    assert all(r["holm_p"] >= r["interval"]["p"] for r in rows.values())
    assert rows["rc-difference-a2 − dpo (flip 30%)"]["verdict"] == "reproduced"
    assert len(result["primaries"]["confirm_holm_p"]) == 4
    text = results.read_text()
    assert "## The decisive test" in text and "## Where magnitude pays: the fair map" in text and "kept" in text


@pytest.mark.parametrize(
    "mean, holm_p, low, high, said",
    [
        (0.1, 0.01, 0.02, 0.2, "reproduced"),
        (-0.1, 0.01, -0.2, -0.02, "not reproduced"),
        (0.0, 0.5, -0.04, 0.04, "no effect of that size"),
        (0.02, 0.3, -0.03, 0.09, "underpowered"),
        (0.0, 0.6, -0.09, 0.09, "underpowered; harm not excluded"),
        (-0.12, 0.3, -0.27, 0.03, "no effect of that size; harm not excluded"),  # KTO+rc's reading
    ],
)
def test_corrected_verdicts_read_harm_as_well_as_benefit(mean, holm_p, low, high, said):
    assert corrected_verdict(mean, holm_p, {"low": low, "high": high}, 0.05) == said


def test_recovery_is_the_share_of_the_ceilings_gain_with_an_interval_around_it():
    dpo, ceiling = [1.0, 1.1, 0.9, 1.0], [1.4, 1.5, 1.3, 1.4]
    half = recovery([1.2, 1.3, 1.1, 1.2], dpo, ceiling)
    assert half["mean"] == pytest.approx(0.5) and half["low"] == pytest.approx(0.5) == half["high"]
    noisy = recovery([1.25, 1.25, 1.1, 1.2], dpo, ceiling)
    assert noisy["low"] < noisy["mean"] < noisy["high"]


def test_map_options_are_checked_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["study", "map", "--conditions", "flip-40", "--output_dir", str(out)]) == 2
    assert "unknown flip-40; known: bt-0.5, bt-1, flip-10, flip-30" in capsys.readouterr().err
    assert main(["study", "map", "--seeds", "1", "--output_dir", str(out)]) == 2
    assert main(["study", "map", "--seeds", "1000,1001", "--output_dir", str(out)]) == 2
    assert not out.exists()
