"""Scorer kinds: what ``deltapref score`` annotates pairs with. A kind is one unit (``base``
says what it declares): its ``score`` option and settings, the check that a saved model can play
it, how it loads and scores, the columns it writes and the Δ they give — its weight source for
``align --coef``. ``score``'s options, the API, model cards and the report read the kinds from
``SCORER_KINDS``; adding one is a new unit and one line below."""

from __future__ import annotations

from deltapref.coefficients import GOLD, Source
from deltapref.scorer_kinds.base import ScorerKind, Setting
from deltapref.scorer_kinds.difference import DifferenceKind
from deltapref.scorer_kinds.ensemble import EnsembleKind
from deltapref.scorer_kinds.external import ExternalKind
from deltapref.scorer_kinds.pointwise import OracleKind, RewardKind

SCORER_KINDS: dict[str, ScorerKind] = {}
OTHER_SOURCES = {"gold": GOLD}  # Δ sources that are no scorer: the built-in task's true reward
ALIASES = {"diff": "difference"}


def register(kind: ScorerKind) -> ScorerKind:
    """Add a kind. ``score``'s options are built from the kinds registered when
    ``deltapref.stages.score`` is first imported."""
    if not kind.name or kind.name in SCORER_KINDS or kind.name in OTHER_SOURCES or kind.name in ALIASES:
        raise ValueError(f"a scorer kind needs a new name, got {kind.name!r}")
    SCORER_KINDS[kind.name] = kind
    return kind


for _kind in (  # in this order `score --coef_source auto` picks the first kind given
    DifferenceKind(),
    RewardKind(),
    ExternalKind(),
    EnsembleKind(),
    OracleKind(),
):
    register(_kind)


def weight_source(name: str) -> Source | str:
    """What ``--coef NAME`` weights by: a kind's or the gold Δ source (``diff`` stands for
    ``difference``), else ``NAME`` itself, a column of precomputed weights."""
    name = ALIASES.get(name, name)
    if name in SCORER_KINDS:
        return SCORER_KINDS[name].source
    return OTHER_SOURCES.get(name, name)


def source_names() -> list[str]:
    """The names ``--coef`` takes as Δ sources."""
    return [*SCORER_KINDS, *OTHER_SOURCES]


def columns_needed(name: str) -> tuple[str, ...]:
    """Columns ``--coef NAME`` reads (a precomputed weight column reads itself)."""
    source = weight_source(name)
    return source.columns if isinstance(source, Source) else (source,)


def given_kinds(config) -> dict[ScorerKind, str]:
    """Kind -> the value of its option, for every kind a ``score`` config names a model of."""
    return {kind: getattr(config, kind.option) for kind in SCORER_KINDS.values() if getattr(config, kind.option, None)}


__all__ = ["SCORER_KINDS", "ScorerKind", "Setting", "columns_needed", "given_kinds", "register", "weight_source"]
