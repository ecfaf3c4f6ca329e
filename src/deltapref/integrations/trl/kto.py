"""KTO+rc inside TRL: :class:`WeightedKTOTrainer`."""

from __future__ import annotations

import torch
from trl import KTOTrainer

from deltapref.integrations.trl.weights import WeightedTrainer
from deltapref.losses import kto_loss


class WeightedKTOTrainer(WeightedTrainer, KTOTrainer):
    """TRL's ``KTOTrainer`` with each example's loss multiplied by ``weight_column`` (default
    ``coef``): KTO+rc (RDO), where both examples of a pair carry the pair's weight (unpair scored
    pairs with ``trl.data_utils.unpair_preference_dataset``, which keeps the column). The
    per-example losses are recomputed with :func:`deltapref.losses.kto_loss` from the log-probs
    of TRL's own forwards and TRL's KL estimate z_ref, and checked against TRL's loss. Supported:
    ``loss_type="kto"``, no MoE auxiliary loss."""

    _tag_names = ["trl", "kto", "deltapref", "reward-difference-coefficients"]
    _name = "KTO+rc (TRL's KTO with deltapref's per-example weights)"
    weighting = (
        "Each example's KTO loss is multiplied by its weight (KTO+rc, RDO: the pair's R_α on both of its examples)."
    )

    def check_supported(self):
        if self.loss_type != "kto":
            raise ValueError(f"WeightedKTOTrainer supports TRL's loss_type 'kto', got {self.loss_type!r}")
        if self.aux_loss_enabled:
            raise ValueError("WeightedKTOTrainer supports no MoE auxiliary loss (router_aux_loss_coef)")

    def per_example_losses(self, inputs, recorded):
        """TRL's forwards run in this order: the policy's KL pass (when TRL estimates the KL), its
        main pass, then the reference's (unless precomputed) in the same order."""
        calls = iter(recorded)
        seq_len = inputs["input_ids"].size(1) - 1
        if self.calculate_KL:
            next(calls)
        policy = next(calls)[:, -seq_len:].sum(-1)
        if self.precompute_ref_logps:
            reference = inputs["ref_logps"]
        else:
            if self.calculate_KL:
                next(calls)
            reference = next(calls)[:, -seq_len:].sum(-1)
        mode = "train" if self.model.training else "eval"
        z_ref = torch.tensor(self._metrics[mode]["kl"][-1], device=policy.device, dtype=policy.dtype)  # TRL's own
        desirable = torch.as_tensor(inputs["label"], dtype=torch.bool, device=policy.device)
        reference = reference.to(policy.device, policy.dtype)
        lambdas = {"lambda_d": self.desirable_weight, "lambda_u": self.undesirable_weight}
        return kto_loss(policy, reference, desirable, z_ref, beta=self.beta, **lambdas)
