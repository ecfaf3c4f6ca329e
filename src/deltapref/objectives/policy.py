"""The policy objectives as units: SFT, DPO, IPO, KTO, e-DPO, DRDO (RRHF: ``ranked.py``).
Each only wires batch tensors into its pure loss (``deltapref.losses``) and names its metrics."""

from __future__ import annotations

import torch

from deltapref import losses as L
from deltapref.columns import LABEL_EPSILON, ODPO_OFFSET, ORACLE_REWARD, REF_CHOSEN, REF_KL, REF_REJECTED
from deltapref.objectives.base import Metrics, PolicyObjective, PolicyOutputs, identity, pair_coefficients
from deltapref.objectives.diagnostics import policy_movement, reward_length_tracking
from deltapref.objectives.options import PolicyLossOptions
from deltapref.scorer_kinds import SCORER_KINDS


class SFT(PolicyObjective):
    """Token cross-entropy on the chosen responses, averaged over every process's tokens: each
    process divides its sum by the processes' mean token count, so the gradients' average over
    processes is the one-process gradient of the whole batch."""

    name = "sft"
    blocks = ("chosen",)

    def compute(self, outputs, batch, options, reduce_mean=identity):
        tokens = reduce_mean(outputs.counts.sum().float().detach())
        loss = -outputs.logps.sum() / tokens
        return loss, {"nll": loss}


class PairObjective(PolicyObjective):
    """An objective on (chosen, rejected) log-probs, optionally weighted by R_α per pair."""

    def compute(self, outputs, batch, options, reduce_mean=identity):
        chosen, rejected = outputs.block(0), outputs.block(1)
        coef = pair_coefficients(batch, options)
        metrics: Metrics = {"logps/chosen": chosen, "logps/rejected": rejected}
        if coef is not None:
            metrics["weights/mean"] = coef
        per_pair = self.per_pair(outputs, batch, options, coef, metrics, reduce_mean)
        return per_pair.mean(), metrics

    def per_pair(
        self,
        outputs: PolicyOutputs,
        batch: dict,
        options: PolicyLossOptions,
        coef: torch.Tensor | None,
        metrics: Metrics,
        reduce_mean,
    ) -> torch.Tensor:
        raise NotImplementedError


class ReferencePairObjective(PairObjective):
    """A pair objective on implicit rewards h = log π_θ − log π_ref (reference columns needed)."""

    def uses_reference(self, options):
        return True

    def per_pair(self, outputs, batch, options, coef, metrics, reduce_mean):
        chosen, rejected = outputs.block(0), outputs.block(1)
        ref_c, ref_r = batch[REF_CHOSEN], batch[REF_REJECTED]
        h_c, h_r = (chosen - ref_c).detach(), (rejected - ref_r).detach()
        metrics.update(
            {
                "rewards/chosen": options.beta * h_c,
                "rewards/rejected": options.beta * h_r,
                "rewards/margins": options.beta * (h_c - h_r),
                "rewards/accuracies": (h_c > h_r).float(),
            }
        )
        return self.loss(outputs, batch, options, coef, metrics, reduce_mean)

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean) -> torch.Tensor:
        raise NotImplementedError


class DPO(ReferencePairObjective):
    """DPO and DPO+rc."""

    name = "dpo"

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        return L.dpo_loss(
            outputs.block(0), outputs.block(1), batch[REF_CHOSEN], batch[REF_REJECTED], options.beta, coef
        )


class LabelNoiseDPO(ReferencePairObjective):
    """A DPO loss that takes the share of wrong labels ε: one, or each pair's (the
    ``label_epsilon`` column the run derives from ``--epsilon``)."""

    pure_loss = staticmethod(L.rdpo_loss)

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        metrics["label_epsilon"] = batch[LABEL_EPSILON]
        c, r = outputs.block(0), outputs.block(1)
        return self.pure_loss(c, r, batch[REF_CHOSEN], batch[REF_REJECTED], options.beta, batch[LABEL_EPSILON], coef)


class RDPO(LabelNoiseDPO):
    """rDPO: DPO's unbiased loss under labels flipped with probability ε."""

    name = "rdpo"


class CDPO(LabelNoiseDPO):
    """cDPO: DPO against the soft label 1 − ε."""

    name = "cdpo"
    pure_loss = staticmethod(L.cdpo_loss)


class ODPO(ReferencePairObjective):
    """ODPO: DPO whose margin must exceed each pair's offset (``odpo_offset``, from ``--odpo_offset``)."""

    name = "odpo"

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        metrics["odpo_offset"] = batch[ODPO_OFFSET]
        c, r = outputs.block(0), outputs.block(1)
        return L.odpo_loss(c, r, batch[REF_CHOSEN], batch[REF_REJECTED], batch[ODPO_OFFSET], options.beta, coef)


class IPO(ReferencePairObjective):
    """IPO, on length-normalized log-ratios unless ``ipo_length_normalize`` is off."""

    name = "ipo"

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        if options.ipo_length_normalize:
            lc, lr = outputs.block(0, outputs.counts), outputs.block(1, outputs.counts)
        else:
            lc, lr = 1.0, 1.0
        return L.ipo_loss(
            outputs.block(0) / lc,
            outputs.block(1) / lr,
            batch[REF_CHOSEN] / lc,
            batch[REF_REJECTED] / lr,
            options.tau,
            coef,
        )


class KTO(ReferencePairObjective):
    """KTO and KTO+rc: both members of a pair are examples (chosen desirable) weighted by the
    pair's R_α; z_ref comes from the mismatched block, averaged across processes."""

    name = "kto"
    blocks = ("chosen", "rejected", "kl")

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        z_ref = L.kto_reference_point(outputs.block(2), batch[REF_KL])
        z_ref = reduce_mean(z_ref.detach().clone())
        metrics["kl_reference"] = z_ref
        policy = torch.cat([outputs.block(0), outputs.block(1)])
        ref = torch.cat([batch[REF_CHOSEN], batch[REF_REJECTED]])
        desirable = torch.arange(policy.shape[0], device=policy.device) < outputs.rows
        both = None if coef is None else torch.cat([coef, coef])
        return L.kto_loss(policy, ref, desirable, z_ref, options.beta, options.kto_lambda_d, options.kto_lambda_u, both)


class EDPO(ReferencePairObjective):
    """e-DPO: distil the reward gaps of a pointwise scorer kind's columns (a reward model's, an
    ensemble's per-member lists, the oracle's, an external reward model's)."""

    name = "edpo"

    def required_columns(self, options):
        return list(SCORER_KINDS[options.edpo_rewards].source.columns) + super().required_columns(options)

    def loss(self, outputs, batch, options, coef, metrics, reduce_mean):
        first, second = (batch[c] for c in SCORER_KINDS[options.edpo_rewards].source.columns)
        per_pair = L.edpo_loss(
            outputs.block(0),
            outputs.block(1),
            batch[REF_CHOSEN],
            batch[REF_REJECTED],
            first,
            second,
            options.beta,
            options.edpo_ensemble,
        )
        metrics["distill_error"] = per_pair
        return per_pair


class DRDO(PairObjective):
    """DRDO's student: distil the oracle's reward gaps into the student's own reward r̂ plus the
    focal preference term. r̂ (``student_reward``): ``head`` a scalar head; ``logp`` b·log π;
    ``logp_mean`` b·mean_t log π (SimPO-style); ``implicit`` b·(log π − log π_ref) (e-DPO's
    form, not reference-free), b = ``options.student_beta()``. z (``options.drdo_z()``): ``sum``
    log π(y|x) as written; ``mean`` the length-mean log-prob; ``token`` the length-mean with
    log(1 − π_l) read per token, mean_t log(1 − p_t)."""

    name = "drdo"
    traced = ("student_margin", "oracle_margin", "length_gap")

    def diagnostics(self, trace, log_history, options):
        movement, moved_warnings = policy_movement(log_history)
        tracking, length_warnings = reward_length_tracking(trace)
        return {**movement, **tracking}, moved_warnings + length_warnings

    def student_head(self, options):
        return options.student_reward == "head"

    def uses_reference(self, options):
        return options.student_reward == "implicit"

    def needs_unlikelihood(self, options):
        return options.drdo_z() == "token"

    def required_columns(self, options):
        return [*ORACLE_REWARD, *super().required_columns(options)]

    def student_rewards(self, outputs, batch, options) -> tuple[torch.Tensor, torch.Tensor]:
        """r̂(x, y_w), r̂(x, y_l) as ``student_reward`` reads them."""
        if options.student_reward == "head":
            return outputs.block(0, outputs.rewards), outputs.block(1, outputs.rewards)
        chosen, rejected = outputs.block(0), outputs.block(1)
        if options.student_reward == "logp_mean":
            chosen, rejected = chosen / outputs.block(0, outputs.counts), rejected / outputs.block(1, outputs.counts)
        elif options.student_reward == "implicit":
            chosen, rejected = chosen - batch[REF_CHOSEN], rejected - batch[REF_REJECTED]
        return options.student_beta() * chosen, options.student_beta() * rejected

    def per_pair(self, outputs, batch, options, coef, metrics, reduce_mean):
        chosen, rejected = outputs.block(0), outputs.block(1)
        len_c, len_r = outputs.block(0, outputs.counts), outputs.block(1, outputs.counts)
        rejected_log1m = None
        if options.drdo_z() == "sum":
            z_c, z_r = chosen, rejected
        else:
            z_c, z_r = chosen / len_c, rejected / len_r
            if options.drdo_z() == "token":
                rejected_log1m = outputs.block(1, outputs.unlikely) / len_r
        r_c, r_r = self.student_rewards(outputs, batch, options)
        oracle_c, oracle_r = batch[ORACLE_REWARD[0]], batch[ORACLE_REWARD[1]]
        total, distill, focal = L.drdo_loss(
            r_c, r_r, oracle_c, oracle_r, z_c, z_r, options.drdo_focal_weight, options.drdo_gamma, rejected_log1m
        )
        metrics.update(
            distill_error=distill,
            focal=focal,
            student_margin=(r_c - r_r).detach(),
            oracle_margin=oracle_c - oracle_r,
            length_gap=len_c - len_r,
        )
        return total
