"""Reward-difference coefficients (RDO Eq. 2, reconstruction documented in FORMULAS.md).

From a pointwise reward model R_α(x, y_w, y_l) = σ(r(x,y_w) − r(x,y_l))^α; from a difference
model R_α = σ(d(x,y_w,y_l))^α. α = 0 gives 1 for every pair (the unweighted method).

``SOURCES`` is the one table of where Δ comes from: a source's name, the columns it reads and
how it turns them into Δ. ``score``, ``align``, the column checks and the report all use it.
Any other name given as a coefficient source is a column of precomputed coefficients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Source:
    """Where Δ comes from: the columns read and Δ as a function of them (tensors, per pair)."""

    columns: tuple[str, ...]
    delta: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]
    description: str


def _gap(prefix: str) -> Source:
    chosen, rejected = f"{prefix}reward_chosen", f"{prefix}reward_rejected"
    return Source((chosen, rejected), lambda c: c[chosen] - c[rejected], f"r_w − r_l from {chosen}/{rejected}")


SOURCES: dict[str, Source] = {
    "difference": Source(("diff",), lambda c: c["diff"], "d(x, y_w, y_l) of a difference model (column diff)"),
    "reward": _gap(""),
    "oracle": _gap("oracle_"),
    "ensemble": Source(
        ("ensemble_reward_chosen", "ensemble_reward_rejected"),
        lambda c: (c["ensemble_reward_chosen"] - c["ensemble_reward_rejected"]).mean(dim=-1),
        "mean over members of r_w − r_l (ensemble_reward_* lists)",
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


def delta(name: str, columns: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Δ of a known source from its columns."""
    return SOURCES[canonical(name)].delta(columns)


def coefficients(name: str, columns: Mapping[str, torch.Tensor], alpha: float) -> torch.Tensor:
    """R_α per pair from source ``name``: σ(Δ)^α for a table source, else the column as it is."""
    name = canonical(name)
    if name in SOURCES:
        return reward_difference_coefficient(SOURCES[name].delta(columns), alpha)
    return columns[name].detach().float()


def coefficients_of_rows(name: str, rows: list[dict], alpha: float) -> list[float]:
    """The same for rows of a dataset (fp64), e.g. when ``score`` annotates them."""
    columns = {c: torch.tensor([row[c] for row in rows], dtype=torch.float64) for c in columns_needed(name)}
    return coefficients(name, columns, alpha).double().tolist()
