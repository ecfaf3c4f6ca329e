"""The claims study command on a tiny grid (the study itself runs outside CI).

Guards: study/."""

import json

import pytest

from deltapref.study import CANDIDATES, run_study
from deltapref.study.markdown import END, START
from deltapref.study.recipes import methods

TINY = {
    "n_train": 80,
    "n_test": 24,
    "seeds": 2,
    "temperatures": (0.5,),  # several temperatures and rates: test_confirm_run_tables_the_primaries_with_their_power
    "lrs": (5e-4,),
    "epochs": (1, 2),
    "splits": True,
    "sft_epochs": 1,
    "scorer_epochs": 1,
    "widen": 0,  # no widening keeps the test short (widening: test_learning_rates_are_chosen_inside_a_widened_grid)
}
VERDICTS = {
    "reproduced",
    "not reproduced",
    "no effect of that size",
    "underpowered",
    "inconclusive",
    "smaller",
    "larger",
}


def test_study_writes_every_claim_with_a_verdict_and_keeps_the_rest(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\nhand-written intro\n\n{START}\nold\n{END}\n\n## Real data\n\nkept\n")
    summary = run_study(TINY, [0, 1], tmp_path / "runs", results, "deltapref study claims (tiny)")
    claims = {row[0] for row in summary["claims"]}
    assert claims == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"}
    assert all(row[-1].split(" (")[0] in VERDICTS for row in summary["claims"]), [row[-1] for row in summary["claims"]]
    text = results.read_text()
    assert "hand-written intro" in text and "## Real data\n\nkept" in text and "\nold\n" not in text
    assert text.count(START) == 1 and "C8" in text
    assert set(summary["lr_grid"]) == {0.5}  # chosen per label temperature
    assert "drdo-head" in summary["learning_rates"][0.5] and "drdo-head" not in methods(TINY, 1.0)
    assert (tmp_path / "runs" / "validation" / "T0.5" / "lr-0.0005").is_dir()
    grid, lrs = summary["lr_grid"][0.5], summary["learning_rates"][0.5]
    assert summary["chosen"] in CANDIDATES
    assert summary["chosen"] == max(CANDIDATES, key=lambda m: grid[lrs[m]][m])
    assert "T = 0.5:" in text
    seed_data = [(tmp_path / "runs" / "T0.5" / f"seed-{s}" / "data" / "train.jsonl").read_text() for s in (0, 1)]
    assert seed_data[0] != seed_data[1]  # each seed is its own draw of the task
    assert set(summary["aim"]) == {0.5} and all(p["n"] == 2 for p in summary["aim"].values())
    saved = json.loads((tmp_path / "runs" / "study.json").read_text())
    assert saved["claims"] == summary["claims"]


def test_study_seeds_are_a_count_or_a_list_and_reach_the_runs(tmp_path, monkeypatch):
    """``--seeds 5,6`` runs seeds 5 and 6 (fresh seeds for a verdict), ``--seeds 3`` seeds 0..2; the
    report's command is rendered from the options, without this machine's paths."""
    import deltapref.study as study
    from deltapref.cli import main

    calls = []

    def fake_run_study(profile, seeds, out, results, command):
        calls.append((seeds, command))
        return {"claims": [], "seconds": 0.0}

    monkeypatch.setattr(study, "run_study", fake_run_study)
    out = str(tmp_path / "somewhere" / "runs")
    for seeds in ("5,6", "3"):
        assert main(["study", "claims", "--profile", "quick", "--seeds", seeds, "--output_dir", out]) == 0
    assert main(["study", "claims", "--profile", "quick", "--first_seed", "100", "--output_dir", out]) == 0
    fresh = ["--first_seed", "7", "--seeds", "2"]
    assert main(["study", "claims", "--profile", "quick", *fresh, "--output_dir", out]) == 0
    assert calls == [
        ([5, 6], "deltapref study claims --profile quick --seeds 5,6"),
        ([0, 1, 2], "deltapref study claims --profile quick --seeds 3"),
        ([100, 101, 102], "deltapref study claims --profile quick --first_seed 100"),
        ([7, 8], "deltapref study claims --profile quick --seeds 2 --first_seed 7"),
    ]
    for bad in (["--seeds", "1"], ["--seeds", "4,4"], ["--seeds", "x"], ["--seeds", "3,4", "--first_seed", "1"]):
        assert main(["study", "claims", *bad]) == 2


def test_seed_lists_and_machine_description():
    from deltapref.config.commands import seed_list
    from deltapref.models.provenance import machine

    assert seed_list("3") == [0, 1, 2] and seed_list("7, 9") == [7, 9]
    assert "CPU cores" in machine() and ("GPU" in machine())


def test_primary_comparison_at_95_and_secondaries_corrected():
    """C1's primary (difference model, α = 0.5) is judged on its 95% interval; the other three
    on Bonferroni intervals over three (t quantile at 1 − 0.05/6), with Bonferroni-adjusted
    p-values (the verdict and the p-value come from the same correction)."""
    import math
    import statistics

    from deltapref.evaluation.stats import paired_difference, t_interval, t_quantile
    from deltapref.study.claims import PRIMARY, Comparison, rows_of

    baseline = [0.0] * 5
    gains = {
        "DPO+rc (reward model, α=1) > DPO": [0.10, 0.12, 0.08, 0.11, 0.09],  # clear even after correction
        "DPO+rc (reward model, α=0.5) > DPO": [0.05, 0.01, 0.04, 0.06, 0.02],  # 95% excludes 0, corrected not
        "DPO+rc (difference model, α=1) > DPO": [0.02, -0.03, 0.01, 0.00, -0.01],  # inside ±0.05, corrected
        PRIMARY["C1"]: [0.05, 0.01, 0.04, 0.06, 0.02],
    }
    comparisons = [Comparison("C1", text, "", "", paired_difference(v, baseline)) for text, v in gains.items()]
    rows = {row[1]: row for row in rows_of(comparisons)}
    assert rows[PRIMARY["C1"]][4:] == ["primary", "reproduced"]
    assert rows["DPO+rc (reward model, α=1) > DPO"][5] == "reproduced"
    # the same numbers as the primary: the corrected interval reaches past +SESOI (0.05) and below 0
    assert rows["DPO+rc (reward model, α=0.5) > DPO"][5].startswith("underpowered (~")
    assert rows["DPO+rc (difference model, α=1) > DPO"][5] == "no effect of that size"
    values = gains["DPO+rc (reward model, α=0.5) > DPO"]
    sd = statistics.stdev(values)
    half = t_quantile(4, 1 - 0.05 / 3) * sd / math.sqrt(5)
    assert half > t_quantile(4) * sd / math.sqrt(5)  # wider than the 95% interval
    low, high = 0.036 - half, 0.036 + half
    assert f"corrected 0.036 [{low:.3f}, {high:.3f}]" in rows["DPO+rc (reward model, α=0.5) > DPO"][4]
    p = t_interval(values)["p"]
    assert f"Bonferroni p {min(1.0, 3 * p):.3f}" in rows["DPO+rc (reward model, α=0.5) > DPO"][4]
    assert min(1.0, 3 * p) > 0.05  # not significant after correction: as the verdict says


def test_verdicts_read_hand_made_intervals_against_the_smallest_effect_of_interest():
    from deltapref.study.verdicts import SESOI, verdict

    sesoi = SESOI["gold reward"]
    assert verdict({"low": 0.01, "high": 0.2}, 0.0, sesoi) == "reproduced"
    assert verdict({"low": 0.0004, "high": 0.013}, 0.0, sesoi) == "reproduced (smaller than SESOI)"  # C1, confirm
    assert verdict({"low": -0.03, "high": -0.01}, 0.0, sesoi) == "not reproduced (smaller than SESOI)"
    assert verdict({"low": -0.2, "high": -0.01}, 0.0, sesoi) == "not reproduced"
    assert verdict({"low": -0.017, "high": 0.030}, 0.0, sesoi) == "no effect of that size"  # C1's, 2026-11-26
    assert verdict({"low": -0.3, "high": 0.049}, 0.0, sesoi) == "no effect of that size"  # +0.05 excluded
    wide = {"low": -0.1, "high": 0.2, "values": [0.1, -0.05, 0.2, -0.1, 0.1]}
    assert verdict(wide, 0.0, sesoi).startswith("underpowered (~")
    assert verdict({"low": 0.48, "high": 0.54}, 0.5, SESOI["AUROC"]) == "no effect of that size"  # AUROC vs chance
    assert verdict({"low": -0.1, "high": 0.2}, 0.0) == "inconclusive"  # no SESOI given
    assert verdict({"low": None, "high": None, "why": "one seed"}, 0.0, sesoi) == "inconclusive (one seed)"


def test_seeds_needed_is_the_textbook_paired_t_power():
    """Two-sided α = 0.05, 80% power: d = 0.5 needs 34 pairs, d = 0.8 needs 15 (Cohen 1988; G*Power's
    one-sample t test); C7's primary (SD 0.112 against a SESOI of 0.05) about 42 seeds."""
    from deltapref.study.verdicts import seeds_needed

    assert seeds_needed(1.0, 0.5) == 34
    assert seeds_needed(1.0, 0.8) == 15
    assert seeds_needed(0.112, 0.05) == 42
    assert seeds_needed(1.0, 0.5, level=1 - 0.05 / 3) > 34  # a Bonferroni level needs more
    assert seeds_needed(0.0, 0.05) is None


def test_learning_rates_are_chosen_inside_a_widened_grid():
    """One grid shared by every method: while some method's best rate is on an edge, the grid gains
    one step beyond that edge (every method runs there), until every best is interior or the
    widening budget of that side is spent; an interior-only grid adds nothing."""
    import math

    from deltapref.study import WIDEN_STEPS, interior_learning_rates

    peaks = {"dpo": 1e-4, "drdo": 5e-4, "far": 1e-7, "rrhf": 4e-3}  # validation reward peaks at these rates
    calls = []

    def validate(lr):
        calls.append(lr)
        return {m: -abs(math.log(lr / peaks[m])) for m in peaks}

    best, tried = interior_learning_rates((2.5e-4, 5e-4, 1e-3), validate, list(peaks))
    assert best["drdo"] == 5e-4 and best["dpo"] == pytest.approx(1.25e-4)  # inside after two steps down
    assert best["rrhf"] == pytest.approx(4e-3)  # inside after three steps up
    assert best["far"] == min(tried) == pytest.approx(2.5e-4 / 2**WIDEN_STEPS)  # budget spent: still on the edge
    assert max(tried) == pytest.approx(8e-3)  # one step past rrhf's best, then the high side stops
    assert len(calls) == len(set(calls)) == 3 + WIDEN_STEPS + 3  # no rate is run twice
    assert all(set(rewards) == set(peaks) for rewards in tried.values())  # every method at every rate

    calls.clear()
    peaks.update(dpo=5e-4, far=5e-4, rrhf=5e-4)
    interior_learning_rates((2.5e-4, 5e-4, 1e-3), validate, list(peaks))
    assert calls == [2.5e-4, 5e-4, 1e-3]


def test_learning_rates_are_chosen_on_the_mean_over_validation_draws(tmp_path, monkeypatch):
    """With ``validation_draws`` 2 every rate runs on seeds 1000 and 1001 and each method's rate is
    the best mean: one draw's preference can be outvoted; the first draw keeps its folder (so a
    rerun with more draws reuses it) and no draw is a test seed."""
    import deltapref.study as study
    from deltapref.cli import main

    names = methods(TINY, 0.5)
    by_draw = {"validation": {5e-4: 0.1, 2e-3: 0.0}, "validation-seed-1001": {5e-4: 0.0, 2e-3: 0.3}}
    runs = []

    def fake_run(recipe, run_dir):
        draw, lr = run_dir.parts[-3], float(run_dir.name.removeprefix("lr-"))
        runs.append((draw, recipe["stages"]["data"]["args"]["seed"], lr))
        return {"policies": {m: {"mean": by_draw[draw][lr] if m == "dpo" else 0.0} for m in names}}

    monkeypatch.setattr(study, "_run", fake_run)
    profile = {**TINY, "lrs": (5e-4, 2e-3), "validation_draws": 2}
    lrs, grid = study.validated_learning_rates(profile, 0.5, tmp_path)
    assert lrs["dpo"] == 2e-3 and grid[2e-3]["dpo"] == pytest.approx(0.15) and grid[5e-4]["dpo"] == pytest.approx(0.05)
    assert sorted(runs) == sorted(
        (draw, seed, lr) for draw, seed in (("validation", 1000), ("validation-seed-1001", 1001)) for lr in (5e-4, 2e-3)
    )
    assert study.validation_seeds(profile) == [1000, 1001] and study.validation_seeds(TINY) == [1000]
    assert main(["study", "claims", "--profile", "quick", "--validation_draws", "0"]) == 2


def test_confirm_profile_runs_the_primaries_only_on_fresh_seeds_of_the_fair_task():
    """The confirmatory recipes: DPO, SFT and each primary's two arms at its temperature, only the
    scorers they read, ranked lists scored by the pairs' noise, disjoint test prompts, 4 samples per
    prompt with the seed shared by every arm; its seeds start at 2000, never a validation draw."""
    from deltapref.study import StudyConfig
    from deltapref.study.recipes import PROFILES, claims_recipe

    profile = PROFILES["confirm"]
    stages = {t: claims_recipe(profile, t, 2000, {"default": 5e-4})["stages"] for t in (0.5, 1.0)}
    aligned = {t: sorted(n for n, s in stages[t].items() if s["command"] == "align") for t in stages}
    assert aligned == {0.5: ["dpo", "dpo-rc-diff-a0.5", "kto", "kto-rc-diff", "rrhf", "rrhf-rc"], 1.0: ["dpo", "drdo"]}
    scorers = {t: sorted(n for n, s in stages[t].items() if s["command"] == "train-scorer") for t in stages}
    assert scorers == {0.5: ["difference"], 1.0: ["oracle"]}
    assert set(stages[1.0]["score"]["args"]) & {"reward_model", "difference_model"} == set()
    for t in stages:
        data = stages[t]["data"]["args"]
        assert (data["ranked_scores"], data["disjoint_test_prompts"], data["temperature"]) == ("labels", True, t)
        generated = [s["args"] for n, s in stages[t].items() if s["command"] == "generate"]
        assert len(generated) == len(aligned[t]) + 1 and {(g["seed"], g["num_samples"]) for g in generated} == {
            (2000, 4)
        }
    assert StudyConfig(profile="confirm").seed_list() == list(range(2000, 2000 + profile["seeds"]))
    assert StudyConfig(profile="confirm", seeds="3").seed_list() == [2000, 2001, 2002]
    with pytest.raises(ValueError, match="validation draws"):
        StudyConfig(profile="confirm", seeds="2", first_seed=999, validation_draws=2)


def test_confirm_run_tables_the_primaries_with_their_power(tmp_path, monkeypatch):
    """A confirmatory study (pipelines replaced by fixed rewards): one row per primary at 95%, each
    with its paired SD, the power of its seeds against SESOI and the seeds 80% would need; written
    between the confirm markers, the claims section kept."""
    import statistics

    import deltapref.study as study
    from deltapref.study.markdown import CONFIRM_MARKERS
    from deltapref.study.recipes import PROFILES
    from deltapref.study.verdicts import power, seeds_needed

    gains = {"dpo-rc-diff-a0.5": [0.01, -0.01, 0.0, 0.02], "rrhf-rc": [0.3, 0.2, 0.25, 0.35]}
    gains |= {"kto-rc-diff": [-0.3, -0.2, -0.25, -0.35], "drdo": [0.2, -0.1, 0.1, -0.15]}

    def fake_run(recipe, run_dir):
        seed = recipe["stages"]["data"]["args"]["seed"]
        names = [n.removeprefix("gen-") for n, s in recipe["stages"].items() if s["command"] == "generate"]
        gain = {m: g[seed - 2000] if seed >= 2000 else 0.0 for m, g in gains.items()}
        base = {"rrhf-rc": "rrhf", "kto-rc-diff": "kto"}
        mean = {n: 1.0 + gain.get(n, 0.0) + (0.1 * seed % 0.7 if n in base.values() else 0.0) for n in names}
        mean |= {m: mean[b] + gain[m] for m, b in base.items() if m in names}
        return {"policies": {n: {"mean": v} for n, v in mean.items()}}

    monkeypatch.setattr(study, "_run", fake_run)
    monkeypatch.setattr(study, "_noise", lambda stage_dir: {})
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\n{START}\nclaims kept\n{END}\n")
    profile = {**PROFILES["confirm"], "validation_draws": 1}
    summary = study.run_study(profile, [2000, 2001, 2002, 2003], tmp_path / "runs", results, "deltapref study claims")
    verdicts = {row[1]: row[5] for row in summary["claims"]}
    assert all(row[4] == "primary" for row in summary["claims"])
    assert (
        verdicts["RRHF+rc > RRHF"] == "reproduced" and verdicts["KTO+rc (difference model) > KTO"] == "not reproduced"
    )
    assert verdicts["DPO+rc (difference model, α=0.5) > DPO"] == "no effect of that size"
    assert verdicts["DRDO ≥ DPO (T = 1.0)"].startswith("underpowered (~")
    drdo = summary["power"]["DRDO ≥ DPO (T = 1.0)"]
    sd = statistics.stdev(gains["drdo"])
    assert drdo["sd"] == pytest.approx(sd) and drdo["seeds_needed"] == seeds_needed(sd, 0.05)
    assert drdo["power"] == pytest.approx(power(sd, 0.05, 4)) and drdo["power"] < 0.8
    text = results.read_text()
    assert "claims kept" in text and text.count(CONFIRM_MARKERS[0]) == 1 and "power (4 seeds)" in text
    assert f"| {drdo['seeds_needed']} |" in text


def test_power_is_the_noncentral_t_of_the_seeds_needed():
    from deltapref.study.verdicts import power

    assert power(1.0, 0.5, 34) >= 0.8 > power(1.0, 0.5, 33)  # d = 0.5: 34 pairs (Cohen 1988)
    assert power(1.0, 0.0, 10) == pytest.approx(0.025)  # no effect: rejections in the effect's direction, α/2


def test_the_study_keeps_every_scorer_an_arm_names_as_its_delta_source():
    """Arms of the noisy-label objectives name scorers through other options than --coef."""
    from deltapref.study.recipes import scorers_needed

    arms = {
        "rdpo-diff": {"loss": "rdpo", "epsilon": "difference"},
        "odpo-reward": {"loss": "odpo", "odpo_offset": "reward"},
        "dpo-flip-oracle": {"loss": "dpo", "label_correction": "flip", "correct_with": "oracle"},
        "rdpo-global": {"loss": "rdpo", "epsilon": "0.2"},
    }
    assert scorers_needed(arms) == {"difference", "reward", "oracle"}
    assert scorers_needed({"cdpo-gold": {"loss": "cdpo", "epsilon": "gold"}}) == set()
    assert scorers_needed({"edpo": {"loss": "edpo"}}) == {"reward"}
