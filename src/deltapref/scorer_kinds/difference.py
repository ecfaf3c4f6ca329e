"""RDO's difference model as a scorer kind: one forward pass reads d(x, y1, y2) for a pair."""

from __future__ import annotations

from typing import Literal

from ..coefficients import Source
from ..columns import DIFF
from ..config import option
from ..models import is_classifier
from .base import ScorerKind, Setting, by_fold, texts
from .inference import balanced_differences, pair_differences

ORDER = Setting(
    "difference_order",
    Literal["balanced", "shown"],
    option(
        "balanced",
        "difference model: balanced = (d(x,w,l) − d(x,l,w))/2, antisymmetric by construction (two passes); "
        "shown = d(x,w,l) alone (one pass; trusts the model to be antisymmetric)",
    ),
)


class DifferenceKind(ScorerKind):
    name = "difference"
    option = "difference_model"
    help = "difference model directory"
    what = "a difference model"
    source = Source((DIFF,), lambda c: c[DIFF])  # d(x, y_w, y_l)
    pairwise = True
    settings = (ORDER,)

    def problem(self, config):
        if config.get("deltapref_kind") in ("reward", "oracle", "policy"):
            return "it scores single responses, not pairs"
        return None if is_classifier(config) else "it has no pair-scoring head"

    def score(self, loaded, rows, config):
        differences = balanced_differences if config.difference_order == "balanced" else pair_differences
        return {DIFF: by_fold(differences, loaded, rows, *texts(rows), config=config)}

    def provenance(self, value, config, column):
        return {**super().provenance(value, config, column), "order": config.difference_order}
