"""Reward-difference coefficients (RDO Eq. 2, reconstruction documented in FORMULAS.md).

From a pointwise reward model R_α(x, y_w, y_l) = σ(r(x,y_w) − r(x,y_l))^α; from a difference
model R_α = σ(d(x,y_w,y_l))^α. α = 0 gives 1 for every pair (the unweighted method).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def reward_difference_coefficient(delta: torch.Tensor, alpha: float) -> torch.Tensor:
    """σ(Δ)^α, computed as exp(α·log σ(Δ)) so large negative Δ stays finite; no gradient."""
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    return torch.exp(alpha * F.logsigmoid(delta.detach().float()))


def coefficient_value(delta: float, alpha: float) -> float:
    """The same for one Python float (used when annotating datasets)."""
    log_sigmoid = -math.log1p(math.exp(-delta)) if delta >= 0 else delta - math.log1p(math.exp(delta))
    return math.exp(alpha * log_sigmoid)
