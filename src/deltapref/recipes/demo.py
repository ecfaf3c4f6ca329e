"""``deltapref demo``: the built-in gold-reward task end to end on a CPU.

SFT a tiny policy; train a reward model, a difference model and an oracle; score the training
pairs; align with DPO, DPO+rc (reward), DPO+rc (difference), RRHF, RRHF+rc, KTO, KTO+rc, IPO,
e-DPO and DRDO (student reward β·(log π − log π_ref), the default, and a scalar head); sample completions on
held-out prompts; score them with the gold reward and write the report. It is an ordinary
pipeline recipe (``--write_recipe`` saves it for ``deltapref pipeline``), so a rerun skips
finished stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from deltapref.config.commands import SEED_RANGE, option
from deltapref.recipes.pipeline import run_pipeline

PROFILES = {
    "quick": {
        "n_train": 1000,
        "n_test": 200,
        "sft_epochs": 4,
        "scorer_epochs": 4,
        "align_epochs": 1,
        "ensemble": False,
    },
    "full": {"n_train": 4000, "n_test": 500, "sft_epochs": 5, "scorer_epochs": 6, "align_epochs": 2, "ensemble": True},
}
POLICY_MODEL = "tiny:64:2"
METHODS = {  # stage name -> align arguments
    "dpo": {"loss": "dpo"},
    "dpo-rc-reward": {"loss": "dpo", "coef": "reward"},  # α = 1, the default (docs/RESULTS.md, C1)
    "dpo-rc-diff": {"loss": "dpo", "coef": "difference"},
    "rrhf": {"loss": "rrhf"},
    "rrhf-rc": {"loss": "rrhf", "coef": "scores"},
    "kto": {"loss": "kto"},
    "kto-rc-diff": {"loss": "kto", "coef": "difference"},
    "ipo": {"loss": "ipo"},
    "edpo": {"loss": "edpo"},
    "drdo": {"loss": "drdo"},
    "drdo-head": {"loss": "drdo", "student_reward": "head"},
}


@dataclass
class DemoConfig:
    output_dir: str = option("deltapref-demo", "where the demo writes its data, models and report")
    quick: bool = option(False, "a smaller task and fewer epochs (a few minutes on a laptop CPU)")
    seed: int = option(0, "seed of the task and of every training run", **SEED_RANGE)
    write_recipe: str = option(None, "only write the demo's pipeline recipe to this YAML file")
    generation_backend: Literal["hf", "vllm"] = option("hf", "generate's --backend for every policy's completions")


def generation_stages(policies: list[str], seed: int, backend: str = "hf", samples: int = 1) -> dict:
    """A ``gen-NAME`` stage per policy stage: sampled completions of the held-out prompts
    (``samples`` per prompt; sample j uses seed + j, the same for every policy)."""
    return {
        f"gen-{name}": {
            "command": "generate",
            "args": {
                "model": "{" + name + "}",
                "input": "{data}/test.jsonl",
                "output": "{here}/completions.jsonl",
                "temperature": 0.7,
                "max_new_tokens": 24,
                "seed": seed,
                "batch_size": 64,
                **({"backend": backend} if backend != "hf" else {}),
                **({"num_samples": samples} if samples != 1 else {}),
            },
        }
        for name in policies
    }


LENGTHS = {"max_length": 128, "max_prompt_length": 32}
SCORE_TRAIN = {"input": "{data}/train.jsonl", "output": "{here}/train_scored.jsonl", **LENGTHS}  # score's I/O


def task_stages(seed: int, profile: dict, data_args: dict | None = None) -> dict:
    """The stages every run on the built-in task starts with (the demo's and the claims study's):
    the task's data, SFT of the tiny policy, the reward and difference models, the oracle (from
    the SFT model), and the training pairs scored by all three."""
    train = {"seed": seed, "disable_tqdm": True, "logging_steps": 10, **LENGTHS}
    scorer = dict(
        train,
        model=POLICY_MODEL,
        tokenizer="{data}/tokenizer",
        train_data="{data}/train.jsonl",
        eval_data="{data}/test.jsonl",
        num_train_epochs=profile["scorer_epochs"],
        learning_rate=1e-3,
    )
    sizes = {"seed": seed, "n_train": profile["n_train"], "n_test": profile["n_test"]}
    sft = dict(train, model=POLICY_MODEL, tokenizer="{data}/tokenizer", train_data="{data}/train.jsonl")
    return {
        "data": {"command": "data synth", "args": {**sizes, **(data_args or {})}},
        "sft": {"command": "sft", "args": dict(sft, num_train_epochs=profile["sft_epochs"], learning_rate=2e-3)},
        "reward": {"command": "train-scorer", "args": dict(scorer, kind="reward")},
        "difference": {"command": "train-scorer", "args": dict(scorer, kind="difference")},
        "oracle": {"command": "train-scorer", "args": dict(scorer, kind="oracle", model="{sft}", tokenizer=None)},
        "score": {
            "command": "score",
            "args": dict(SCORE_TRAIN, reward_model="{reward}", difference_model="{difference}", oracle="{oracle}"),
        },
    }


def demo_recipe(quick: bool = False, seed: int = 0, generation_backend: str = "hf") -> dict:
    """The demo as a pipeline recipe."""
    p = PROFILES["quick" if quick else "full"]
    train = {"seed": seed, "disable_tqdm": True, "logging_steps": 10}
    stages = task_stages(seed, p)
    if p["ensemble"]:  # trained before scoring, which then reads it too
        score = stages.pop("score")
        scorer = dict(stages["reward"]["args"], kind="ensemble", eval_data=None)
        stages["ensemble"] = {"command": "train-scorer", "args": scorer}
        stages["score"] = {"command": "score", "args": dict(score["args"], ensemble="{ensemble}")}
    for name, method in METHODS.items():
        data = "{data}/ranked_train.jsonl" if method["loss"] == "rrhf" else "{score}/train_scored.jsonl"
        args = dict(
            train,
            model="{sft}",
            train_data=data,
            num_train_epochs=p["align_epochs"],
            learning_rate=5e-4,
            beta=0.1,
            max_length=128,
            max_prompt_length=32,
            **method,
        )
        if method["loss"] == "edpo" and p["ensemble"]:
            args.update(edpo_rewards="ensemble", edpo_ensemble="pessimistic")
        stages[name] = {"command": "align", "args": args}
    stages.update(generation_stages(["sft", *METHODS], seed, generation_backend))
    return {
        "output_dir": "deltapref-demo",
        "stages": stages,
        "report": {
            "reward": "gold",
            "baselines": ["sft", "dpo"],
            "alpha": 1.0,
            "seed": seed,
            "title": f"deltapref demo ({'quick' if quick else 'full'}): built-in gold-reward task",
        },
    }


def demo(config: DemoConfig) -> int:
    """Entry point of ``deltapref demo``."""
    recipe = demo_recipe(config.quick, config.seed, config.generation_backend)
    if config.write_recipe:
        Path(config.write_recipe).write_text(yaml.safe_dump(recipe, sort_keys=False))
        print(f"wrote the demo recipe to {config.write_recipe}")
        return 0
    started = time.time()
    run_pipeline(recipe, config.output_dir)
    print(
        f"demo finished in {time.time() - started:.0f}s; report: {Path(config.output_dir) / 'report' / 'report.html'}"
    )
    return 0
