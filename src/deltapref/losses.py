"""Every training objective as a pure function of tensors (DESIGN.md section 4).

Conventions: ``*_logps`` are per-sequence log-probabilities log π(y|x) (sums of token
log-probs unless a caller length-normalizes them); ``coef`` is the per-example reward-difference
coefficient R_α (a constant: it is detached here). Functions return per-example losses (shape
``(B,)``) unless said otherwise, so callers choose the reduction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _weighted(losses: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
    return losses if coef is None else losses * coef.detach().to(losses.dtype)


# ---------------------------------------------------------------- scorers


def bradley_terry_loss(
    reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Bradley–Terry reward loss (DRDO Eq. 1–2): L = −log σ(r(x,y_w) − r(x,y_l) − m), with an
    optional per-pair margin m (0 by default)."""
    delta = reward_chosen - reward_rejected
    if margin is not None:
        delta = delta - margin
    return -F.logsigmoid(delta)


def difference_model_loss(
    d_forward: torch.Tensor,
    label_forward: torch.Tensor,
    d_reverse: torch.Tensor | None = None,
    d_duplicate: torch.Tensor | None = None,
    lambda_dup: float = 0.0,
    lambda_rev: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Difference-model loss (RDO §3): L = L_main + λ_dup·L_dup + λ_rev·L_rev.

    - L_main = CE(σ(d(x,y1,y2)), 1[y1 ≻ y2]), averaged over the forward order and, when
      ``d_reverse`` is given, the reversed order (label flipped);
    - L_dup = mean d(x,y,y)² over ``d_duplicate``;
    - L_rev = mean (d(x,y1,y2) + d(x,y2,y1))².

    Returns the scalar total and its parts.
    """
    label_forward = label_forward.to(d_forward.dtype)
    logits, labels = d_forward, label_forward
    if d_reverse is not None:
        logits, labels = torch.cat([d_forward, d_reverse]), torch.cat([label_forward, 1 - label_forward])
    parts = {"main": F.binary_cross_entropy_with_logits(logits, labels)}
    zero = d_forward.new_zeros(())
    parts["dup"] = (d_duplicate**2).mean() if d_duplicate is not None else zero
    parts["rev"] = ((d_forward + d_reverse) ** 2).mean() if d_reverse is not None else zero
    total = parts["main"] + lambda_dup * parts["dup"] + lambda_rev * parts["rev"]
    return total, parts


def oracle_loss(
    reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, chosen_logps: torch.Tensor, lm_weight: float = 0.01
) -> torch.Tensor:
    """DRDO oracle (Eq. 5): L = −[(1 − α)·log σ(r_w − r_l) + α·log π(y_w|x)], α = ``lm_weight``.

    ``chosen_logps`` is the LM term's log π(y_w|x); callers pass a length-mean to keep it on
    the scale of a token cross-entropy (the default in deltapref)."""
    return -((1 - lm_weight) * F.logsigmoid(reward_chosen - reward_rejected) + lm_weight * chosen_logps)


# ---------------------------------------------------------------- policies


def dpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta: float = 0.1,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """DPO and DPO+rc: L = −R_α · log σ(β·h(x,y_w) − β·h(x,y_l)), with the implicit reward
    h = log π_θ − log π_ref. ``coef=None`` is plain DPO (R_α ≡ 1)."""
    margin = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    return _weighted(-F.logsigmoid(margin), coef)


def _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """β·h_w − β·h_l with h = log π_θ − log π_ref."""
    return beta * ((policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps))


def _label_terms(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, epsilon):
    """ℓ(z) (the label as given), ℓ(−z) (the label flipped) and ε as a constant tensor, for the
    losses that take the share of wrong labels."""
    z = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    return -F.logsigmoid(z), -F.logsigmoid(-z), torch.as_tensor(epsilon, dtype=z.dtype, device=z.device).detach()


def rdpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta: float = 0.1,
    epsilon: float | torch.Tensor = 0.1,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """Robust DPO (rDPO, Chowdhury et al. 2024, "Provably robust DPO"): the unbiased DPO loss under
    labels flipped with probability ε, L = [(1 − ε)·ℓ(z) − ε·ℓ(−z)] / (1 − 2ε), ℓ(z) = −log σ(z),
    z = β·h_w − β·h_l. ``epsilon``: one flip rate or one per pair, each in [0, 0.5); ε = 0 is DPO."""
    kept, flipped, epsilon = _label_terms(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, epsilon
    )
    return _weighted(((1 - epsilon) * kept - epsilon * flipped) / (1 - 2 * epsilon), coef)


def cdpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta: float = 0.1,
    epsilon: float | torch.Tensor = 0.1,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conservative DPO (cDPO, label smoothing; Mitchell 2023): the cross-entropy with the soft
    label p = 1 − ε that y_w is better, L = (1 − ε)·ℓ(z) + ε·ℓ(−z), ℓ(z) = −log σ(z),
    z = β·h_w − β·h_l. ``epsilon``: one value or one per pair (a per-pair soft label p_i = 1 − ε_i,
    in [0, 1]); ε = 0 is DPO."""
    kept, flipped, epsilon = _label_terms(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, epsilon
    )
    return _weighted((1 - epsilon) * kept + epsilon * flipped, coef)


def odpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    offset: torch.Tensor,
    beta: float = 0.1,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """DPO with an offset (ODPO, Amini et al. 2024): L = −log σ(β·h_w − β·h_l − Δ_r), a
    pair's margin required to exceed its offset Δ_r (callers scale it from a reward difference);
    Δ_r = 0 is DPO."""
    z = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    return _weighted(-F.logsigmoid(z - offset.detach().to(z.dtype)), coef)


def ipo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    tau: float = 0.1,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """IPO (Eq. 17): L = (h(x,y_w) − h(x,y_l) − 1/(2τ))². Callers following TRL pass
    length-normalized log-probs."""
    h = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return _weighted((h - 1 / (2 * tau)) ** 2, coef)


def rrhf_loss(
    mean_logps: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    best_nll: torch.Tensor,
    coef: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RRHF and RRHF+rc (RRHF §3.1): L = Σ_{s_i < s_j} R_α(x,y_j,y_i)·max(0, p_i − p_j) + L_ft.

    ``mean_logps`` (B, k): length-normalized log-probs p_i; ``scores`` (B, k); ``valid`` (B, k)
    marks real responses; ``best_nll`` (B,): token cross-entropy of the best-scored response
    (L_ft); ``coef`` (B, k, k): R_α for the pair (worse i, better j) at [:, i, j].
    Returns (per-example total, ranking part, L_ft).
    """
    worse_than = (scores.unsqueeze(2) < scores.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)
    hinge = torch.relu(mean_logps.unsqueeze(2) - mean_logps.unsqueeze(1))  # [b, i, j] = max(0, p_i − p_j)
    if coef is not None:
        hinge = hinge * coef.detach().to(hinge.dtype)
    rank = (hinge * worse_than).sum(dim=(1, 2))
    return rank + best_nll, rank, best_nll


def kto_reference_point(policy_kl_logps: torch.Tensor, ref_kl_logps: torch.Tensor) -> torch.Tensor:
    """KTO's z_ref (KTO Eq. 7): the batch mean of log π_θ(y'|x) − log π_ref(y'|x) over
    mismatched pairs (x, y'), clamped at 0 and detached."""
    return (policy_kl_logps - ref_kl_logps).mean().clamp(min=0).detach()


def kto_loss(
    policy_logps,
    ref_logps,
    desirable: torch.Tensor,
    z_ref: torch.Tensor,
    beta: float = 0.1,
    lambda_d: float = 1.0,
    lambda_u: float = 1.0,
    coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """KTO and KTO+rc (KTO Eq. 7): with r = log π_θ/π_ref, desirable examples cost
    λ_D·(1 − σ(β(r − z_ref))), undesirable ones λ_U·(1 − σ(β(z_ref − r))); each example's loss
    is multiplied by its pair's R_α. ``z_ref`` is treated as a constant."""
    r = policy_logps - ref_logps
    z_ref = z_ref.detach()
    losses = torch.where(
        desirable,
        lambda_d * (1 - torch.sigmoid(beta * (r - z_ref))),
        lambda_u * (1 - torch.sigmoid(beta * (z_ref - r))),
    )
    return _weighted(losses, coef)


def edpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    reward_first: torch.Tensor,
    reward_second: torch.Tensor,
    beta: float = 0.1,
    ensemble: str = "mean",
) -> torch.Tensor:
    """e-DPO reward distillation (Fisch et al.; DRDO Eq. 4):
    L = (r*(x,y_1) − r*(x,y_2) − β·h(x,y_1) + β·h(x,y_2))², needing no labels.

    With an ensemble, rewards have shape (B, M). ``ensemble="mean"`` distills the members' mean
    reward gap; ``ensemble="pessimistic"`` (deltapref's documented reconstruction of the
    ensemble variant) takes, per pair, the member whose squared error is largest: the policy must
    fit every plausible reward model at once.
    """
    h = beta * ((policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps))
    gap = reward_first - reward_second
    if gap.dim() == 1:
        return (gap - h) ** 2
    if ensemble == "mean":
        return (gap.mean(dim=1) - h) ** 2
    if ensemble == "pessimistic":
        return ((gap - h.unsqueeze(1)) ** 2).max(dim=1).values
    raise ValueError(f"unknown ensemble mode {ensemble!r} (mean or pessimistic)")


def log1mexp(z: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(z)) for z < 0, accurate at both ends (expm1 near 0, log1p far from 0)."""
    z = z.clamp(max=-1e-7)
    return torch.where(z > -math.log(2), torch.log(-torch.expm1(z)), torch.log1p(-torch.exp(z)))


def drdo_loss(
    student_reward_chosen,
    student_reward_rejected,
    oracle_reward_chosen,
    oracle_reward_rejected,
    chosen_logps,
    rejected_logps,
    focal_weight: float = 0.1,
    gamma: float = 2.0,
    rejected_log1m: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DRDO student (DRDO Eq. 6), reference-free:
    L = (r*(x,y_w) − r*(x,y_l) − (r̂(x,y_w) − r̂(x,y_l)))² − α·(1 − p_w)^γ·log(π(y_w|x) / (1 − π(y_l|x))),
    α = ``focal_weight``,
    p_w = σ(z_w − z_l), z = log π(y|x) (``chosen_logps``/``rejected_logps``: sums or length
    means, the caller's choice). log(1 − π(y_l|x)) is log1mexp(z_l) unless the caller reads it
    another way (``rejected_log1m``, e.g. per token). The focal factor is not detached.
    Returns (per-example total, distillation part, focal part).
    """
    distill = ((oracle_reward_chosen - oracle_reward_rejected) - (student_reward_chosen - student_reward_rejected)) ** 2
    p_w = torch.sigmoid(chosen_logps - rejected_logps)
    log_odds = chosen_logps - (log1mexp(rejected_logps) if rejected_log1m is None else rejected_log1m)
    focal = -focal_weight * (1 - p_w) ** gamma * log_odds
    return distill + focal, distill, focal
