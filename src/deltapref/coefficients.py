"""Per-pair weights from reward differences.

``SOURCES`` is the one table of where Δ comes from: a source's name, the columns it reads and
how it turns them into Δ (a reward model's r_w − r_l, a difference model's d(x, y_w, y_l), the
oracle's or an ensemble's gap, or the built-in task's gold gap). ``score``, ``align``, the column
checks and the report all use it. Any other name is a column of precomputed weights.

A :class:`Weighting` turns Δ/T into a weight, with one of two schemes:
- ``rdo`` (RDO Eq. 2, reconstruction in FORMULAS.md): R_α = σ(Δ/T)^α, small for close or
  reversed pairs; α = 0 gives 1 for every pair (the unweighted method).
- ``madpo`` (MADPO, arXiv 2510.05342): w = σ(c(|Δ|)·Δ)/σ(Δ) for Δ > −τ, else 1, which
  *up*-weights close pairs and damps easy ones (:func:`madpo_weight`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .columns import DIFF, ENSEMBLE_REWARD, GOLD_REWARD, ORACLE_REWARD, REWARD


@dataclass(frozen=True)
class Source:
    """Where Δ comes from: the columns read and Δ as a function of them (tensors, per pair)."""

    columns: tuple[str, ...]
    delta: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


def _gap(columns: tuple[str, str]) -> Source:
    chosen, rejected = columns
    return Source(columns, lambda c: c[chosen] - c[rejected])


SOURCES: dict[str, Source] = {
    "difference": Source((DIFF,), lambda c: c[DIFF]),  # d(x, y_w, y_l) of a difference model
    "reward": _gap(REWARD),
    "oracle": _gap(ORACLE_REWARD),
    "gold": _gap(GOLD_REWARD),
    "ensemble": Source(
        ENSEMBLE_REWARD,
        lambda c: (c[ENSEMBLE_REWARD[0]] - c[ENSEMBLE_REWARD[1]]).mean(dim=-1),  # mean member gap
    ),
}
ALIASES = {"diff": "difference"}


def canonical(name: str | None) -> str | None:
    """The source's table name (``diff`` is accepted for ``difference``)."""
    return ALIASES.get(name, name) if name else name


def columns_needed(name: str) -> tuple[str, ...]:
    """Columns a coefficient source reads (a precomputed column reads itself)."""
    name = canonical(name)
    return SOURCES[name].columns if name in SOURCES else (name,)


def reward_difference_coefficient(delta: torch.Tensor, alpha: float) -> torch.Tensor:
    """σ(Δ)^α, computed as exp(α·log σ(Δ)) so large negative Δ stays finite; no gradient. Keeps a
    floating input's dtype (fp32 in training, fp64 when annotating datasets)."""
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    delta = delta.detach()
    if not delta.is_floating_point():
        delta = delta.float()
    return torch.exp(alpha * F.logsigmoid(delta))


def madpo_weight(
    delta: torch.Tensor, c_max: float = 2.0, c_min: float = 0.5, lam: float = 1.0, tau: float = 2.0
) -> torch.Tensor:
    """MADPO's per-pair weight (Margin-Adaptive DPO, arXiv 2510.05342; form of the authors'
    reference code): w(Δ) = σ(c(|Δ|)·Δ) / σ(Δ) for Δ > −τ and 1 otherwise, with
    c(u) = c_min + (c_max − c_min) / (1 + k·exp(λ(u − τ))), k = (c_max − 1)/(1 − c_min), so that
    c(τ) = 1, c → c_max for close pairs (w > 1) and c → c_min for easy ones (w < 1). Needs
    c_min < 1 < c_max. No gradient."""
    delta = delta.detach()
    if not delta.is_floating_point():
        delta = delta.float()
    k = (c_max - 1) / (1 - c_min)
    c = c_min + (c_max - c_min) / (1 + k * torch.exp(lam * (delta.abs() - tau)))
    weight = torch.exp(F.logsigmoid(c * delta) - F.logsigmoid(delta))
    return torch.where(delta > -tau, weight, torch.ones_like(weight))


@dataclass(frozen=True)
class Weighting:
    """How Δ becomes a weight: Δ is divided by ``temperature``, then ``scheme`` applies."""

    alpha: float = 1.0
    temperature: float = 1.0
    scheme: str = "rdo"
    madpo_c_max: float = 2.0
    madpo_c_min: float = 0.5
    madpo_lambda: float = 1.0
    madpo_tau: float = 2.0

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        delta = delta / self.temperature
        if self.scheme == "madpo":
            return madpo_weight(delta, self.madpo_c_max, self.madpo_c_min, self.madpo_lambda, self.madpo_tau)
        return reward_difference_coefficient(delta, self.alpha)


def coefficients(name: str, columns: Mapping[str, torch.Tensor], weighting: Weighting) -> torch.Tensor:
    """Weights per pair from source ``name`` (``weighting`` of its Δ), or a precomputed column as it is."""
    name = canonical(name)
    if name in SOURCES:
        return weighting(SOURCES[name].delta(columns))
    return columns[name].detach().float()


def coefficients_of_rows(name: str, rows: list[dict], weighting: Weighting) -> list[float]:
    """The same for rows of a dataset (fp64), e.g. when ``score`` annotates them."""
    columns = {c: torch.tensor([row[c] for row in rows], dtype=torch.float64) for c in columns_needed(name)}
    return coefficients(name, columns, weighting).double().tolist()
