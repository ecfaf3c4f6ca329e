"""The fair map's arms and recipes: what each arm trains, which arms read what, and the pipelines
of a validation draw (every arm at every rate of the grid) and of a test seed (every arm at the
rate its validation chose). Scorers are cross-fitted in every pipeline, so no arm weighs a pair
by a scorer that was trained on that pair's label."""

from __future__ import annotations

from deltapref.recipes.demo import LENGTHS, generation_stages, task_stages
from deltapref.study.recipes import scorers_needed

# label noise of the pairs: condition -> data synth options; the map runs the ones --conditions names
CONDITIONS = {
    "bt-0.5": {"temperature": 0.5},
    "bt-1": {"temperature": 1.0},
    "flip-10": {"label_noise": "flip", "flip_rate": 0.1},
    "flip-30": {"label_noise": "flip", "flip_rate": 0.3},
}
LABELS = {  # how tables name them
    "bt-0.5": "BT, T = 0.5",
    "bt-1": "BT, T = 1",
    "flip-10": "flip 10%",
    "flip-30": "flip 30%",
}
TASK = {"n_train": 1000, "n_test": 200, "sft_epochs": 4, "scorer_epochs": 4}
LEARNING_RATES = (2.5e-4, 5e-4, 1e-3)  # every arm's grid (equal budgets); DPO's earlier choices lie inside it
CROSS_FIT = 3  # folds of every scorer: each pair's Δ comes from a scorer that never saw it
PER_PAIR = "reward"  # the scorer the per-pair arms read (soft labels, per-pair ε, correction, ODPO)
CORRECTION_MARGIN = 1.0  # flip / drop only where the scorer is confident the label is wrong: Δ < −1

GOLD = "gold"  # arms that read the task's true reward: bounds and controls, not methods a user can run
NOISE = "label noise"  # noise-robust objectives with one global ε: no magnitude
LEARNED = "learned"  # arms whose per-pair information comes from a trained scorer

# name -> (group, align options); "{tau}" is the gold weights' temperature (the condition's T; 0.5 for flips)
ARMS: dict[str, tuple[str, dict]] = {
    "dpo": ("baseline", {"loss": "dpo"}),
    "ceiling": (GOLD, {"loss": "dpo", "label_correction": "flip", "correct_with": "gold"}),
    "gold": (GOLD, {"loss": "dpo", "coef": "gold", "coef_temperature": "{tau}"}),
    "gold-sign": (GOLD, {"loss": "dpo", "coef": "gold", "coef_temperature": "{tau}", "coef_control": "sign"}),
    "gold-magnitude": (
        GOLD,
        {"loss": "dpo", "coef": "gold", "coef_temperature": "{tau}", "coef_control": "magnitude"},
    ),
    "gold-shuffled": (GOLD, {"loss": "dpo", "coef": "gold", "coef_temperature": "{tau}", "coef_control": "shuffle"}),
    "rdpo": (NOISE, {"loss": "rdpo", "epsilon": "0.1"}),
    "rdpo-auto": (NOISE, {"loss": "rdpo", "epsilon": "auto"}),
    "cdpo": (NOISE, {"loss": "cdpo", "epsilon": "0.1"}),
    "cdpo-auto": (NOISE, {"loss": "cdpo", "epsilon": "auto"}),
    **{
        f"rc-{kind}-a{alpha}": (LEARNED, {"loss": "dpo", "coef": kind, "alpha": alpha})
        for kind in ("reward", "difference")
        for alpha in (1, 2, 4)
    },
    "rc-oracle-a1": (LEARNED, {"loss": "dpo", "coef": "oracle"}),
    "reward-shuffled": (LEARNED, {"loss": "dpo", "coef": "reward", "alpha": 4, "coef_control": "shuffle"}),
    "soft-labels": (LEARNED, {"loss": "cdpo", "epsilon": PER_PAIR}),
    "rdpo-pair": (LEARNED, {"loss": "rdpo", "epsilon": PER_PAIR}),
    "flip": (
        LEARNED,
        {"loss": "dpo", "label_correction": "flip", "correct_with": PER_PAIR, "correction_margin": CORRECTION_MARGIN},
    ),
    "drop": (
        LEARNED,
        {"loss": "dpo", "label_correction": "drop", "correct_with": PER_PAIR, "correction_margin": CORRECTION_MARGIN},
    ),
    "odpo": (LEARNED, {"loss": "odpo", "odpo_offset": PER_PAIR}),
    "edpo": (LEARNED, {"loss": "edpo"}),
    "drdo": (LEARNED, {"loss": "drdo"}),
}
CONTROLS = ("gold-sign", "gold-magnitude", "gold-shuffled", "reward-shuffled")  # not candidates of a decision


def learned_candidates() -> list[str]:
    """The arms a user without gold rewards could run whose per-pair information is learned: the
    decisive test's candidates (the shuffled control excluded)."""
    return [name for name, (group, _) in ARMS.items() if group == LEARNED and name not in CONTROLS]


def gold_temperature(condition: dict) -> float:
    return condition.get("temperature", 0.5)


def arm_options(name: str, condition: dict) -> dict:
    """An arm's align options in a condition (the gold weights' temperature filled in)."""
    options = dict(ARMS[name][1])
    return {k: gold_temperature(condition) if v == "{tau}" else v for k, v in options.items()}


def task_prefix(condition: dict, seed: int, scorers: tuple[str, ...] = ("reward", "difference", "oracle")) -> dict:
    """The task, SFT and the named scorers, each cross-fitted, and the training pairs scored by them
    (``score`` estimates the share of wrong labels from each held-out Δ: ``--epsilon auto``)."""
    stages = task_stages(seed, TASK, condition)
    options = {"reward": "reward_model", "difference": "difference_model", "oracle": "oracle"}
    for kind in ("reward", "difference", "oracle"):
        if kind in scorers:
            stages[kind]["args"].update(cross_fit=CROSS_FIT, eval_data=None)
        else:
            del stages[kind]
            del stages["score"]["args"][options[kind]]
    return stages


def scorers_read(arms: list[str]) -> tuple[str, ...]:
    """The scorers some of these arms read (auto ε reads the reward model's estimate)."""
    options = {name: ARMS[name][1] for name in arms}
    auto = any(o.get("epsilon") == "auto" for o in options.values())
    needed = scorers_needed(options) | ({"reward"} if auto else set())
    return tuple(kind for kind in ("reward", "difference", "oracle") if kind in needed)


def _align(seed: int, options: dict, learning_rate: float) -> dict:
    args = dict(seed=seed, disable_tqdm=True, logging_steps=10, **LENGTHS, model="{sft}")
    args.update(train_data="{score}/train_scored.jsonl", learning_rate=learning_rate, beta=0.1, num_train_epochs=1)
    return {"command": "align", "args": dict(args, **options)}


def rate_stage(arm: str, learning_rate: float) -> str:
    return f"{arm}-lr{learning_rate:g}"


def validation_recipe(condition: dict, seed: int, arms: list[str]) -> dict:
    """One validation draw: every arm at every rate of the grid, from one task, SFT and scorers."""
    stages = task_prefix(condition, seed, scorers_read(arms))
    names = []
    for arm in arms:
        for lr in LEARNING_RATES:
            names.append(rate_stage(arm, lr))
            stages[names[-1]] = _align(seed, arm_options(arm, condition), lr)
    stages.update(generation_stages(["sft", *names], seed))
    return {"stages": stages, "report": {"reward": "gold", "baselines": ["sft"], "seed": seed}}


def seed_recipe(condition: dict, seed: int, rates: dict[str, float], samples: int = 1) -> dict:
    """One test seed: every arm of ``rates`` at its chosen rate, DPO the baseline."""
    stages = task_prefix(condition, seed, scorers_read(list(rates)))
    for arm, lr in rates.items():
        stages[arm] = _align(seed, arm_options(arm, condition), lr)
    stages.update(generation_stages(["sft", *rates], seed, samples=samples))
    return {"stages": stages, "report": {"reward": "gold", "baselines": ["sft", "dpo"], "seed": seed}}
