"""The pointwise kinds deltapref trains: the Bradley–Terry reward model and DRDO's oracle (a
causal LM with a reward head). Each writes r(x, y_w) and r(x, y_l); Δ is their gap."""

from __future__ import annotations

from ..coefficients import gap
from ..columns import ORACLE_REWARD, REWARD
from ..models import is_classifier
from .base import ScorerKind, by_fold, texts
from .inference import pointwise_rewards


class PointwiseKind(ScorerKind):
    def score(self, loaded, rows, config):
        prompts, chosen, rejected = texts(rows)
        values = [by_fold(pointwise_rewards, loaded, rows, prompts, side, config=config) for side in (chosen, rejected)]
        return dict(zip(self.source.columns, values))


class RewardKind(PointwiseKind):
    name = "reward"
    option = "reward_model"
    help = "pointwise reward model directory"
    what = "a pointwise reward model (reward model or oracle)"
    source = gap(REWARD)

    def problem(self, config):
        if config.get("deltapref_kind") == "difference":
            return "it scores pairs, not single responses (pass it as --difference_model)"
        if not is_classifier(config) and not config.get("deltapref_reward_head"):
            return "it has no reward head"
        return None


class OracleKind(PointwiseKind):
    name = "oracle"
    option = "oracle"
    help = "DRDO oracle directory (causal LM with reward head)"
    what = "an oracle (a causal LM with a reward head)"
    source = gap(ORACLE_REWARD)

    def problem(self, config):
        return None if config.get("deltapref_reward_head") else "it has no reward head"
