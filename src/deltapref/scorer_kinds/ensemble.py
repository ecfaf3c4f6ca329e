"""An ensemble of reward models (e-DPO's targets): each member's rewards as per-row lists; Δ is
the mean member gap. Without a ``--reward_model`` in the run, the members' mean also fills the
reward columns."""

from __future__ import annotations

from pathlib import Path

from deltapref.artifacts.records import listed_members
from deltapref.coefficients import Source
from deltapref.columns import ENSEMBLE_REWARD, REWARD
from deltapref.errors import OptionError
from deltapref.models.loading import load_scorer, scorer_members
from deltapref.models.provenance import describe
from deltapref.scorer_kinds.base import by_fold, texts
from deltapref.scorer_kinds.inference import pointwise_rewards
from deltapref.scorer_kinds.pointwise import RewardKind

ENSEMBLE_FILE = "ensemble.json"  # an ensemble directory's list of members (``train-scorer --kind ensemble``)


class EnsembleKind(RewardKind):
    name = "ensemble"
    option = "ensemble"
    help = "ensemble directory (with ensemble.json) or comma-separated reward models"
    what = "a reward model (an ensemble member)"
    source = Source(ENSEMBLE_REWARD, lambda c: (c[ENSEMBLE_REWARD[0]] - c[ENSEMBLE_REWARD[1]]).mean(dim=-1))
    fills = REWARD

    @staticmethod
    def members(value: str) -> list[str]:
        listed = listed_members(value, ENSEMBLE_FILE) if Path(value).is_dir() else None
        members = listed or [m.strip() for m in value.split(",") if m.strip()]
        if not members:
            raise OptionError(f"--ensemble {value!r} names no reward model")
        return members

    def paths(self, value):
        return [path for member in self.members(value) for path in scorer_members(member)]

    def load(self, value, config):
        return [[load_scorer(path) for path in scorer_members(member)] for member in self.members(value)]

    def score(self, loaded, rows, config):
        prompts, chosen, rejected = texts(rows)
        per_member = [
            [by_fold(pointwise_rewards, member, rows, prompts, side, config=config) for side in (chosen, rejected)]
            for member in loaded
        ]
        out = {
            name: [list(v) for v in zip(*(m[side] for m in per_member))] for side, name in enumerate(ENSEMBLE_REWARD)
        }
        for mean, lists in zip(REWARD, ENSEMBLE_REWARD):
            out[mean] = [sum(v) / len(v) for v in out[lists]]
        return out

    def provenance(self, value, config, column):
        ensemble = {"ensemble": [describe(m) for m in self.members(value)]}
        return dict(ensemble, reduce="mean") if column in self.fills else ensemble
