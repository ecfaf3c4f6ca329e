"""The columns deltapref writes into preference data, and which stage writes each: one vocabulary
that every writer and reader uses (the normalized pair columns themselves are in
``data/schema.py``)."""

from __future__ import annotations

# (chosen, rejected) pairs of per-response scores
REWARD = ("reward_chosen", "reward_rejected")  # score --reward_model (or the mean of --ensemble's members)
ENSEMBLE_REWARD = ("ensemble_reward_chosen", "ensemble_reward_rejected")  # score --ensemble: one value per member
ORACLE_REWARD = ("oracle_reward_chosen", "oracle_reward_rejected")  # score --oracle (DRDO's oracle)
GOLD_REWARD = ("gold_reward_chosen", "gold_reward_rejected")  # data synth: the built-in task's true reward
DIFF = "diff"  # score --difference_model: d(x, y_w, y_l)
COEF = "coef"  # score: the reward-difference coefficient σ(Δ)^α (--coef_column renames it)

# the reference policy's log-probs of each response block (score --reference_model, or align itself)
REFERENCE_BLOCKS = ("chosen", "rejected", "kl")


def ref_logp(block: str) -> str:
    return f"ref_logp_{block}"


REF_LOGP = tuple(ref_logp(block) for block in REFERENCE_BLOCKS)
REF_CHOSEN, REF_REJECTED, REF_KL = REF_LOGP

# numbers a policy batch may carry (PAIR_NUMBERS) and per-member lists (PAIR_LISTS)
PAIR_NUMBERS = (*REF_LOGP, COEF, DIFF, *REWARD, *ORACLE_REWARD)
PAIR_LISTS = ENSEMBLE_REWARD
# prefixes of the numeric columns loading checks in every row
NUMERIC_PREFIXES = ("reward_", "ref_logp_", "oracle_reward_", "ensemble_reward_", "gold_reward_", "coef_")
