"""The columns deltapref writes into preference data, and which stage writes each: one vocabulary
that every writer and reader uses (the normalized pair columns themselves are in
``data/schema.py``)."""

from __future__ import annotations

REWARD_SUFFIXES = ("reward_chosen", "reward_rejected")


def reward_columns(scorer: str = "") -> tuple[str, str]:
    """The (chosen, rejected) reward columns of a scorer: ``<scorer>_reward_chosen`` and
    ``<scorer>_reward_rejected`` (plain ``reward_*`` for the reward model)."""
    prefix = f"{scorer}_" if scorer else ""
    return tuple(prefix + suffix for suffix in REWARD_SUFFIXES)


# (chosen, rejected) pairs of per-response scores
REWARD = reward_columns()  # score --reward_model (or the mean of --ensemble's members)
ENSEMBLE_REWARD = reward_columns("ensemble")  # score --ensemble: one value per member
ORACLE_REWARD = reward_columns("oracle")  # score --oracle (DRDO's oracle)
GOLD_REWARD = reward_columns("gold")  # data synth: the built-in task's true reward
RECORD_COLUMNS = ("prompt", "chosen", "rejected", "responses", "scores", "id")  # what a row is, never overwritten
DIFF = "diff"  # score --difference_model: d(x, y_w, y_l)
COEF = "coef"  # score: the reward-difference coefficient σ(Δ)^α (--coef_column renames it)

# the reference policy's log-probs of each response block (score --reference_model, or align itself)
REFERENCE_BLOCKS = ("chosen", "rejected", "kl")


def ref_logp(block: str) -> str:
    return f"ref_logp_{block}"


REF_LOGP = tuple(ref_logp(block) for block in REFERENCE_BLOCKS)
REF_CHOSEN, REF_REJECTED, REF_KL = REF_LOGP

# per-pair values a run derives before training (never written to data): rDPO/cDPO's ε_i, ODPO's offset
LABEL_EPSILON = "label_epsilon"
ODPO_OFFSET = "odpo_offset"

# numbers a policy batch may carry (PAIR_NUMBERS) and per-member lists (PAIR_LISTS)
PAIR_NUMBERS = (*REF_LOGP, COEF, DIFF, *REWARD, *ORACLE_REWARD, LABEL_EPSILON, ODPO_OFFSET)
PAIR_LISTS = ENSEMBLE_REWARD
NUMERIC = ("confidence", "chosen_score", "rejected_score", DIFF, COEF)
NUMERIC_PREFIXES = ("ref_logp_", "coef_")


def is_numeric_column(name: str) -> bool:
    """Whether loading checks that column holds numbers (or lists of numbers) in every row."""
    return name in NUMERIC or name.startswith(NUMERIC_PREFIXES) or name.endswith(REWARD_SUFFIXES)
