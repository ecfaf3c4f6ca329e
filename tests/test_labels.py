"""Labels a run may not trust: the label options' rules, per-pair ε and ODPO offsets derived from a
Δ source or a column (checked row by row), flip and drop correction, and the share of wrong labels
estimated from held-out scores against known truths.

Guards: objectives/label_options.py, policy/labels.py, policy/preparation.py,
evaluation/label_noise.py."""

import math

import numpy as np
import pytest
from datasets import Dataset
from hypothesis import given
from hypothesis import strategies as st

from deltapref.data.schema import DataError
from deltapref.evaluation.label_noise import estimate_label_noise, wrong_label_share
from deltapref.objectives.options import PolicyLossOptions
from deltapref.policy.labels import corrected, epsilons, flipped, offsets, partner, with_label_columns


def pairs(diffs, **extra):
    n = len(diffs)
    rows = {
        "prompt": [f"p{i}" for i in range(n)],
        "chosen": [f"w{i}" for i in range(n)],
        "rejected": [f"l{i}" for i in range(n)],
        "diff": list(map(float, diffs)),
        "reward_chosen": [float(i) for i in range(n)],
        "reward_rejected": [float(-i) for i in range(n)],
        "ref_logp_chosen": [-1.0] * n,
        "ref_logp_rejected": [-2.0] * n,
        "ref_logp_kl": [-3.0] * n,
        "coef": [0.5] * n,
    }
    return Dataset.from_dict({**rows, **extra})


@pytest.mark.parametrize(
    "options, pattern",
    [
        (dict(loss="rdpo", epsilon="0.5"), r"--epsilon must be a share of wrong labels in \[0, 0.5\), got 0.5"),
        (dict(loss="cdpo", epsilon="-0.1"), "--epsilon must be"),
        (dict(loss="rdpo", epsilon="nan"), "--epsilon must be"),
        (dict(loss="rdpo", epsilon=" "), "--epsilon is empty"),
        (dict(loss="dpo", epsilon="0.2"), "--epsilon is read by --loss rdpo or cdpo only, not dpo"),
        (dict(loss="odpo"), "--loss odpo needs --odpo_offset"),
        (dict(loss="dpo", odpo_offset="gold"), "--odpo_offset is read by --loss odpo only"),
        (dict(loss="dpo", label_correction="flip"), "--label_correction flip needs --correct_with"),
        (dict(loss="dpo", label_correction="drop", correct_with="my_column"), "needs --correct_with"),
        (dict(loss="rrhf", label_correction="drop", correct_with="gold"), "works on pairs"),
        (dict(loss="dpo", correct_with="gold"), "--correct_with is read only with --label_correction"),
        (dict(loss="dpo", coef="w", label_correction="flip", correct_with="gold"), "a flipped pair would keep"),
        (dict(loss="rdpo", epsilon="0.2", epsilon_max=0.3), "--epsilon_max changes nothing here"),
        (dict(loss="cdpo", epsilon="difference", epsilon_max=0.3), "--epsilon_max changes nothing here"),
        (dict(loss="rdpo", epsilon="my_eps", label_temperature=2.0), "--label_temperature changes nothing"),
        (dict(loss="odpo", odpo_offset="my_offsets", odpo_alpha=2.0), "--odpo_alpha changes nothing"),
        (dict(loss="dpo", correction_margin=1.0), "--correction_margin changes nothing"),
    ],
)
def test_label_options_out_of_place_or_range_are_refused(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        PolicyLossOptions(**options)


def test_partner_columns_of_a_flipped_pair():
    assert partner("chosen") == "rejected" and partner("rejected") == "chosen"
    assert partner("oracle_reward_chosen") == "oracle_reward_rejected"
    assert partner("chosen_score") == "rejected_score" and partner("ref_logp_rejected") == "ref_logp_chosen"
    assert partner("ref_logp_kl") is None and partner("prompt") is None and partner("diff") is None


def test_flip_swaps_every_column_of_a_response_negates_d_and_drops_stale_weights():
    data = flipped(pairs([1.0, -2.0, 3.0]), np.array([False, True, False]))
    row = data[1]
    assert (row["chosen"], row["rejected"], row["diff"]) == ("l1", "w1", 2.0)
    assert (row["reward_chosen"], row["reward_rejected"]) == (-1.0, 1.0)
    assert (row["ref_logp_chosen"], row["ref_logp_rejected"], row["ref_logp_kl"]) == (-2.0, -1.0, -3.0)
    assert data[0]["chosen"] == "w0" and data[2]["diff"] == 3.0
    assert "coef" not in data.column_names


def test_correction_flips_or_drops_the_doubted_pairs_and_counts_them():
    data = pairs([1.0, -0.2, -2.0, 0.5])
    options = PolicyLossOptions("dpo", label_correction="flip", correct_with="difference", correction_margin=0.1)
    fixed, done = corrected(data, options, "d.jsonl")
    assert done == {"mode": "flip", "source": "difference", "margin": 0.1, "pairs": 4, "flipped": 2}
    assert fixed["diff"] == [1.0, 0.2, 2.0, 0.5]
    options = PolicyLossOptions("dpo", label_correction="drop", correct_with="difference", correction_margin=1.0)
    kept, done = corrected(data, options, "d.jsonl")
    assert done["dropped"] == 1 and kept["prompt"] == ["p0", "p1", "p3"]
    with pytest.raises(DataError, match="d.jsonl: --label_correction drop: every pair's difference Δ is below"):
        corrected(pairs([-1.5, -2.0]), options, "d.jsonl")


def test_per_pair_epsilon_from_a_delta_source_and_its_cap():
    data = pairs([0.0, 2.0, -4.0])
    cdpo = PolicyLossOptions("cdpo", epsilon="difference", label_temperature=2.0)
    values, said = epsilons(data, cdpo, "d")
    assert values.tolist() == pytest.approx([0.5, 1 / (1 + math.e), 1 / (1 + math.exp(-2))])  # σ(−Δ/T)
    assert said["epsilon_from"] == "difference"
    rdpo = PolicyLossOptions("rdpo", epsilon="difference", label_temperature=2.0, epsilon_max=0.3)
    assert epsilons(data, rdpo, "d")[0].tolist() == pytest.approx([0.3, 1 / (1 + math.e), 0.3])
    constant, said = epsilons(data, PolicyLossOptions("rdpo", epsilon="0.2"), "d")
    assert constant.tolist() == [0.2, 0.2, 0.2] and said == {"epsilon": 0.2}


@pytest.mark.parametrize(
    "loss, values, pattern",
    [
        ("rdpo", [0.1, 0.5, 0.0], r"d.jsonl, row 2, field 'eps': is 0.5: must be in \[0, 0.5\)"),
        ("cdpo", [0.1, 1.0, 1.5], r"row 3, field 'eps': is 1.5: must be in \[0, 1\]"),
        ("cdpo", [0.1, float("nan"), 0.2], "row 2, field 'eps': is nan: one finite number per pair"),
        ("rdpo", [0.1, None, 0.2], "row 2, field 'eps': is None"),
    ],
)
def test_a_per_pair_epsilon_column_is_checked_row_by_row(loss, values, pattern):
    with pytest.raises(DataError, match=pattern):
        epsilons(pairs([1.0, 1.0, 1.0], eps=values), PolicyLossOptions(loss, epsilon="eps"), "d.jsonl")


def test_odpo_offsets_scaled_as_the_paper_or_read_from_a_column():
    data = pairs([math.e, 0.001, -1.0], offsets=[0.5, None, 1.0])
    log_scaled = offsets(data, PolicyLossOptions("odpo", odpo_offset="difference", odpo_alpha=2.0), "d")[0]
    assert log_scaled.tolist() == pytest.approx([2.0, 2 * math.log(0.01), 2 * math.log(0.01)])
    linear = PolicyLossOptions("odpo", odpo_offset="difference", odpo_scale="linear", odpo_alpha=0.5)
    assert offsets(data, linear, "d")[0].tolist() == pytest.approx([math.e / 2, 0.0005, -0.5])
    with pytest.raises(DataError, match="d, row 2, field 'offsets': is None"):  # an offset on some rows only
        offsets(data, PolicyLossOptions("odpo", odpo_offset="offsets"), "d")
    with pytest.raises(DataError, match="has no column 'nothing'"):
        with_label_columns(data, PolicyLossOptions("odpo", odpo_offset="nothing"), "d")


def test_epsilon_auto_without_an_estimate_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(DataError, match="--epsilon auto needs the share of wrong labels `deltapref score` estimates"):
        epsilons(pairs([1.0]), PolicyLossOptions("rdpo", epsilon="auto"), str(tmp_path / "d.jsonl"))


@given(
    diffs=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=12),
    margin=st.floats(0, 3),
    mode=st.sampled_from(["flip", "drop"]),
)
def test_correction_keeps_pairs_whole(diffs, margin, mode):
    """Any Δ and margin: a flip keeps every pair (flipping the doubted ones back restores the data),
    a drop keeps exactly the pairs not doubted, or refuses when none would be left."""
    data = pairs(diffs)
    options = PolicyLossOptions("dpo", label_correction=mode, correct_with="difference", correction_margin=margin)
    doubted = np.array(diffs) < -margin
    try:
        fixed, done = corrected(data, options, "d")
    except DataError:
        assert mode == "drop" and doubted.all()
        return
    assert done[{"flip": "flipped", "drop": "dropped"}[mode]] == int(doubted.sum())
    if mode == "drop":
        assert fixed["prompt"] == [p for p, d in zip(data["prompt"], doubted) if not d]
    else:
        back = flipped(fixed, doubted)
        assert back.to_dict() == data.remove_columns("coef").to_dict()


def flip_deltas(rate, n, rng):
    gap = np.abs(rng.normal(2, 0.5, n))
    return np.where(rng.random(n) < rate, -gap, gap)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_the_noise_estimate_recovers_flips_a_scorer_separates(rate):
    delta = flip_deltas(rate, 1000, np.random.default_rng(0))
    estimate = estimate_label_noise(delta, resamples=20)
    assert estimate["estimate"] == pytest.approx((delta < 0).mean(), abs=0.01)  # the share actually flipped
    assert estimate["low"] <= estimate["estimate"] <= estimate["high"]


@pytest.mark.parametrize("temperature", [0.25, 1.0])
def test_the_noise_estimate_recovers_bradley_terry_noise_from_a_calibrated_gap(temperature):
    """Labels drawn with P(chosen) = σ(g/T) and a scorer whose Δ is the gap g: the estimate is the
    expected share of labels against the gap's sign, E[min(σ(g/T), 1 − σ(g/T))]."""
    rng = np.random.default_rng(1)
    gap = rng.normal(0, 1, 2000)
    kept = rng.random(2000) < 1 / (1 + np.exp(-gap / temperature))
    truth = np.minimum(1 / (1 + np.exp(-gap / temperature)), 1 / (1 + np.exp(gap / temperature))).mean()
    estimate = estimate_label_noise(np.where(kept, gap, -gap), resamples=20)
    assert estimate["estimate"] == pytest.approx(truth, abs=0.02)


def test_a_weak_scorer_overestimates_and_the_share_formula_by_hand():
    """A scorer that cannot separate (Δ unrelated to the labels) gives about 1/2: an upper bound."""
    estimate = estimate_label_noise(np.random.default_rng(2).normal(0, 1, 1000), resamples=10)
    assert estimate["estimate"] > 0.4
    assert wrong_label_share(np.array([0.0, 100.0]), a=1.0, floor=0.1) == pytest.approx((0.5 + 0.1) / 2)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        estimate_label_noise([1.0])


@pytest.mark.parametrize("loss, estimate, used", [("rdpo", 0.45, 0.4), ("rdpo", 0.3, 0.3), ("cdpo", 0.45, 0.45)])
def test_epsilon_auto_reads_the_recorded_estimate_and_caps_it_for_rdpo(tmp_path, loss, estimate, used):
    """rDPO divides by 1 − 2ε: an estimate above --epsilon_max (an upper bound when the scorer is
    weak) is capped there, as a per-pair ε is; cDPO takes it as it is."""
    from deltapref.models.provenance import write_meta

    source = tmp_path / "d.jsonl"
    source.write_text("{}\n")
    write_meta(source, {"columns": {}, "noise": {"reward": {"estimate": estimate}}}, "score")
    values, said = epsilons(pairs([1.0, -1.0]), PolicyLossOptions(loss, epsilon="auto"), str(source))
    assert values.tolist() == [used, used] and said["epsilon"] == used
    assert said["epsilon_from"].startswith("auto (reward)") and ("capped" in said["epsilon_from"]) == (used != estimate)
