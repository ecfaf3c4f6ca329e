"""``--coef_control``: the controls that separate what a weight carries — shuffle (the same
weights on other pairs), sign (which labels the source doubts, not how much), magnitude (how far
apart, not which side) — as properties over generated Δ, their refusals, and end to end.

Guards: policy/preparation.py, objectives/options.py."""

import json

import numpy as np
import pytest
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from deltapref.cli import main
from deltapref.columns import GOLD_REWARD
from deltapref.objectives import PolicyLossOptions
from deltapref.policy.preparation import pair_weights
from helpers import align_argv, fails, rows_of

gaps = st.lists(st.floats(-6, 6, allow_nan=False).filter(lambda x: abs(x) > 1e-3), min_size=2, max_size=40)


def weights(deltas, control, seed=0, **options):
    data = Dataset.from_dict({GOLD_REWARD[0]: list(deltas), GOLD_REWARD[1]: [0.0] * len(deltas)})
    return pair_weights(data, PolicyLossOptions(coef="gold", coef_control=control, **options), seed)


@settings(max_examples=60, deadline=None)
@given(gaps, st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.5, 1.0, 4.0]), st.integers(0, 2**16))
def test_each_control_keeps_what_it_claims_and_drops_the_rest(deltas, alpha, temperature, seed):
    deltas = np.asarray(deltas)
    plain = weights(deltas, "none", alpha=alpha, coef_temperature=temperature)
    assert np.allclose(plain, 1 / (1 + np.exp(-deltas / temperature)) ** alpha)
    shuffled = weights(deltas, "shuffle", seed, alpha=alpha, coef_temperature=temperature)
    assert np.allclose(np.sort(shuffled), np.sort(plain))  # the same weights, on other pairs
    assert np.array_equal(shuffled, weights(deltas, "shuffle", seed, alpha=alpha, coef_temperature=temperature))
    sign = weights(deltas, "sign", alpha=alpha, coef_temperature=temperature)
    for side in (deltas <= 0, deltas > 0):  # one weight per side: the side's mean (its total kept)
        if side.any():
            assert np.allclose(sign[side], plain[side].mean())
    magnitude = weights(deltas, "magnitude", alpha=alpha, coef_temperature=temperature)
    assert np.allclose(magnitude, weights(-deltas, "magnitude", alpha=alpha, coef_temperature=temperature))
    mirrored = weights(-deltas, "none", alpha=alpha, coef_temperature=temperature)
    assert np.allclose(magnitude, np.maximum(plain, mirrored))
    normalized = weights(deltas, "sign", alpha=alpha, coef_temperature=temperature, coef_normalize=True)
    assert normalized.mean() == pytest.approx(1.0) and np.allclose(normalized, sign / sign.mean())


def test_shuffled_weights_differ_by_seed_and_put_weight_on_other_pairs():
    deltas = np.linspace(-3, 3, 200)
    first, second = weights(deltas, "shuffle", 0), weights(deltas, "shuffle", 1)
    assert not np.array_equal(first, second)
    assert abs(np.corrcoef(first, deltas)[0, 1]) < 0.3 < np.corrcoef(weights(deltas, "none"), deltas)[0, 1]


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--coef_control", "shuffle"], r"--coef_control shuffle controls --coef's weights: give --coef too"),
        (["--coef", "reward_chosen", "--coef_control", "sign"], r"needs Δ, and --coef reward_chosen is a column"),
        (["--loss", "rrhf", "--coef", "scores", "--coef_control", "shuffle"], r"rrhf weighs ranked lists"),
        (["--coef", "gold", "--coef_control", "signs"], r"invalid choice: 'signs'"),
    ],
)
def test_controls_that_cannot_apply_are_refused_in_one_line(scored_task, tmp_path, capsys, argv, pattern):
    fails(capsys, align_argv(scored_task, tmp_path / "p", *argv), 2, pattern)
    assert not (tmp_path / "p").exists()


def test_align_trains_on_the_controlled_weights_and_records_the_control(scored_task, tmp_path):
    out = tmp_path / "p"
    assert main(align_argv(scored_task, out, "--coef", "reward", "--alpha", "2", "--coef_control", "sign")) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    rows = rows_of(scored_task["data"])
    plain = np.array([1 / (1 + np.exp(-(r["reward_chosen"] - r["reward_rejected"]))) ** 2 for r in rows])
    assert summary["weights_mean_before_normalization"] == pytest.approx(plain.mean(), rel=1e-6)  # sign keeps totals
    assert summary["options"]["coef"] == "reward" and summary["options"]["coef_control"] == "sign"  # as asked
