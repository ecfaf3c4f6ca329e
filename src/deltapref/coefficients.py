"""Per-pair weights from reward differences.

A :class:`Source` says where Δ comes from: the columns it reads and how they make Δ (a reward
model's r_w − r_l, a difference model's d(x, y_w, y_l), ...). Each scorer kind declares its own
(``deltapref.scorer_kinds``, where ``weight_source`` turns a name into one); ``GOLD`` is the
built-in task's. A weight column that no source names is used as it is.

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

from deltapref.columns import GOLD_REWARD


@dataclass(frozen=True)
class Source:
    """Where Δ comes from: the columns read and Δ as a function of them (tensors, per pair)."""

    columns: tuple[str, ...]
    delta: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


def gap(columns: tuple[str, str]) -> Source:
    """Δ = r(chosen) − r(rejected) from a (chosen, rejected) pair of reward columns."""
    chosen, rejected = columns
    return Source(columns, lambda c: c[chosen] - c[rejected])


GOLD = gap(GOLD_REWARD)  # the built-in task's true reward gap (written by ``data synth``)


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


def coefficients(source: Source | str, columns: Mapping[str, torch.Tensor], weighting: Weighting) -> torch.Tensor:
    """Weights per pair: ``weighting`` of a source's Δ, or a column of precomputed weights (its name) as it is."""
    if isinstance(source, Source):
        return weighting(source.delta(columns))
    return columns[source].detach().float()


def deltas(source: Source, table) -> torch.Tensor:
    """Δ per pair (fp64) from ``table``'s columns: a dataset, or a mapping of column -> values."""
    return source.delta({c: torch.tensor(table[c], dtype=torch.float64) for c in source.columns})


def coefficients_of_rows(source: Source | str, rows: list[dict], weighting: Weighting) -> list[float]:
    """The same for rows of a dataset (fp64), e.g. when ``score`` annotates them."""
    names = source.columns if isinstance(source, Source) else (source,)
    columns = {c: torch.tensor([row[c] for row in rows], dtype=torch.float64) for c in names}
    return coefficients(source, columns, weighting).double().tolist()
