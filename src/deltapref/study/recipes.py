"""The claims study's pipeline recipes: one per label temperature and seed (and one per
learning rate on the validation draw), all on the built-in gold-reward task with the demo's
tiny models. Every policy method gets the same steps, the same sampling and its learning rate
from the same grid."""

from __future__ import annotations

from deltapref.recipes.demo import LENGTHS, SCORE_TRAIN, generation_stages, task_stages
from deltapref.study.claims import MAIN, PRIMARY_RUNS

PROFILES = {
    "quick": {  # one rate, never widened: a fixed number of pipelines (the task and sizes of full)
        "n_train": 1000,
        "n_test": 200,
        "seeds": 3,
        "temperatures": (0.5,),
        "lrs": (5e-4,),
        "widen": 0,
        "epochs": (1, 2),
        "splits": False,
        "sft_epochs": 4,
        "scorer_epochs": 4,
    },
    "full": {
        "n_train": 1000,
        "n_test": 200,
        "seeds": 5,
        "temperatures": (0.25, 0.5, 1.0),
        "lrs": (2.5e-4, 5e-4, 1e-3),
        "epochs": (1, 2, 4),
        "splits": True,
        "sft_epochs": 4,
        "scorer_epochs": 4,
    },
    # the primary comparisons only, on fresh seeds, on the fair task (ranked lists scored by the pairs'
    # own noise, test prompts never seen in training), 4 samples per prompt (shared seeds across arms).
    # Seeds from the power analysis (2026-12-06): C7's paired SD 0.112 at one sample, about 8% less with
    # 4 samples (benchmarks/evaluation_noise.py) -> 0.103 -> 36 seeds for 80% power against +0.05
    "confirm": {
        "n_train": 1000,
        "n_test": 200,
        "seeds": 36,
        "first_seed": 2000,
        "temperatures": (0.5, 1.0),
        "lrs": (2.5e-4, 5e-4, 1e-3),
        "epochs": (1,),
        "splits": False,
        "sft_epochs": 4,
        "scorer_epochs": 4,
        "primaries_only": True,
        "samples": 4,
        "task": {"ranked_scores": "labels", "disjoint_test_prompts": True},
    },
}
CANDIDATES = ("dpo-rc-reward", "dpo-rc-diff", "dpo-madpo-reward", "edpo", "drdo")  # magnitude-aware, no gold
WIDEN_STEPS = 4  # grid steps added at most on each side while some method's best rate is on that edge
VALIDATION_SEED = 1000  # a separate draw of the task: learning rates are chosen on it, never on the test seeds


def methods(profile: dict, temperature: float) -> dict[str, dict]:
    """Policy methods (name -> align arguments). Every temperature runs the weighting claims
    (C1, C7, C8 and the gold bound); the main temperature (0.5, the task's default) also runs
    the rest (C1's α = 0.5, C2, C6, DRDO's readings, normalization, cross-fitted weights). A
    ``primaries_only`` profile runs the methods of the primary comparisons at this temperature."""
    if not profile.get("primaries_only"):
        return _methods(temperature, temperature == MAIN, profile["epochs"], profile["splits"])
    wanted = {m for t, *pair in PRIMARY_RUNS.values() if t == temperature for m in pair}
    return {name: args for name, args in _methods(temperature, True, (1,), False).items() if name in wanted}


def _methods(temperature: float, main: bool, epochs: tuple[int, ...], splits: bool) -> dict[str, dict]:
    scored = "{score}/train_scored.jsonl"
    out = {
        "dpo": {"loss": "dpo"},
        "dpo-rc-reward": {"loss": "dpo", "coef": "reward"},
        "dpo-rc-diff": {"loss": "dpo", "coef": "difference"},
        "dpo-madpo-reward": {"loss": "dpo", "coef": "reward", "coef_weighting": "madpo"},
        "dpo-rc-gold": {"loss": "dpo", "coef": "gold", "coef_temperature": temperature},
        "dpo-madpo-gold": {"loss": "dpo", "coef": "gold", "coef_temperature": temperature, "coef_weighting": "madpo"},
        "edpo": {"loss": "edpo"},
        "drdo": {"loss": "drdo"},
    }
    out = {name: dict(args, train_data=scored) for name, args in out.items()}
    if not main:
        return out
    more = {
        "dpo-rc-reward-a0.5": {"loss": "dpo", "coef": "reward", "alpha": 0.5},
        "dpo-rc-diff-a0.5": {"loss": "dpo", "coef": "difference", "alpha": 0.5},
        "dpo-rc-reward-norm": {"loss": "dpo", "coef": "reward", "coef_normalize": True},
        "dpo-rc-reward-1ep": {"loss": "dpo", "coef": "reward", "train_data": "{score-1ep}/train_scored.jsonl"},
        "dpo-rc-reward-cf": {"loss": "dpo", "coef": "reward", "train_data": "{score-cf}/train_scored.jsonl"},
        "kto": {"loss": "kto"},
        "kto-rc-diff": {"loss": "kto", "coef": "difference"},
        "rrhf": {"loss": "rrhf", "train_data": "{data}/ranked_train.jsonl"},
        "rrhf-rc": {"loss": "rrhf", "coef": "scores", "train_data": "{data}/ranked_train.jsonl"},
        "drdo-head": {"loss": "drdo", "student_reward": "head"},
        "drdo-logp": {"loss": "drdo", "student_reward": "logp"},
        "drdo-logp-mean": {"loss": "drdo", "student_reward": "logp_mean"},
        "drdo-zmean": {"loss": "drdo", "drdo_logp": "mean"},
        "drdo-token": {"loss": "drdo", "drdo_logp": "token"},
    }
    for name in ("dpo", "dpo-rc-reward"):
        more.update({f"{name}-e{e}": dict(out[name], num_train_epochs=e) for e in epochs if e != 1})
    if splits:
        for part in ("easy", "hard"):
            more.update({f"{m}-{part}": dict(out[m], train_data=f"{{split}}/{part}.jsonl") for m in ("dpo", "drdo")})
    out.update({name: dict({"train_data": scored}, **args) for name, args in more.items()})
    return out


def claims_recipe(profile: dict, temperature: float, seed: int, lrs: dict[str, float]) -> dict:
    """The whole study for one (temperature, seed): data, SFT, scorers, scoring, every method,
    generation on the held-out prompts, and the gold-reward report."""
    train = {"seed": seed, "disable_tqdm": True, "logging_steps": 10, **LENGTHS}
    stages = task_stages(seed, profile, {"temperature": temperature, **profile.get("task", {})})
    scorer, score = stages["reward"]["args"], SCORE_TRAIN
    policies = methods(profile, temperature)
    if profile.get("primaries_only"):
        _keep_scorers(stages, scorers_needed(policies))
    elif temperature == MAIN:
        stages["difference-noreg"] = {
            "command": "train-scorer",
            "args": dict(scorer, kind="difference", lambda_dup=0.0, lambda_rev=0.0),
        }
        stages["reward-1ep"] = {"command": "train-scorer", "args": dict(scorer, kind="reward", num_train_epochs=1)}
        stages["reward-cf"] = {
            "command": "train-scorer",
            "args": dict(scorer, kind="reward", cross_fit=3, eval_data=None),
        }
        stages["score-1ep"] = {"command": "score", "args": dict(score, reward_model="{reward-1ep}")}
        stages["score-cf"] = {"command": "score", "args": dict(score, reward_model="{reward-cf}")}
        if profile["splits"]:
            stages["split"] = {"command": "data split", "args": {"input": "{score}/train_scored.jsonl"}}
    for name, method in policies.items():
        args = dict(train, model="{sft}", learning_rate=lrs.get(name, lrs["default"]), beta=0.1, **method)
        args.setdefault("num_train_epochs", 1)
        stages[name] = {"command": "align", "args": args}
    stages.update(generation_stages(["sft", *policies], seed, samples=profile.get("samples", 1)))
    return {
        "stages": stages,
        "report": {
            "reward": "gold",
            "baselines": ["sft", "dpo"],
            "seed": seed,
            "title": f"claims study: T = {temperature}, seed {seed}",
        },
    }


TASK_SCORERS = ("reward", "difference", "oracle")  # task_stages' scorers, each an option of its score stage


DELTA_OPTIONS = ("coef", "epsilon", "odpo_offset", "correct_with", "edpo_rewards")  # options naming a Δ source


def scorers_needed(policies: dict[str, dict]) -> set[str]:
    """The task's scorers some method reads: the kind any option names as its Δ source (weights,
    rDPO/cDPO's per-pair ε, ODPO's offset, label correction, e-DPO's targets), DRDO's oracle."""
    named = {str(args.get(option)) for args in policies.values() for option in DELTA_OPTIONS}
    needed = named & set(TASK_SCORERS) | ({"reward"} if any(a["loss"] == "edpo" for a in policies.values()) else set())
    return needed | ({"oracle"} if any(args["loss"] == "drdo" for args in policies.values()) else set())


def _keep_scorers(stages: dict, needed: set[str]) -> None:
    """Drop the task's scorers no method reads, and their options of the score stage."""
    options = {"reward": "reward_model", "difference": "difference_model", "oracle": "oracle"}
    for name in set(TASK_SCORERS) - needed:
        del stages[name]
        del stages["score"]["args"][options[name]]
