"""The magnitude tools: order-balanced difference-model numbers, paired statistics over seeds,
cross-fitted scoring, gold and MADPO weights, weight normalization, DRDO's readings of z, sweep.

Guards: coefficients.py, scorer_kinds/difference.py, scorers/run.py, evaluation/scorer_eval.py,
evaluation/stats.py, recipes/sweep.py."""

import json
import math

import pytest
import torch
import yaml

from conftest import tiny_training_args
from deltapref.cli import main
from deltapref.coefficients import Weighting, madpo_weight
from deltapref.config.commands import TokenizationConfig
from deltapref.data.splits import fold_of
from deltapref.errors import DeltaprefError
from deltapref.evaluation.scorer_eval import evaluate_scorer
from deltapref.evaluation.scorer_metrics import auroc, order_report
from deltapref.evaluation.stats import paired_difference, resampled_interval
from deltapref.models.loading import load_scorer
from deltapref.objectives import POLICY_OBJECTIVES, PolicyLossOptions, PolicyOutputs, pair_coefficients
from deltapref.scorer_kinds.inference import pointwise_rewards
from deltapref.scorers.run import train_one
from deltapref.stages.train_scorer import TrainScorerConfig


def sig(x):
    return 1 / (1 + math.exp(-x))


def rows_of(path):
    return [json.loads(line) for line in open(path)]


def test_balanced_accuracy_on_a_file_and_its_swap_sums_to_one(builtin_task, tmp_path):
    config = TrainScorerConfig(
        kind="difference",
        model="tiny:32:1",
        tokenizer=str(builtin_task / "tokenizer"),
        train_data=str(builtin_task / "train.jsonl"),
        max_length=96,
        max_prompt_length=24,
    )
    train_one(config, tiny_training_args(tmp_path / "dm", max_steps=2))  # barely trained
    swapped = tmp_path / "swapped.jsonl"
    rows = rows_of(builtin_task / "test.jsonl")
    swapped.write_text("".join(json.dumps(dict(r, chosen=r["rejected"], rejected=r["chosen"])) + "\n" for r in rows))
    tokenization = TokenizationConfig(96, 24)
    a, b = (
        evaluate_scorer(str(tmp_path / "dm"), "difference", str(f), tokenization)
        for f in (builtin_task / "test.jsonl", swapped)
    )
    assert a["accuracy"] + b["accuracy"] == pytest.approx(1.0, abs=1e-12)
    assert a["accuracy_chosen_first"] + b["accuracy_rejected_first"] == pytest.approx(1.0, abs=1e-12)


def test_order_report_flags_an_order_blind_model():
    forward = [0.9, 1.1, 1.0, 1.2, 0.8]  # says "the first is better" whatever the order
    blind = order_report(forward, [f + 0.01 for f in forward])
    assert blind["order_insensitive"] and blind["order_dependence"] < 0.05 and blind["order_correlation"] > 0.99
    assert blind["accuracy_chosen_first"] == 1.0 and blind["accuracy_rejected_first"] == 0.0
    sound = order_report([1.0, -0.5, 2.0], [-1.0, 0.5, -2.0])
    assert sound["order_dependence"] == 1.0 and not sound["order_insensitive"]


def test_paired_difference_interval_by_hand():
    result = paired_difference([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])  # differences 1, 2, 3: sd 1, t(2) = 4.30265
    assert result["mean"] == 2.0 and result["wins"] == 3 and not result["excludes_zero"]
    assert (result["low"], result["high"]) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)))
    result = paired_difference([1.5, 1.7, 1.3, 1.6, 1.4], [0.5] * 5)  # differences 1.0 ± 0.158
    half = 2.776445 * math.sqrt(0.025) / math.sqrt(5)
    assert (result["low"], result["high"]) == pytest.approx((1 - half, 1 + half)) and result["excludes_zero"]


def test_resampled_splits_interval_by_hand():
    """Nadeau–Bengio: differences 0.01, 0.03, 0.02 on 3 splits of 60 test / 100 train pairs have
    s² = 1e-4 and se = sqrt(1e-4 · (1/3 + 0.6)), wider than the plain t interval's s/sqrt(3)."""
    result = resampled_interval([0.01, 0.03, 0.02], test_size=60, train_size=100)
    se = math.sqrt(1e-4 * (1 / 3 + 0.6))
    assert result["mean"] == pytest.approx(0.02)
    assert (result["low"], result["high"]) == pytest.approx((0.02 - 4.302653 * se, 0.02 + 4.302653 * se))
    t = 0.02 / se  # Student t on 2 df: two-sided p = 1 − t / sqrt(2 + t²)
    assert result["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t))
    plain = paired_difference([0.01, 0.03, 0.02], [0.0] * 3)
    assert plain["high"] - plain["low"] < result["high"] - result["low"]
    with pytest.raises(DeltaprefError, match="at least 2 splits"):
        resampled_interval([0.01], 60, 100)


def test_auroc_by_hand():
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.9, 0.2, 0.5, 0.1], [True, False, True, False]) == 1.0
    assert auroc([0.5, 0.5, 0.5], [True, False, True]) == 0.5
    assert auroc([0.1, 0.9, 0.4], [True, False, False]) == 0.0


def test_gold_coefficients_are_sigma_of_the_gold_gap_over_t_to_the_alpha(builtin_task):
    rows = rows_of(builtin_task / "train.jsonl")[:6]
    batch = {c: torch.tensor([r[c] for r in rows]) for c in ("gold_reward_chosen", "gold_reward_rejected")}
    options = PolicyLossOptions("dpo", coef="gold", alpha=0.5, coef_temperature=0.5)
    expected = [sig((r["gold_reward_chosen"] - r["gold_reward_rejected"]) / 0.5) ** 0.5 for r in rows]
    assert pair_coefficients(batch, options).tolist() == pytest.approx(expected, rel=1e-5)


def madpo_by_hand(delta, c_max=2.0, c_min=0.5, lam=1.0, tau=2.0):
    if delta <= -tau:
        return 1.0
    c = c_min + (c_max - c_min) / (1 + (c_max - 1) / (1 - c_min) * math.exp(lam * (abs(delta) - tau)))
    return sig(c * delta) / sig(delta)


@pytest.mark.parametrize("delta", [-3.0, -2.0, -0.5, 0.0, 0.5, 2.0, 6.0])
def test_madpo_weights_by_hand(delta):
    assert madpo_weight(torch.tensor([delta], dtype=torch.float64)).item() == pytest.approx(madpo_by_hand(delta))


def test_madpo_up_weights_close_pairs_where_rdo_down_weights_them():
    deltas = torch.tensor([0.3, 4.0], dtype=torch.float64)
    madpo, rdo = Weighting(scheme="madpo")(deltas), Weighting(alpha=1.0)(deltas)
    assert madpo[0] > 1 > madpo[1] and madpo[0] > madpo[1]  # close pair above 1, easy pair below
    assert rdo[0] < rdo[1]  # RDO: the other way round
    assert madpo_weight(torch.tensor([2.0])).item() == pytest.approx(1.0)  # c(τ) = 1


def test_drdo_token_reading_uses_the_per_token_unlikelihood():
    batch = {"oracle_reward_chosen": torch.tensor([1.0]), "oracle_reward_rejected": torch.tensor([-1.0])}
    logps, counts = torch.tensor([-2.0, -3.0]), torch.tensor([2.0, 4.0])
    outputs = PolicyOutputs(logps, counts, 2, torch.tensor([0.5, 0.25]), unlikely=torch.tensor([-0.1, -0.8]))
    options = PolicyLossOptions("drdo", student_reward="head", drdo_logp="token", drdo_focal_weight=0.1, drdo_gamma=2.0)
    assert POLICY_OBJECTIVES["drdo"].needs_unlikelihood(options)
    loss, _ = POLICY_OBJECTIVES["drdo"].compute(outputs, batch, options)
    z_c, z_r, log1m_r = -1.0, -0.75, -0.8 / 4
    focal = -0.1 * (1 - sig(z_c - z_r)) ** 2 * (z_c - log1m_r)
    assert loss.item() == pytest.approx((2.0 - 0.25) ** 2 + focal, rel=1e-6)


def test_cross_fit_never_scores_a_pair_with_a_scorer_that_saw_it(builtin_task, tmp_path):
    out = tmp_path / "cf"
    argv = [
        "train-scorer",
        "--kind",
        "reward",
        "--cross_fit",
        "3",
        "--model",
        "tiny:32:1",
        "--tokenizer",
        str(builtin_task / "tokenizer"),
        "--train_data",
        str(builtin_task / "train.jsonl"),
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        "--max_length",
        "96",
        "--max_prompt_length",
        "24",
        "--disable_tqdm",
        "true",
    ]
    assert main(argv) == 0
    assert json.loads((out / "cross_fit.json").read_text())["members"] == ["fold-0", "fold-1", "fold-2"]
    seen = [{json.dumps(r, sort_keys=True) for r in rows_of(out / f"fold-{i}.train.jsonl")} for i in range(3)]
    scored = tmp_path / "scored.jsonl"
    assert (
        main(
            [
                "score",
                "--input",
                str(builtin_task / "train.jsonl"),
                "--output",
                str(scored),
                "--reward_model",
                str(out),
                "--max_length",
                "96",
                "--max_prompt_length",
                "24",
            ]
        )
        == 0
    )
    rows = rows_of(scored)
    originals = rows_of(builtin_task / "train.jsonl")
    folds = [fold_of(r, 3) for r in originals]
    assert sorted(set(folds)) == [0, 1, 2]
    for original, fold in zip(originals, folds):
        assert json.dumps(original, sort_keys=True) not in seen[fold]  # its scorer never saw it
        assert all(json.dumps(original, sort_keys=True) in seen[i] for i in range(3) if i != fold)
    for fold in range(3):  # and the value is that fold model's
        index = folds.index(fold)
        model, tokenizer = load_scorer(str(out / f"fold-{fold}"))
        value = pointwise_rewards(
            model,
            tokenizer,
            [originals[index]["prompt"]],
            [originals[index]["chosen"]],
            TokenizationConfig(96, 24),
            progress=False,
        )[0]
        assert rows[index]["reward_chosen"] == pytest.approx(value, abs=1e-6)


def test_normalized_weights_have_mean_one(scored_task, tmp_path):
    argv = [
        "align",
        "--model",
        scored_task["sft"],
        "--train_data",
        scored_task["data"],
        "--coef",
        "reward",
        "--coef_normalize",
        "true",
        "--output_dir",
        str(tmp_path / "p"),
        "--max_steps",
        "2",
        "--disable_tqdm",
        "true",
    ]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "p" / "train_summary.json").read_text())
    weights = [sig(r["reward_chosen"] - r["reward_rejected"]) for r in rows_of(scored_task["data"])]
    assert summary["weights_mean_before_normalization"] == pytest.approx(sum(weights) / len(weights), rel=1e-6)
    assert summary["options"]["coef"] == "reward" and summary["options"]["coef_normalize"] is True  # as asked


def test_sweep_aggregates_paired_differences(builtin_task, tmp_path, capsys):
    tiny = {
        "model": "tiny:32:1",
        "tokenizer": "{data}/tokenizer",
        "disable_tqdm": True,
        "max_length": 96,
        "max_prompt_length": 24,
    }
    recipe = {
        "stages": {
            "data": {"command": "data synth", "args": {"n_train": 120, "n_test": 40}},
            "sft": {
                "command": "sft",
                "args": dict(tiny, train_data="{data}/train.jsonl", max_steps=15, learning_rate=3e-3),
            },
            "dpo": {
                "command": "align",
                "args": dict(tiny, model="{sft}", tokenizer=None, train_data="{data}/train.jsonl", max_steps=8),
            },
            "ipo": {
                "command": "align",
                "args": dict(
                    tiny, model="{sft}", tokenizer=None, train_data="{data}/train.jsonl", max_steps=8, loss="ipo"
                ),
            },
            **{
                f"gen-{m}": {
                    "command": "generate",
                    "args": {
                        "model": "{" + m + "}",
                        "input": "{data}/test.jsonl",
                        "output": "{here}/completions.jsonl",
                        "max_new_tokens": 8,
                    },
                }
                for m in ("sft", "dpo", "ipo")
            },
        },
        "report": {"reward": "gold", "baselines": ["sft"]},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "sweep"
    assert (
        main(["sweep", "--recipe", str(path), "--seeds", "0,1,2", "--baseline", "dpo", "--output_dir", str(out)]) == 0
    )
    summary = json.loads((out / "sweep.json").read_text())
    per_seed = {s: json.loads((out / f"seed-{s}" / "report" / "results.json").read_text()) for s in (0, 1, 2)}
    for seed in (0, 1, 2):
        seeded = yaml.safe_load((out / f"seed-{seed}" / "recipe.yaml").read_text())
        assert seeded["stages"]["data"]["args"]["seed"] == seed == seeded["stages"]["dpo"]["args"]["seed"]
    ipo = [per_seed[s]["policies"]["ipo"]["mean"] for s in (0, 1, 2)]
    dpo = [per_seed[s]["policies"]["dpo"]["mean"] for s in (0, 1, 2)]
    assert summary["methods"]["ipo"]["vs_baseline"]["differences"] == pytest.approx([a - b for a, b in zip(ipo, dpo)])
    measured, expected = summary["methods"]["ipo"]["vs_baseline"], paired_difference(ipo, dpo)
    assert measured.keys() == expected.keys()
    for key, value in expected.items():  # pytest 9's approx() refuses a dict holding a list: compare field by field
        assert measured[key] == (pytest.approx(value) if isinstance(value, (float, list)) else value), key
    assert (out / "sweep.md").read_text().count("| ipo |") == 1 and (out / "sweep.png").exists()
    assert len({json.dumps(per_seed[s]["policies"]["sft"]["mean"]) for s in (0, 1, 2)}) == 3  # seeds differ


def test_statistics_match_the_hand_written_versions_they_replaced():
    """scipy-backed wrappers against the old hand-written values: the t table, Holm by hand,
    AUROC by ranks with ties."""
    from deltapref.evaluation.stats import holm, t_interval, t_quantile

    for df, table in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t_quantile(df) == pytest.approx(table, abs=1e-3)
    assert t_quantile(40) == pytest.approx(2.0211, abs=1e-4)  # the Cornish–Fisher value it replaced
    summary = t_interval([1.0, 2.0, 3.0])
    assert summary["p"] == pytest.approx(0.07418, abs=1e-4)  # t = 2/(1/sqrt(3)) = 3.464 on 2 df
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3·0.01, max(2·0.03, .), 1·0.04 → .06
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert auroc([0.3, 0.3, 0.9, 0.1], [True, False, True, False]) == pytest.approx(0.875)  # (1 + ½ + 1 + 1)/4


def test_sweep_of_scorers_over_data_splits(tmp_path):
    """A recipe that only trains scorers (as the HH split study does): per split, held-out accuracy
    paired with the reward model's, and accuracy by |score| bucket pooled over the splits."""
    tiny = {"model": "tiny:32:1", "tokenizer": "{data}/tokenizer", "disable_tqdm": True, "max_steps": 10}
    scorer = dict(
        tiny, train_data="{parts}/scorer.jsonl", eval_data="{parts}/test.jsonl", max_length=96, max_prompt_length=24
    )
    recipe = {
        "stages": {
            "data": {"command": "data synth", "args": {"n_train": 160, "n_test": 20, "seed": 0}},
            "parts": {
                "command": "data partition",
                "args": {"input": "{data}/train.jsonl", "parts": "scorer=100,test=rest"},
            },
            "reward": {"command": "train-scorer", "args": dict(scorer, kind="reward")},
            "difference": {"command": "train-scorer", "args": dict(scorer, kind="difference")},
        },
        "report": {"reward": "gold"},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "sweep"
    argv = ["sweep", "--recipe", str(path), "--seeds", "0,1", "--output_dir", str(out), "--overlapping_splits"]
    assert main(argv) == 0
    per_split = [json.loads((out / f"seed-{s}" / "report" / "results.json").read_text())["scorers"] for s in (0, 1)]
    tests = [(out / f"seed-{s}" / "parts" / "test.jsonl").read_text() for s in (0, 1)]
    assert tests[0] != tests[1]  # the partition follows the seed: two different splits
    summary = json.loads((out / "sweep.json").read_text())["scorers"]
    paired = summary["difference"]["accuracy_vs_baseline"]
    assert paired["differences"] == pytest.approx(
        [r["difference"]["accuracy"] - r["reward"]["accuracy"] for r in per_split]
    )
    pooled = summary["reward"]["by_bucket_pooled"]
    assert sum(b["pairs"] for b in pooled) == sum(r["reward"]["pairs"] for r in per_split) == 2 * 60
    corrected = paired["overlap_corrected"]  # 60 held-out and 100 training pairs per split
    assert corrected == pytest.approx(resampled_interval(paired["differences"], 60, 100))
    text = (out / "sweep.md").read_text()
    assert "accuracy − reward (paired)" in text and "corrected for overlapping splits" in text
    reward_row = "| reward | " + " | ".join(f"{r['reward']['accuracy']:.3f}" for r in per_split) + " |"
    assert reward_row in text  # each split's accuracy, seed by seed
    argv[argv.index("0,1")] = "1,"  # one split (cached): no corrected interval to draw, no failure
    assert main(argv) == 0
    one = json.loads((out / "sweep.json").read_text())["scorers"]["difference"]["accuracy_vs_baseline"]
    assert one["n"] == 1 and "overlap_corrected" not in one
