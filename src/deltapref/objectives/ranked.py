"""RRHF and RRHF+rc on ranked lists (pairs arrive as 2-response lists)."""

from __future__ import annotations

import torch

from deltapref import losses as L
from deltapref.coefficients import Weighting
from deltapref.objectives.base import PolicyObjective, identity


def rrhf_coefficients(rewards: torch.Tensor, weighting: Weighting) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight of every (worse i, better j) entry of a list, ``coef[b, i, j] = weighting(r_j − r_i)``
    (σ(r_j − r_i)^α by default), and the gaps r_j − r_i themselves."""
    gaps = rewards.unsqueeze(1) - rewards.unsqueeze(2)
    return weighting(gaps), gaps


class RRHF(PolicyObjective):
    """Ranking hinge on length-normalized log-probs plus cross-entropy on the best response;
    with ``coef`` (a per-response reward list column) each ranked pair is weighted by R_α."""

    name = "rrhf"
    blocks = ()
    ranked = True

    def block_count(self, batch):
        return batch["scores"].shape[1]

    def required_columns(self, options):
        return [options.coef] if options.coef else []

    def compute(self, outputs, batch, options, reduce_mean=identity):
        b = batch["scores"].shape[0]
        mean_logps = outputs.matrix(outputs.logps / outputs.counts)
        scores = batch["scores"].masked_fill(~batch["valid"], float("-inf"))
        best = scores.argmax(dim=1)
        best_nll = -mean_logps[torch.arange(b, device=best.device), best]
        coef, metrics = None, {}
        if options.coef:
            coef, gaps = rrhf_coefficients(batch["ranking_rewards"], options.weighting())
            ranked = (gaps > 0).to(coef.dtype)
            metrics["weights/mean"] = (coef * ranked).sum() / ranked.sum().clamp(min=1)  # 0 when every score ties
        total, rank, ft = L.rrhf_loss(mean_logps, batch["scores"], batch["valid"], best_nll, coef)
        metrics.update(rank_loss=rank, sft_loss=ft)
        return total.mean(), metrics
