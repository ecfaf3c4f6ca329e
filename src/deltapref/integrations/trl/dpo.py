"""DPO+rc inside TRL: :class:`WeightedDPOTrainer`."""

from __future__ import annotations

import torch
from trl import DPOTrainer

from deltapref.integrations.trl.weights import WeightedTrainer
from deltapref.losses import dpo_loss, rdpo_loss


class WeightedDPOTrainer(WeightedTrainer, DPOTrainer):
    """TRL's ``DPOTrainer`` with each pair's loss multiplied by ``weight_column`` (default
    ``coef``). Takes every ``DPOTrainer`` argument; an evaluation dataset with the column is
    checked like the training one and weighted, one without it is evaluated unweighted. Logs
    ``weights/mean|min|max`` and TRL's own (unweighted) loss as ``loss_unweighted``. Takes TRL's
    ``loss_type="sigmoid"`` (DPO) or ``"robust"`` (rDPO with ε = ``label_smoothing``).

    TRL computes the per-pair losses inside one method and returns only their mean: the trainer
    records the policy's (and the reference's) per-token log-probs as TRL's forward passes
    return them, recomputes the per-pair DPO losses with :func:`deltapref.losses.dpo_loss`,
    checks that their unweighted mean equals TRL's loss (a TRL that computes it differently is
    refused, never silently mis-weighted) and returns the weighted mean. No extra forward pass."""

    _tag_names = ["trl", "dpo", "deltapref", "reward-difference-coefficients"]
    _name = "DPO+rc (TRL's DPO with deltapref's per-pair weights)"
    weighting = "Each pair's DPO loss is multiplied by its weight (DPO+rc, RDO Eq. 7: L = −R_α · log σ(β·Δh))."

    def check_supported(self):
        unsupported = {
            "loss_type": (
                self.loss_types not in (["sigmoid"], ["robust"]),
                f"{self.loss_types} (only ['sigmoid'], DPO, or ['robust'], rDPO)",
            ),
            "f_divergence_type": (self.f_divergence_type != "reverse_kl", self.f_divergence_type),
            "ld_alpha": (self.ld_alpha is not None, self.ld_alpha),
            "use_weighting": (self.use_weighting, True),
            "router_aux_loss_coef": (self.aux_loss_enabled, "an MoE auxiliary loss"),
        }
        for name, (bad, value) in unsupported.items():
            if bad:
                raise ValueError(f"WeightedDPOTrainer supports TRL's default {name}, got {value}")

    def pair_logps(self, inputs, recorded) -> tuple[torch.Tensor, ...]:
        """(policy chosen, policy rejected, reference chosen, reference rejected) log-probs of the
        batch's pairs, summed over completion tokens, from what TRL's forwards returned."""
        seq_len = inputs["completion_mask"].size(1) - 1
        policy = recorded[0][:, -seq_len:].sum(dim=1).chunk(2)
        if self.precompute_ref_logps:
            reference = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            reference = recorded[1][:, -seq_len:].sum(dim=1).chunk(2)
        reference = tuple(r.to(policy[0].device, policy[0].dtype) for r in reference)
        return (*policy, *reference)

    def per_example_losses(self, inputs, recorded):
        logps = self.pair_logps(inputs, recorded)
        if self.loss_types == ["robust"]:
            return rdpo_loss(*logps, beta=self.beta, epsilon=self.label_smoothing)
        return dpo_loss(*logps, beta=self.beta)
