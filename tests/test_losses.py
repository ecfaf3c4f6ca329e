"""Losses against hand-computed values and known identities.

Guards: losses.py, coefficients.py."""

import math

import pytest
import torch

from deltapref.coefficients import Weighting, coefficients_of_rows, reward_difference_coefficient
from deltapref.losses import (
    bradley_terry_loss,
    cdpo_loss,
    difference_model_loss,
    dpo_loss,
    drdo_loss,
    edpo_loss,
    ipo_loss,
    kto_loss,
    kto_reference_point,
    log1mexp,
    odpo_loss,
    oracle_loss,
    rdpo_loss,
    rrhf_loss,
)
from deltapref.scorer_kinds import weight_source


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_hand_values():
    loss = bradley_terry_loss(t(2.0, 0.0), t(1.0, 0.0), margin=t(0.0, -1.0))
    assert loss.tolist() == pytest.approx([-math.log(sig(1.0)), -math.log(sig(1.0))])


def test_coefficient_identities():
    delta = t(-30.0, -1.0, 0.0, 2.0)
    assert torch.equal(reward_difference_coefficient(delta, 0.0), torch.ones(4))
    assert reward_difference_coefficient(delta, 1.0).tolist() == pytest.approx(
        [sig(-30.0), sig(-1), 0.5, sig(2)], rel=1e-5
    )
    assert reward_difference_coefficient(t(1.0), 0.5).item() == pytest.approx(sig(1.0) ** 0.5)
    rows = [{"diff": -800.0}, {"diff": 3.0}]
    assert coefficients_of_rows(weight_source("difference"), rows, Weighting(alpha=2.0)) == [
        0.0,
        pytest.approx(sig(3.0) ** 2, rel=1e-12),
    ]
    with pytest.raises(ValueError):
        reward_difference_coefficient(delta, -1.0)


def test_dpo_hand_value_and_alpha_zero_identity():
    args = (t(-1.0), t(-3.0), t(-2.0), t(-2.5))  # h_w = 1, h_l = -0.5
    assert dpo_loss(*args, beta=0.2).item() == pytest.approx(-math.log(sig(0.2 * 1.5)))
    ones = reward_difference_coefficient(t(0.7), 0.0)
    assert torch.equal(dpo_loss(*args, beta=0.2, coef=ones), dpo_loss(*args, beta=0.2))


def test_dpo_gradient_scales_with_coefficient():
    grads = []
    for coef in (None, t(0.25)):
        logp = t(-1.0).requires_grad_()
        dpo_loss(logp, t(-3.0), t(-2.0), t(-2.5), beta=0.2, coef=coef).sum().backward()
        grads.append(logp.grad.item())
    assert grads[1] == pytest.approx(0.25 * grads[0])


def test_ipo_hand_value():
    # h = (−1 − −2) − (−3 − −2.5) = 1.5 ; tau = 0.25 → target 2
    assert ipo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.5), tau=0.25).item() == pytest.approx(0.25)


def test_difference_model_loss_parts():
    d_fwd, d_rev, d_dup = t(2.0, -1.0), t(-1.0, 0.5), t(0.5, -0.5)
    labels = t(1.0, 0.0)
    total, parts = difference_model_loss(d_fwd, labels, d_rev, d_dup, lambda_dup=2.0, lambda_rev=3.0)
    main = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0)) + math.log(1 - sig(-1.0)) + math.log(sig(0.5))) / 4
    assert parts["main"].item() == pytest.approx(main)
    assert parts["dup"].item() == pytest.approx(0.25)
    assert parts["rev"].item() == pytest.approx((1.0 + 0.25) / 2)
    assert total.item() == pytest.approx(main + 2 * 0.25 + 3 * 0.625)
    only_main, parts = difference_model_loss(d_fwd, labels)
    assert only_main.item() == pytest.approx(-(math.log(sig(2.0)) + math.log(1 - sig(-1.0))) / 2)
    assert parts["dup"].item() == 0 and parts["rev"].item() == 0


def test_oracle_loss_hand_value():
    loss = oracle_loss(t(1.0), t(0.0), t(-2.0), lm_weight=0.01)
    assert loss.item() == pytest.approx(-(0.99 * math.log(sig(1.0)) + 0.01 * -2.0))
    assert oracle_loss(t(1.0), t(0.0), t(-2.0), lm_weight=0.0).item() == pytest.approx(
        bradley_terry_loss(t(1.0), t(0.0)).item()
    )


def test_rrhf_hand_value_and_coefficients():
    p = t(-1.0, -2.0, -0.5).unsqueeze(0)  # mean log-probs
    scores = t(0.0, 1.0, 2.0).unsqueeze(0)  # y3 best, y1 worst
    valid = torch.ones(1, 3, dtype=torch.bool)
    nll = t(0.7)
    total, rank, ft = rrhf_loss(p, scores, valid, nll)
    # pairs (worse i, better j): (1,2): max(0,-1+2)=1; (1,3): max(0,-1+0.5)=0; (2,3): 0
    assert rank.item() == pytest.approx(1.0) and total.item() == pytest.approx(1.7) and ft.item() == pytest.approx(0.7)
    coef = torch.full((1, 3, 3), 0.5, dtype=torch.float64)
    assert rrhf_loss(p, scores, valid, nll, coef)[1].item() == pytest.approx(0.5)
    valid[0, 1] = False  # dropping y2 removes the only violated pair
    assert rrhf_loss(p, scores, valid, nll)[1].item() == 0.0


def test_kto_reference_point_is_clamped_and_detached():
    policy = t(-1.0, -2.0).requires_grad_()
    assert kto_reference_point(policy, t(0.0, 0.0)).item() == 0.0  # mean −1.5 clamped
    z = kto_reference_point(policy, t(-2.0, -3.0))
    assert z.item() == pytest.approx(1.0) and not z.requires_grad


def test_kto_hand_values_and_weights():
    z = t(0.5)
    losses = kto_loss(
        t(-1.0, -1.0), t(-2.0, -2.0), torch.tensor([True, False]), z, beta=0.1, lambda_d=1.0, lambda_u=2.0
    )
    assert losses.tolist() == pytest.approx([1 - sig(0.1 * 0.5), 2 * (1 - sig(0.1 * -0.5))])
    weighted = kto_loss(t(-1.0, -1.0), t(-2.0, -2.0), torch.tensor([True, False]), z, coef=t(0.5, 0.25))
    plain = kto_loss(t(-1.0, -1.0), t(-2.0, -2.0), torch.tensor([True, False]), z)
    assert weighted.tolist() == pytest.approx([0.5 * plain[0].item(), 0.25 * plain[1].item()])


def test_edpo_zero_when_policy_matches_reward_gap():
    beta = 0.1
    # beta*h = 0.1 * ((−1+2) − (−3+2.5)) = 0.15 ; reward gap 0.15 → zero loss
    assert edpo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.5), t(1.15), t(1.0), beta=beta).item() == pytest.approx(0.0)
    assert edpo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.5), t(1.0), t(1.0), beta=beta).item() == pytest.approx(0.0225)
    members_first, members_second = t(1.15, 1.0, 2.0).unsqueeze(0), t(1.0, 1.0, 1.0).unsqueeze(0)
    args = (t(-1.0), t(-3.0), t(-2.0), t(-2.5), members_first, members_second)
    assert edpo_loss(*args, beta=beta, ensemble="mean").item() == pytest.approx(
        (0.15 * 0 + (0.15 + 0 + 1) / 3 - 0.15) ** 2
    )
    assert edpo_loss(*args, beta=beta, ensemble="pessimistic").item() == pytest.approx((1.0 - 0.15) ** 2)


def test_log1mexp_is_accurate_at_both_ends():
    z = t(-1e-6, -0.1, -5.0, -50.0)
    expected = [math.log(-math.expm1(v)) for v in z.tolist()]
    assert log1mexp(z).tolist() == pytest.approx(expected, rel=1e-9)


def test_drdo_focal_factor_behaves_like_one_minus_p_to_gamma():
    zero = t(0.0)
    z_w, z_l = t(-1.0), t(-2.0)
    total, distill, focal = drdo_loss(t(1.0), zero, t(3.0), zero, z_w, z_l, focal_weight=0.1, gamma=2.0)
    p_w = sig(1.0)
    log_odds = -1.0 - math.log(1 - math.exp(-2.0))
    assert distill.item() == pytest.approx(4.0)
    assert focal.item() == pytest.approx(-0.1 * (1 - p_w) ** 2 * log_odds)
    assert total.item() == pytest.approx(4.0 + focal.item())
    # gamma = 0 removes the focal factor; the ratio across gammas is exactly (1-p_w)^gamma
    for gamma in (0.0, 1.0, 3.0):
        f = drdo_loss(zero, zero, zero, zero, z_w, z_l, focal_weight=0.1, gamma=gamma)[2].item()
        assert f == pytest.approx(-0.1 * (1 - p_w) ** gamma * log_odds)
    # the focal factor is not detached: its gradient reaches z_w through p_w as well
    z = t(-1.0).requires_grad_()
    drdo_loss(zero, zero, zero, zero, z, z_l, focal_weight=0.1, gamma=2.0)[0].backward()
    p = sig(1.0)
    expected = -0.1 * ((1 - p) ** 2 + log_odds * 2 * (1 - p) * -(p * (1 - p)))
    assert z.grad.item() == pytest.approx(expected)


def ell(z):
    """ℓ(z) = −log σ(z), by hand."""
    return math.log(1 + math.exp(-z))


PAIR = (t(-3.0, -5.0), t(-4.0, -2.0), t(-3.5, -4.0), t(-3.0, -3.0))  # policy w, policy l, reference w, reference l
MARGINS = (0.5 - (-1.0), -1.0 - 1.0)  # h_w − h_l per pair: (−3 + 3.5) − (−4 + 3), (−5 + 4) − (−2 + 3)


def test_rdpo_and_cdpo_hand_values():
    beta, eps = 0.5, 0.2
    z = [beta * m for m in MARGINS]
    rdpo = [((1 - eps) * ell(v) - eps * ell(-v)) / (1 - 2 * eps) for v in z]
    cdpo = [(1 - eps) * ell(v) + eps * ell(-v) for v in z]
    assert rdpo_loss(*PAIR, beta=beta, epsilon=eps).tolist() == pytest.approx(rdpo)
    assert cdpo_loss(*PAIR, beta=beta, epsilon=eps).tolist() == pytest.approx(cdpo)
    per_pair = t(0.1, 0.3)  # one ε per pair
    expected = [(1 - e) * ell(v) + e * ell(-v) for v, e in zip(z, (0.1, 0.3))]
    assert cdpo_loss(*PAIR, beta=beta, epsilon=per_pair).tolist() == pytest.approx(expected)


def test_epsilon_zero_and_offset_zero_are_dpo_exactly():
    dpo = dpo_loss(*PAIR, beta=0.3)
    assert torch.equal(rdpo_loss(*PAIR, beta=0.3, epsilon=0.0), dpo)
    assert torch.equal(cdpo_loss(*PAIR, beta=0.3, epsilon=0.0), dpo)
    assert torch.equal(odpo_loss(*PAIR, offset=t(0.0, 0.0), beta=0.3), dpo)


def test_rdpo_is_unbiased_under_flipped_labels():
    """rDPO's defining property: averaged over a label flipped with probability ε, its loss is the
    clean DPO loss, (1 − ε)·L_ε(h) + ε·L_ε(−h) = ℓ(βh)."""
    policy_w, policy_l, ref_w, ref_l = PAIR
    for eps in (0.05, 0.2, 0.45):
        kept = rdpo_loss(policy_w, policy_l, ref_w, ref_l, beta=0.7, epsilon=eps)
        flipped = rdpo_loss(policy_l, policy_w, ref_l, ref_w, beta=0.7, epsilon=eps)
        clean = dpo_loss(*PAIR, beta=0.7)
        torch.testing.assert_close((1 - eps) * kept + eps * flipped, clean)


def test_cdpo_is_the_cross_entropy_with_a_soft_label():
    """cDPO at ε is −[(1 − ε) log σ(z) + ε log σ(−z)]: DPO on the pair weighted 1 − ε plus DPO
    on the flipped pair weighted ε; at ε = 1/2 it is the same for both orders."""
    policy_w, policy_l, ref_w, ref_l = PAIR
    flipped = dpo_loss(policy_l, policy_w, ref_l, ref_w, beta=0.4)
    torch.testing.assert_close(
        cdpo_loss(*PAIR, beta=0.4, epsilon=0.25), 0.75 * dpo_loss(*PAIR, beta=0.4) + 0.25 * flipped
    )
    half = cdpo_loss(*PAIR, beta=0.4, epsilon=0.5)
    torch.testing.assert_close(half, cdpo_loss(policy_l, policy_w, ref_l, ref_w, beta=0.4, epsilon=0.5))


def test_odpo_hand_values_and_weights():
    offset = t(1.0, -0.5)
    expected = [ell(0.5 * m - o) for m, o in zip(MARGINS, (1.0, -0.5))]
    assert odpo_loss(*PAIR, offset=offset, beta=0.5).tolist() == pytest.approx(expected)
    weighted = odpo_loss(*PAIR, offset=offset, beta=0.5, coef=t(2.0, 0.0))
    assert weighted.tolist() == pytest.approx([2 * expected[0], 0.0])
