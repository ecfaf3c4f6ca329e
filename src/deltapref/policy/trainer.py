"""``AlignTrainer``: one Trainer for every policy objective. It runs the policy forward on a
padded batch, reads per-sequence log-probs (and the student's reward head for DRDO), and hands
tensors to the pure loss named by ``loss`` (``deltapref.losses``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses as L
from ..batching import batch_logps, sequence_logps
from ..coefficients import reward_difference_coefficient
from ..models import lm_forward
from ..training import MetricsTrainer

POLICY_LOSSES = ("sft", "dpo", "ipo", "rrhf", "kto", "edpo", "drdo")
NEEDS_REFERENCE = ("dpo", "ipo", "kto", "edpo")


@dataclass
class LossOptions:
    """Hyperparameters of the policy objectives (defaults follow the papers, FORMULAS.md)."""

    loss: str = "dpo"
    beta: float = 0.1
    tau: float = 0.1
    alpha: float = 1.0                 # coefficient exponent for --coef (RDO)
    coef: str | None = None            # column or source of reward-difference coefficients (rrhf: reward list column)
    kto_lambda_d: float = 1.0
    kto_lambda_u: float = 1.0
    edpo_rewards: str = "reward"       # reward | ensemble | oracle
    edpo_ensemble: str = "mean"        # mean | pessimistic
    drdo_alpha: float = 0.1
    drdo_gamma: float = 2.0
    drdo_logp: str = "sum"             # z = sum or length-mean log-prob
    student_reward: str = "head"       # head (scalar head on the policy) | logp (beta * sum log-prob)
    ipo_length_normalize: bool = True


def pair_coefficients(batch: dict, options: LossOptions) -> torch.Tensor | None:
    """R_α per pair from ``options.coef``: ``diff`` → σ(d)^α; ``reward``/``oracle``/``ensemble`` →
    σ(r_w − r_l)^α from those columns; any other column name → its values as they are."""
    if not options.coef:
        return None
    source = options.coef
    if source == "diff":
        return reward_difference_coefficient(batch["diff"], options.alpha)
    if source in ("reward", "oracle"):
        prefix = "" if source == "reward" else "oracle_"
        return reward_difference_coefficient(batch[f"{prefix}reward_chosen"] - batch[f"{prefix}reward_rejected"], options.alpha)
    if source == "ensemble":
        gap = (batch["ensemble_reward_chosen"] - batch["ensemble_reward_rejected"]).mean(dim=1)
        return reward_difference_coefficient(gap, options.alpha)
    return batch[source].detach().float()


class AlignTrainer(MetricsTrainer):
    """Trains a causal LM with one of ``POLICY_LOSSES``."""

    def __init__(self, *args, options: LossOptions, **kwargs):
        if options.loss not in POLICY_LOSSES:
            raise ValueError(f"loss must be one of {POLICY_LOSSES}")
        super().__init__(*args, **kwargs)
        self.options = options

    def _logps(self, model, batch, reward: bool = False):
        """Per-response log-prob sums (block by block: chosen, rejected, ...), token counts and,
        for a DRDO student with a head, its rewards."""
        if reward:
            logits, rewards = lm_forward(model, batch["input_ids"], batch["attention_mask"], reward=True)
            sums, counts = sequence_logps(logits, batch["input_ids"], batch["response_mask"])
        else:
            (sums, counts), rewards = batch_logps(model, batch), None
        return sums, counts.clamp(min=1), rewards

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        o = self.options
        if o.loss == "rrhf":
            loss = self._rrhf(model, inputs)
        elif o.loss == "sft":
            sums, counts, _ = self._logps(model, inputs)
            loss = -sums.sum() / counts.sum()
            self.store(nll=loss)
        else:
            loss = self._pairwise(model, inputs)
        return (loss, {}) if return_outputs else loss

    def _pairwise(self, model, batch):
        o = self.options
        sums, counts, rewards = self._logps(model, batch, reward=o.loss == "drdo" and o.student_reward == "head")
        n = sums.shape[0] // (3 if o.loss == "kto" else 2)
        chosen, rejected = sums[:n], sums[n: 2 * n]
        coef = pair_coefficients(batch, o)
        self.store(logps_chosen=chosen, logps_rejected=rejected)
        if coef is not None:
            self.store(coef_mean=coef)
        if o.loss == "drdo":
            return self._drdo(batch, chosen, rejected, counts[:n], counts[n: 2 * n], rewards, n)
        ref_c, ref_r = batch["ref_logp_chosen"], batch["ref_logp_rejected"]
        h_c, h_r = (chosen - ref_c).detach(), (rejected - ref_r).detach()
        self.store(rewards_chosen=o.beta * h_c, rewards_rejected=o.beta * h_r,
                   reward_margin=o.beta * (h_c - h_r), reward_accuracy=(h_c > h_r).float())
        if o.loss == "dpo":
            per_pair = L.dpo_loss(chosen, rejected, ref_c, ref_r, o.beta, coef)
        elif o.loss == "ipo":
            lc, lr = (counts[:n], counts[n: 2 * n]) if o.ipo_length_normalize else (1.0, 1.0)
            per_pair = L.ipo_loss(chosen / lc, rejected / lr, ref_c / lc, ref_r / lr, o.tau, coef)
        elif o.loss == "kto":
            per_pair = self._kto(batch, chosen, rejected, sums[2 * n:], coef)
        else:
            per_pair = self._edpo(batch, chosen, rejected, ref_c, ref_r)
        return per_pair.mean()

    def _kto(self, batch, chosen, rejected, kl_logps, coef):
        o = self.options
        z_ref = L.kto_reference_point(kl_logps, batch["ref_logp_kl"])
        z_ref = self.accelerator.reduce(z_ref.detach().clone(), reduction="mean")  # one z_ref across processes
        self.store(kl_reference=z_ref)
        policy = torch.cat([chosen, rejected])
        ref = torch.cat([batch["ref_logp_chosen"], batch["ref_logp_rejected"]])
        desirable = torch.arange(policy.shape[0], device=policy.device) < chosen.shape[0]
        both = None if coef is None else torch.cat([coef, coef])
        return L.kto_loss(policy, ref, desirable, z_ref, o.beta, o.kto_lambda_d, o.kto_lambda_u, both)

    def _edpo(self, batch, chosen, rejected, ref_c, ref_r):
        o = self.options
        if o.edpo_rewards == "ensemble":
            first, second = batch["ensemble_reward_chosen"], batch["ensemble_reward_rejected"]
        else:
            prefix = "oracle_" if o.edpo_rewards == "oracle" else ""
            first, second = batch[f"{prefix}reward_chosen"], batch[f"{prefix}reward_rejected"]
        per_pair = L.edpo_loss(chosen, rejected, ref_c, ref_r, first, second, o.beta, o.edpo_ensemble)
        self.store(distill_error=per_pair)
        return per_pair

    def _drdo(self, batch, chosen, rejected, len_c, len_r, rewards, n):
        o = self.options
        z_c, z_r = (chosen / len_c, rejected / len_r) if o.drdo_logp == "mean" else (chosen, rejected)
        if o.student_reward == "head":
            r_c, r_r = rewards[:n], rewards[n: 2 * n]
        else:
            r_c, r_r = o.beta * chosen, o.beta * rejected
        total, distill, focal = L.drdo_loss(r_c, r_r, batch["oracle_reward_chosen"], batch["oracle_reward_rejected"],
                                            z_c, z_r, o.drdo_alpha, o.drdo_gamma)
        self.store(distill_error=distill, focal=focal, student_margin=(r_c - r_r).detach(),
                   oracle_margin=batch["oracle_reward_chosen"] - batch["oracle_reward_rejected"])
        return total.mean()

    def _rrhf(self, model, batch):
        o = self.options
        b, k = batch["scores"].shape
        sums, counts, _ = self._logps(model, batch)
        mean_logps = (sums / counts).view(k, b).transpose(0, 1)  # responses come block by block
        scores = batch["scores"].masked_fill(~batch["valid"], float("-inf"))
        best = scores.argmax(dim=1)
        best_nll = -mean_logps[torch.arange(b, device=best.device), best]
        coef = None
        if o.coef:
            rewards = batch["ranking_rewards"]
            gaps = rewards.unsqueeze(1) - rewards.unsqueeze(2)  # [b, i, j] = r_j − r_i
            coef = reward_difference_coefficient(gaps, o.alpha)
            self.store(coef_mean=coef[gaps > 0].mean())
        total, rank, ft = L.rrhf_loss(mean_logps, batch["scores"], batch["valid"], best_nll, coef)
        self.store(rank_loss=rank, sft_loss=ft)
        return total.mean()
