"""What an objective is. A policy objective declares the response blocks its batches hold, the
columns it reads, whether it needs reference log-probs, and turns the policy's per-response
log-probs into ``(loss, metrics)`` by calling a pure loss from ``deltapref.losses``. Trainers
run the forward pass and the loop; they never branch on an objective's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from deltapref import coefficients
from deltapref.objectives.diagnostics import policy_movement
from deltapref.objectives.label_options import label_columns
from deltapref.objectives.options import PolicyLossOptions
from deltapref.scorer_kinds import columns_needed

Metrics = dict[str, torch.Tensor]
# TRL's names for the policy metrics (``rewards/chosen``, ...); the names deltapref logged before
# are logged beside them for one release
RENAMED_METRICS = {
    "rewards/chosen": "rewards_chosen",
    "rewards/rejected": "rewards_rejected",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "logps/chosen": "logps_chosen",
    "logps/rejected": "logps_rejected",
    "weights/mean": "coef_mean",
}


def identity(value: torch.Tensor) -> torch.Tensor:
    return value


@dataclass
class PolicyOutputs:
    """Per-response log-prob sums and token counts, block by block (every row's first
    response, then every row's second, ...), and the DRDO student's head rewards if any."""

    logps: torch.Tensor
    counts: torch.Tensor
    n_blocks: int  # how many responses each row contributes (the objective's ``blocks`` names them)
    rewards: torch.Tensor | None = None
    unlikely: torch.Tensor | None = None  # Σ_t log(1 − p_t) per response, when the objective asks for it

    @property
    def rows(self) -> int:
        return self.logps.shape[0] // self.n_blocks

    def block(self, j: int, values: torch.Tensor | None = None) -> torch.Tensor:
        """Block ``j`` of ``values`` (default: the log-probs)."""
        values = self.logps if values is None else values
        return values[j * self.rows : (j + 1) * self.rows]

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` as (rows, blocks)."""
        return values.view(self.n_blocks, self.rows).transpose(0, 1)


class PolicyObjective:
    """One policy objective. ``blocks`` names the responses each row contributes (in order);
    ``ranked`` objectives read ranked lists with one block per list position."""

    name: str = ""
    blocks: tuple[str, ...] = ("chosen", "rejected")
    ranked: bool = False
    traced: tuple[str, ...] = ()  # per-pair metrics the trainer keeps for ``diagnostics``

    def block_count(self, batch: dict) -> int:
        """How many responses each row of ``batch`` holds."""
        return len(self.blocks)

    def uses_reference(self, options: PolicyLossOptions) -> bool:
        """Whether the objective reads reference log-probs (``ref_logp_<block>`` columns)."""
        return False

    def student_head(self, options: PolicyLossOptions) -> bool:
        """Whether the policy carries a scalar reward head for this objective."""
        return False

    def needs_unlikelihood(self, options: PolicyLossOptions) -> bool:
        """Whether the objective reads Σ_t log(1 − p_t) per response."""
        return False

    def required_columns(self, options: PolicyLossOptions) -> list[str]:
        """Data columns the objective reads (beyond prompt and responses): its weights' and the
        label options' (``--epsilon``, ``--odpo_offset``, ``--correct_with``)."""
        weights = list(columns_needed(options.coef)) if options.coef else []
        return list(dict.fromkeys(weights + label_columns(options)))

    def diagnostics(
        self, trace: dict[str, np.ndarray], log_history: list[dict], options: PolicyLossOptions
    ) -> tuple[dict, list[str]]:
        """What the run's summary reports about how training went, and warnings to show.
        Default: how far the policy's log-probs moved (``diagnostics.policy_movement``)."""
        return policy_movement(log_history)

    def compute(
        self,
        outputs: PolicyOutputs,
        batch: dict,
        options: PolicyLossOptions,
        reduce_mean: Callable[[torch.Tensor], torch.Tensor] = identity,
    ) -> tuple[torch.Tensor, Metrics]:
        """The scalar loss of one batch and the metrics to log. ``reduce_mean`` averages a
        tensor across processes (identity in one process)."""
        raise NotImplementedError


def pair_coefficients(batch: dict, options: PolicyLossOptions) -> torch.Tensor | None:
    """R_α per pair from ``options.coef`` (a scorer kind's Δ, or precomputed weights), or None."""
    return coefficients.coefficients(options.weight_source(), batch, options.weighting()) if options.coef else None
