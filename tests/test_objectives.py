"""The objective units' wiring on hand-made log-probs: what each feeds its pure loss, checked
against values computed here by hand (plain Python math), not by calling the same loss.

Guards: objectives/policy.py, objectives/ranked.py, objectives/scorers.py, objectives/options.py,
objectives/diagnostics.py, objectives/base.py."""

import math
import typing

import pytest
import torch

from deltapref.coefficients import Weighting, coefficients
from deltapref.columns import GOLD_REWARD
from deltapref.objectives import (
    POLICY_OBJECTIVES,
    SCORER_OBJECTIVES,
    PolicyLossOptions,
    PolicyOutputs,
    ScorerLossOptions,
)
from deltapref.objectives.options import PolicyLoss
from deltapref.objectives.ranked import rrhf_coefficients
from deltapref.scorer_kinds import columns_needed, source_names, weight_source


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def sig(x):
    return 1 / (1 + math.exp(-x))


def outputs(*blocks, counts=None, rewards=None):
    logps = torch.cat([t(*b) for b in blocks])
    counts = torch.cat([t(*c) for c in counts]) if counts else torch.ones_like(logps)
    return PolicyOutputs(logps, counts, len(blocks), None if rewards is None else t(*rewards))


def test_registry_matches_the_options_choices():
    assert set(typing.get_args(PolicyLoss)) == set(POLICY_OBJECTIVES)
    assert all(name == o.name for name, o in POLICY_OBJECTIVES.items())
    assert set(SCORER_OBJECTIVES) == {"reward", "difference", "oracle"}


def test_policy_outputs_blocks_and_matrix():
    out = outputs((1, 2), (3, 4), (5, 6))
    assert out.rows == 2 and out.block(1).tolist() == [3, 4]
    assert out.matrix(out.logps).tolist() == [[1, 3, 5], [2, 4, 6]]


def test_sft_is_token_mean_nll():
    loss, metrics = POLICY_OBJECTIVES["sft"].compute(
        outputs((-6.0, -2.0), counts=[(3, 1)]), {}, PolicyLossOptions("sft")
    )
    assert loss.item() == pytest.approx(8 / 4)


def test_dpo_with_difference_coefficients_by_hand():
    batch = {"ref_logp_chosen": t(-5.0, -4.0), "ref_logp_rejected": t(-5.0, -3.0), "diff": t(2.0, -1.0)}
    options = PolicyLossOptions("dpo", coef="diff", alpha=0.5, beta=0.2)  # 'diff' is an alias of 'difference'
    loss, metrics = POLICY_OBJECTIVES["dpo"].compute(outputs((-4.0, -4.5), (-6.0, -2.0)), batch, options)
    margins = [0.2 * ((-4 + 5) - (-6 + 5)), 0.2 * ((-4.5 + 4) - (-2 + 3))]
    coefs = [sig(2.0) ** 0.5, sig(-1.0) ** 0.5]
    expected = sum(-c * math.log(sig(m)) for c, m in zip(coefs, margins)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert metrics["rewards/accuracies"].tolist() == [1.0, 0.0]
    assert metrics["weights/mean"].tolist() == pytest.approx(coefs)


def test_ipo_length_normalizes_each_log_ratio():
    batch = {"ref_logp_chosen": t(-8.0), "ref_logp_rejected": t(-9.0)}
    out = outputs((-4.0,), (-12.0,), counts=[(4,), (3,)])
    h = (-4 / 4 + 8 / 4) - (-12 / 3 + 9 / 3)
    loss, _ = POLICY_OBJECTIVES["ipo"].compute(out, batch, PolicyLossOptions("ipo", tau=0.5))
    assert loss.item() == pytest.approx((h - 1.0) ** 2)
    loss, _ = POLICY_OBJECTIVES["ipo"].compute(
        out, batch, PolicyLossOptions("ipo", tau=0.5, ipo_length_normalize=False)
    )
    assert loss.item() == pytest.approx(((-4 + 8) - (-12 + 9) - 1.0) ** 2)


def test_kto_reference_point_and_doubled_coefficients():
    batch = {
        "ref_logp_chosen": t(-5.0, -5.0),
        "ref_logp_rejected": t(-5.0, -5.0),
        "ref_logp_kl": t(-7.0, -6.0),
        "coef": t(0.25, 1.0),
    }
    out = outputs((-4.0, -6.0), (-5.5, -3.0), (-6.0, -6.5))
    reduced = []
    loss, metrics = POLICY_OBJECTIVES["kto"].compute(
        out, batch, PolicyLossOptions("kto", coef="coef", beta=1.0), reduce_mean=lambda z: reduced.append(z) or z
    )
    z = max(0.0, ((-6 + 7) + (-6.5 + 6)) / 2)
    assert metrics["kl_reference"].item() == pytest.approx(z) and len(reduced) == 1
    r = {"c": [1.0, -1.0], "r": [-0.5, 2.0]}
    per = [
        0.25 * (1 - sig(r["c"][0] - z)),
        1.0 * (1 - sig(r["c"][1] - z)),
        0.25 * (1 - sig(z - r["r"][0])),
        1.0 * (1 - sig(z - r["r"][1])),
    ]
    assert loss.item() == pytest.approx(sum(per) / 4)


def test_edpo_reads_the_chosen_targets():
    batch = {
        "ref_logp_chosen": t(-5.0),
        "ref_logp_rejected": t(-5.0),
        "oracle_reward_chosen": t(2.0),
        "oracle_reward_rejected": t(0.5),
    }
    options = PolicyLossOptions("edpo", edpo_rewards="oracle", beta=0.5)
    assert POLICY_OBJECTIVES["edpo"].required_columns(options) == ["oracle_reward_chosen", "oracle_reward_rejected"]
    loss, _ = POLICY_OBJECTIVES["edpo"].compute(outputs((-4.0,), (-6.0,)), batch, options)
    assert loss.item() == pytest.approx((1.5 - 0.5 * (1 - (-1))) ** 2)


@pytest.mark.parametrize(
    "student, reading, r_gap, z",
    [
        ("head", "sum", 0.25, (-2.0, -3.0)),
        ("head", "mean", 0.25, (-1.0, -0.75)),
        ("logp", "sum", 0.1 * (-2 + 3), (-2.0, -3.0)),
        ("logp", "auto", 0.1 * (-2 + 3), (-2.0, -3.0)),  # auto: sums, as the student's reward
        # SimPO-style: 2.0 · (mean log π_w − mean log π_l) = 2 · (−1 + 0.75); auto z: length means
        ("logp_mean", "auto", 2.0 * (-1.0 + 0.75), (-1.0, -0.75)),
        ("logp_mean", "sum", 2.0 * (-1.0 + 0.75), (-2.0, -3.0)),
        # implicit: 0.1 · ((−2 − (−2.5)) − (−3 − (−4))) = 0.1 · (0.5 − 1)
        ("implicit", "auto", 0.1 * (0.5 - 1.0), (-2.0, -3.0)),
    ],
)
def test_drdo_student_reward_and_z(student, reading, r_gap, z):
    batch = {
        "oracle_reward_chosen": t(1.0),
        "oracle_reward_rejected": t(-1.0),
        "ref_logp_chosen": t(-2.5),
        "ref_logp_rejected": t(-4.0),
    }
    out = outputs((-2.0,), (-3.0,), counts=[(2,), (4,)], rewards=(0.5, 0.25))
    focal = {"drdo_focal_weight": 0.1, "drdo_gamma": 2.0}
    options = PolicyLossOptions("drdo", student_reward=student, drdo_logp=reading, beta=0.1, **focal)
    drdo = POLICY_OBJECTIVES["drdo"]
    assert drdo.student_head(options) == (student == "head")
    assert drdo.uses_reference(options) == (student == "implicit")
    loss, metrics = drdo.compute(out, batch, options)
    z_c, z_r = z
    focal = -0.1 * (1 - sig(z_c - z_r)) ** 2 * (z_c - math.log(1 - math.exp(z_r)))
    assert loss.item() == pytest.approx((2.0 - r_gap) ** 2 + focal, rel=1e-9)
    assert metrics["student_margin"].item() == pytest.approx(r_gap)


def test_drdo_beta_overrides_each_readings_default_scale():
    assert PolicyLossOptions("drdo", student_reward="logp", beta=0.3).student_beta() == 0.3
    assert PolicyLossOptions("drdo", student_reward="logp_mean", beta=0.3).student_beta() == 2.0
    assert PolicyLossOptions("drdo", student_reward="logp_mean", drdo_beta=1.5).student_beta() == 1.5
    assert PolicyLossOptions("drdo", student_reward="implicit", beta=0.3, drdo_beta=0.05).student_beta() == 0.05


def test_rrhf_coefficient_matrix():
    coef, gaps = rrhf_coefficients(t(1.0, 3.0, 2.0).unsqueeze(0), Weighting(alpha=1.0))
    for i, j in [(0, 1), (0, 2), (2, 1), (1, 0)]:
        assert coef[0, i, j].item() == pytest.approx(sig([1.0, 3.0, 2.0][j] - [1.0, 3.0, 2.0][i]))
    assert gaps[0, 0, 1].item() == 2.0


def test_rrhf_ranks_per_prompt():
    batch = {"scores": t(1.0, 0.0).unsqueeze(0), "valid": torch.ones(1, 2, dtype=torch.bool)}
    out = outputs((-4.0,), (-2.0,), counts=[(2,), (2,)])  # the worse response is likelier
    loss, metrics = POLICY_OBJECTIVES["rrhf"].compute(out, batch, PolicyLossOptions("rrhf"))
    assert loss.item() == pytest.approx((-1.0 - -2.0) + 2.0)  # hinge p_worse − p_best, plus NLL of the best


def test_coefficient_sources_table():
    columns = {
        "diff": t(1.0),
        "reward_chosen": t(2.0),
        "reward_rejected": t(0.5),
        "coef": t(0.3),
        "ensemble_reward_chosen": t(1.0, 3.0).unsqueeze(0),
        "ensemble_reward_rejected": t(0.0, 0.0).unsqueeze(0),
    }

    def weights(name, alpha=1.0):
        return coefficients(weight_source(name), columns, Weighting(alpha=alpha)).item()

    assert weights("difference") == pytest.approx(sig(1.0))
    assert weights("diff") == pytest.approx(sig(1.0))
    assert weights("reward", alpha=2.0) == pytest.approx(sig(1.5) ** 2)
    assert weights("ensemble") == pytest.approx(sig(2.0))
    assert weights("coef") == pytest.approx(0.3)  # a column of precomputed weights, as it is
    assert columns_needed("diff") == ("diff",) and columns_needed("my_weights") == ("my_weights",)
    assert columns_needed("external") == ("external_reward_chosen", "external_reward_rejected")
    assert set(source_names()) == {"difference", "reward", "external", "oracle", "ensemble", "gold"}


def test_difference_model_layout_and_loss_by_hand():
    unit = SCORER_OBJECTIVES["difference"]
    parts = {f"{name}_parts": [0, 1] for name in ("forward", "reverse", "duplicate")}  # part 2 from index 1
    rows = [
        {"forward_ids": [1, 7], "reverse_ids": [2, 7], "duplicate_ids": [3, 7], "label": 1, "segments": False, **parts},
        {"forward_ids": [4, 7], "reverse_ids": [5, 7], "duplicate_ids": [6, 7], "label": 0, "segments": True, **parts},
    ]
    options = ScorerLossOptions(lambda_dup=1.0, lambda_rev=0.0, both_orders=False, difference_readout="contrast")
    sequences, extra = unit.sequences(rows, options)
    assert [s[0] for s in sequences] == [1, 4, 3, 6] and extra["label"].tolist() == [1.0, 0.0]
    assert extra["first_mask"].tolist() == [[1, 0]] * 4 and extra["second_mask"].tolist() == [[0, 1]] * 4
    assert "token_type_ids" not in extra  # the rows' tokenizer (first row) has no segments
    rows = [dict(r, segments=True) for r in rows]
    _, extra = unit.sequences(rows, ScorerLossOptions(lambda_dup=0.0, lambda_rev=1.0, difference_readout="pooled"))
    assert extra["token_type_ids"].tolist() == [[0, 1]] * 4 and "first_mask" not in extra
    sequences, _ = unit.sequences(rows, ScorerLossOptions(lambda_dup=0.0, lambda_rev=1.0))
    assert [s[0] for s in sequences] == [1, 4, 2, 5]
    d = t(2.0, -1.0, -1.5, 0.5, 0.1, -0.2)  # forward, reverse, duplicate blocks
    batch = {"label": t(1.0, 0.0)}
    loss, metrics = unit.compute(d, batch, ScorerLossOptions(lambda_dup=2.0, lambda_rev=3.0))
    bce = lambda x, y: -(y * math.log(sig(x)) + (1 - y) * math.log(1 - sig(x)))  # noqa: E731
    main = (bce(2.0, 1) + bce(-1.0, 0) + bce(-1.5, 0) + bce(0.5, 1)) / 4
    dup = (0.1**2 + 0.2**2) / 2
    rev = ((2.0 - 1.5) ** 2 + (-1.0 + 0.5) ** 2) / 2
    assert loss.item() == pytest.approx(main + 2 * dup + 3 * rev)
    assert metrics["accuracy"].tolist() == [1.0, 1.0]


def test_reward_model_margin():
    unit = SCORER_OBJECTIVES["reward"]
    loss, metrics = unit.compute(t(1.0, 0.5, 0.0, 1.0), {"margin": t(0.5, 0.0)}, ScorerLossOptions())
    assert loss.item() == pytest.approx((-math.log(sig(0.5)) - math.log(sig(-0.5))) / 2)
    assert metrics["accuracy"].tolist() == [1.0, 0.0]


def test_policy_movement_flags_a_policy_that_barely_moved():
    from deltapref.objectives.diagnostics import policy_movement

    log = [
        {"loss": 1.0},
        {"logps/chosen": -40.0, "logps/rejected": -50.0},
        {"logps/chosen": -40.4, "logps/rejected": -50.2},
    ]
    moved, warnings = policy_movement(log)
    assert (
        moved["relative_movement"] == pytest.approx(0.4 / 40) and len(warnings) == 1 and "barely moved" in warnings[0]
    )
    log[-1] = {"logps/chosen": -38.0, "logps/rejected": -55.0}
    moved, warnings = policy_movement(log)
    assert moved["relative_movement"] == pytest.approx(5 / 40) and warnings == []
    assert policy_movement(log[:2]) == ({}, [])  # one window: nothing to compare


def test_reward_length_tracking_flags_a_student_that_follows_length():
    from deltapref.objectives.diagnostics import reward_length_tracking

    length = torch.arange(-10, 10, dtype=torch.float64).numpy()
    oracle = length % 3  # unrelated to length
    report, warnings = reward_length_tracking(
        {"student_margin": 0.5 * length, "oracle_margin": oracle, "length_gap": length}
    )
    assert report["corr_student_length"] == pytest.approx(1.0) and report["pairs_traced"] == 20
    assert len(warnings) == 1 and "tracks length" in warnings[0]
    report, warnings = reward_length_tracking({"student_margin": oracle, "oracle_margin": oracle, "length_gap": length})
    assert report["corr_student_oracle"] == pytest.approx(1.0) and warnings == []
    # an oracle that itself prefers length: a student following it is not flagged
    _, warnings = reward_length_tracking({"student_margin": length, "oracle_margin": length, "length_gap": length})
    assert warnings == []


def test_rdpo_cdpo_and_odpo_read_the_run_s_label_columns_by_hand():
    """The units feed the per-pair ε and offsets the run derived (``label_epsilon``, ``odpo_offset``)."""
    batch = {
        "ref_logp_chosen": t(-5.0, -4.0),
        "ref_logp_rejected": t(-5.0, -3.0),
        "label_epsilon": t(0.1, 0.3),
        "odpo_offset": t(0.5, -1.0),
    }
    out = outputs((-4.0, -4.5), (-6.0, -2.0))
    z = [0.2 * ((-4 + 5) - (-6 + 5)), 0.2 * ((-4.5 + 4) - (-2 + 3))]
    ell = lambda v: -math.log(sig(v))  # noqa: E731
    rdpo = [((1 - e) * ell(v) - e * ell(-v)) / (1 - 2 * e) for v, e in zip(z, (0.1, 0.3))]
    cdpo = [(1 - e) * ell(v) + e * ell(-v) for v, e in zip(z, (0.1, 0.3))]
    odpo = [ell(v - o) for v, o in zip(z, (0.5, -1.0))]
    options = {
        "rdpo": PolicyLossOptions("rdpo", beta=0.2, epsilon="difference"),
        "cdpo": PolicyLossOptions("cdpo", beta=0.2, epsilon="difference"),
        "odpo": PolicyLossOptions("odpo", beta=0.2, odpo_offset="difference"),
    }
    for name, expected in (("rdpo", rdpo), ("cdpo", cdpo), ("odpo", odpo)):
        loss, metrics = POLICY_OBJECTIVES[name].compute(out, batch, options[name])
        assert loss.item() == pytest.approx(sum(expected) / 2, rel=1e-9), name
        assert metrics["rewards/accuracies"].tolist() == [1.0, 0.0]
    assert POLICY_OBJECTIVES["rdpo"].required_columns(options["rdpo"]) == ["diff"]
    assert POLICY_OBJECTIVES["rdpo"].required_columns(PolicyLossOptions("rdpo", epsilon="0.2")) == []
    assert POLICY_OBJECTIVES["odpo"].required_columns(PolicyLossOptions("odpo", odpo_offset="my_offsets")) == [
        "my_offsets"
    ]
    correct = PolicyLossOptions("dpo", coef="reward", label_correction="drop", correct_with="gold")
    assert POLICY_OBJECTIVES["dpo"].required_columns(correct) == ["reward_chosen", "reward_rejected", *GOLD_REWARD]
