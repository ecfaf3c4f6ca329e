"""Objectives as units (``base.py`` says what a unit declares). Adding one is a new class
and one line in a registry below."""

from typing import Literal

from deltapref.objectives.base import PolicyObjective, PolicyOutputs, pair_coefficients
from deltapref.objectives.options import PolicyLossOptions, ScorerLossOptions
from deltapref.objectives.policy import CDPO, DPO, DRDO, EDPO, IPO, KTO, ODPO, RDPO, SFT
from deltapref.objectives.ranked import RRHF
from deltapref.objectives.scorers import DifferenceModel, Oracle, RewardModel, ScorerObjective

POLICY_OBJECTIVES: dict[str, PolicyObjective] = {
    o.name: o for o in (SFT(), DPO(), IPO(), RRHF(), KTO(), EDPO(), DRDO(), RDPO(), CDPO(), ODPO())
}
SCORER_OBJECTIVES: dict[str, ScorerObjective] = {o.name: o for o in (RewardModel(), DifferenceModel(), Oracle())}
TrainedKind = Literal[tuple(SCORER_OBJECTIVES)]  # the scorer kinds deltapref trains, read from the registry

__all__ = [
    "POLICY_OBJECTIVES",
    "SCORER_OBJECTIVES",
    "PolicyLossOptions",
    "PolicyObjective",
    "PolicyOutputs",
    "TrainedKind",
    "ScorerObjective",
    "ScorerLossOptions",
    "pair_coefficients",
]
