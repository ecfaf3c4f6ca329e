"""Hyperparameters of the objectives: the single source of truth for ``align`` and
``train-scorer`` (their configs inherit these blocks; the trainers read them as they are)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deltapref.coefficients import Source, Weighting
from deltapref.config.commands import Options, option
from deltapref.objectives.label_options import check_label_options, number_or_none
from deltapref.scorer_kinds import SCORER_KINDS, source_names, weight_source

WEIGHTING_DEFAULTS = {"alpha": 1.0, "coef_temperature": 1.0, "coef_weighting": "rdo"}  # how Δ becomes a weight
PolicyLoss = Literal["sft", "dpo", "ipo", "rrhf", "kto", "edpo", "drdo", "rdpo", "cdpo", "odpo"]
SIMPO_BETA = 2.0  # SimPO's scale for length-mean log-prob rewards (β = 2.0 to 2.5 in its paper)

POINTWISE_KINDS = tuple(name for name, kind in SCORER_KINDS.items() if not kind.pairwise)  # e-DPO may distil any


@dataclass
class PolicyLossOptions(Options):
    """Policy objectives (defaults follow the papers, FORMULAS.md)."""

    loss: PolicyLoss = option("dpo", "objective")
    coef: str | None = option(
        None,
        "reward-difference coefficients: difference (σ(d)^α; also spelled diff), "
        "reward / oracle / ensemble / external (σ(r_w − r_l)^α from those columns), gold, or a column of "
        "precomputed coefficients; for rrhf: a column of per-response rewards r_i "
        "(e.g. scores) giving σ(r_j − r_i)^α",
    )
    alpha: float = option(1.0, "coefficient exponent α; 0 reproduces the unweighted method exactly", ge=0)
    coef_temperature: float = option(
        1.0, "weights use Δ/T (e.g. --coef gold --coef_temperature 0.5: the built-in task's label temperature)", gt=0
    )
    coef_weighting: Literal["rdo", "madpo"] = option(
        "rdo", "how Δ becomes a weight: rdo σ(Δ/T)^α (down-weights close pairs) or madpo (up-weights them)"
    )
    coef_normalize: bool = option(
        False,
        "divide the weights by their mean over the data (mean 1); the relative weights, which decide which pairs "
        "carry the gradient, stay the same. AdamW's step is nearly invariant to a constant loss scale, so this "
        "changes little there (gradient clipping and Adam's ε still see the scale)",
    )
    coef_control: Literal["none", "shuffle", "sign", "magnitude"] = option(
        "none",
        "a control for what the weights carry: shuffle (the same weights permuted across pairs, seeded by --seed: "
        "their distribution without their information), sign (each pair gets the mean weight of the pairs on its "
        "side of Δ = 0: which labels the source doubts, not by how much), magnitude (the weight of |Δ|: how far "
        "apart, not which side)",
    )
    madpo_c_max: float = option(2.0, "MADPO: scale c for the closest pairs", gt=1)
    madpo_c_min: float = option(0.5, "MADPO: scale c for the easiest pairs", ge=0, lt=1)
    madpo_lambda: float = option(1.0, "MADPO: steepness λ of c(|Δ|)", gt=0)
    madpo_tau: float = option(2.0, "MADPO: margin τ where c = 1 (pairs with Δ <= −τ get weight 1)", gt=0)
    beta: float = option(0.1, "β of DPO/KTO/e-DPO and of the DRDO logp student (RDO used 0.2)", gt=0)
    tau: float = option(0.1, "IPO τ (target margin 1/(2τ))", gt=0)
    kto_lambda_d: float = option(1.0, "KTO desirable weight λ_D", ge=0)
    kto_lambda_u: float = option(1.0, "KTO undesirable weight λ_U", ge=0)
    edpo_rewards: Literal[POINTWISE_KINDS] = option(
        "reward", "e-DPO targets: the reward columns of one scorer kind (" + ", ".join(POINTWISE_KINDS) + ")"
    )
    edpo_ensemble: Literal["mean", "pessimistic"] = option(
        "mean", "e-DPO with an ensemble: mean gap, or pessimistic (worst member per pair)"
    )
    drdo_focal_weight: float = option(
        0.1, "DRDO's weight of the focal preference term (α in DRDO Eq. 6)", ge=0, renamed_from=("drdo_alpha",)
    )
    drdo_gamma: float = option(2.0, "DRDO focal exponent γ", ge=0)
    drdo_logp: Literal["auto", "sum", "mean", "token"] = option(
        "auto",
        "DRDO reading of z: auto (as the student reward reads log-probs: mean for logp_mean, else sum), "
        "sum (log π(y|x) as written; then log(1 − π_l) ≈ 0), mean (length-mean log-prob), "
        "token (length-mean, with log(1 − π_l) read per token as mean_t log(1 − p_t))",
    )
    student_reward: Literal["implicit", "head", "logp", "logp_mean"] = option(
        "implicit",
        "DRDO student reward r̂: implicit (drdo_beta·(log π − log π_ref), e-DPO's form: reads reference log-probs, "
        "so not reference-free; chosen on the study's validation draws, docs/RESULTS.md), head (a scalar head on "
        "the policy, reference-free), logp (drdo_beta·log π: rewards length), logp_mean (drdo_beta·mean_t log π, "
        "SimPO's length-normalized reward)",
    )
    drdo_beta: float | None = option(
        None,
        "scale of the DRDO student reward; default: beta for logp and implicit, 2.0 for logp_mean "
        "(SimPO's β for length-mean log-probs: per-token gaps of ~0.5 nats match oracle gaps of ~1)",
        gt=0,
    )
    ipo_length_normalize: bool = option(True, "IPO on length-normalized log-ratios (as TRL)")
    epsilon: str = option(
        "0.1",
        "rdpo/cdpo: the share of wrong labels ε: a number in [0, 0.5); auto (the share `deltapref score` estimated "
        "from a cross-fitted scorer); or per pair: a scorer kind or gold (ε_i = σ(−Δ_i/T), T = --label_temperature; "
        "for cdpo the soft label p_i = σ(Δ_i/T)), or a column of ε_i",
        numbers=True,
    )
    epsilon_max: float = option(
        0.4,
        "rdpo with a per-pair ε or auto: ε capped here (rDPO's correction divides by 1 − 2ε)",
        gt=0,
        lt=0.5,
    )
    label_temperature: float = option(1.0, "T in P(label right) = σ(Δ/T) for a per-pair --epsilon", gt=0)
    odpo_offset: str | None = option(
        None,
        "odpo: where each pair's offset comes from: a scorer kind or gold (--odpo_alpha · f(Δ), f = --odpo_scale), "
        "or a column of offsets used as they are",
    )
    odpo_alpha: float = option(1.0, "odpo: the offset's scale α (ODPO's α)", ge=0)
    odpo_scale: Literal["log", "linear"] = option(
        "log",
        "odpo: f in α·f(Δ): log (ODPO's default: log Δ, Δ below 0.01, a pair the scorer doubts, read as 0.01) or "
        "linear (Δ itself)",
    )
    label_correction: Literal["none", "flip", "drop"] = option(
        "none", "flip or drop the pairs whose --correct_with Δ is below −--correction_margin (any pair objective)"
    )
    correct_with: str | None = option(None, "the Δ source label correction reads: a scorer kind or gold")
    correction_margin: float = option(0.0, "label correction acts on pairs with Δ < −m", ge=0)

    def __post_init__(self):
        super().__post_init__()
        if self.loss == "kto" and self.kto_lambda_d == 0 and self.kto_lambda_u == 0:
            raise ValueError("--kto_lambda_d and --kto_lambda_u are both 0: KTO would have no loss to train on")
        check_label_options(self)
        if self.coef_control != "none" and not self.coef:
            raise ValueError(f"--coef_control {self.coef_control} controls --coef's weights: give --coef too")
        if self.coef_control != "none" and self.loss == "rrhf":
            raise ValueError("--coef_control works on pairs' weights; rrhf weighs ranked lists: drop it")
        if self.coef_control in ("sign", "magnitude") and self.precomputed_weights():
            raise ValueError(
                f"--coef_control {self.coef_control} needs Δ, and --coef {self.coef} is a column of weights: "
                f"use --coef {'|'.join(source_names())}, or --coef_control shuffle"
            )
        ignored = [f"--{name}" for name, default in WEIGHTING_DEFAULTS.items() if getattr(self, name) != default]
        if self.precomputed_weights() and self.loss != "rrhf" and ignored:
            raise ValueError(
                f"--coef {self.coef} is a column of precomputed weights, used as they are, so {', '.join(ignored)} "
                "would change nothing (`deltapref score --alpha` set them): drop them, or weight here with "
                f"--coef {'|'.join(source_names())}"
            )

    def epsilon_value(self) -> float | None:
        """``--epsilon`` as one number (None for ``auto`` or a per-pair source)."""
        return number_or_none(self.epsilon)

    def weight_source(self) -> Source | str | None:
        """What ``--coef`` weights by: a Δ source, a column of precomputed weights (its name), or None."""
        return weight_source(self.coef) if self.coef else None

    def precomputed_weights(self) -> bool:
        """Whether ``--coef`` names a column of weights to use as they are."""
        return isinstance(self.weight_source(), str)

    def student_beta(self) -> float:
        """The scale of the DRDO student's reward (``drdo_beta``, or its reading's default)."""
        if self.drdo_beta is not None:
            return self.drdo_beta
        return SIMPO_BETA if self.student_reward == "logp_mean" else self.beta

    def drdo_z(self) -> str:
        """How DRDO reads z: ``drdo_logp``, with ``auto`` following the student reward."""
        if self.drdo_logp != "auto":
            return self.drdo_logp
        return "mean" if self.student_reward == "logp_mean" else "sum"

    def weighting(self) -> Weighting:
        return Weighting(
            self.alpha,
            self.coef_temperature,
            self.coef_weighting,
            self.madpo_c_max,
            self.madpo_c_min,
            self.madpo_lambda,
            self.madpo_tau,
        )


@dataclass
class ScorerLossOptions(Options):
    """Scorer objectives."""

    margin_column: str | None = option(None, "reward model: a column of per-pair margins m in -log σ(Δ - m)")
    lambda_dup: float = option(1.0, "difference model: weight of the duplication term d(x,y,y)^2 (0 = off)", ge=0)
    lambda_rev: float = option(
        1.0, "difference model: weight of the reverse term (d(x,a,b)+d(x,b,a))^2 (0 = off)", ge=0
    )
    both_orders: bool = option(True, "difference model: show every pair in both orders in the main loss")
    difference_readout: Literal["auto", "pooled", "contrast"] = option(
        "auto",
        "difference model: pooled (the classifier's own: last token on decoders, [CLS] on encoders, RDO §3), "
        "contrast (its linear head on mean(h, response 1 part) − mean(h, response 2 part)), or auto: contrast on "
        "encoders, whose [CLS] barely sees the order (docs/RESULTS.md), pooled on decoders",
    )
    difference_max_length: int | None = option(
        None,
        "difference model: longest (query, response 1, response 2) input in tokens; default twice --max_length "
        "(RDO C.2), capped at the backbone's position limit; kept in the saved model and used when it scores",
        gt=1,
    )
    oracle_lm_weight: float = option(
        0.01,
        "oracle: weight of the language-modelling term (α in DRDO Eq. 5)",
        ge=0,
        le=1,
        renamed_from=("alpha_lm",),
    )
