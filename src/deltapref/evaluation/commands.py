"""``deltapref evaluate scorer|policy|compare``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..data.loading import read_records
from ..data.schema import DataError
from ..data.synthetic import gold_reward
from ..data.tokenization import TokenizationConfig
from .judges import HTTPJudge, LocalLMJudge, RewardJudge, compare
from .stats import bootstrap_ci


def write_json(payload: dict, path: str | None) -> None:
    text = json.dumps(payload, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(path).with_name(Path(path).name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)


def read_completions(source: str) -> list[dict]:
    rows = []
    for number, raw in read_records(source):
        for name in ("prompt", "completion"):
            if not isinstance(raw, dict) or name not in raw:
                raise DataError("is missing", source=source, row=number, field=name)
        rows.append(raw)
    return rows


def batched_reward(reward_model: str | None = "gold", max_length: int = 512):
    """``rewards(prompts, responses) -> list[float]``: the built-in task's gold reward for
    ``gold`` (or None), else a trained scorer's reward."""
    if not reward_model or reward_model == "gold":
        return lambda prompts, responses: [gold_reward(p, r) for p, r in zip(prompts, responses)]
    from ..models import load_scorer
    from ..scorers.inference import pointwise_rewards

    model, tokenizer = load_scorer(reward_model)
    tokenization = TokenizationConfig(max_length, max_length // 2)
    return lambda prompts, responses: pointwise_rewards(model, tokenizer, prompts, responses, tokenization,
                                                        progress=len(prompts) > 1)


@dataclass
class PolicyEvalConfig:
    completions: str = option(None, "completions from `deltapref generate`")
    reward_model: str = option("gold", "gold (the built-in task's known reward) or a reward model directory")
    output: str = option(None, "write the result as JSON here")
    seed: int = option(0, "bootstrap seed")

    def __post_init__(self):
        if not self.completions:
            raise ValueError("--completions is required")


def policy_quality(rows: list[dict], reward_model: str | None = "gold", seed: int = 0) -> dict:
    """Mean reward of the completions with a bootstrap 95% CI."""
    values = batched_reward(reward_model)([r["prompt"] for r in rows], [r["completion"] for r in rows])
    return {"reward": reward_model or "gold", **bootstrap_ci(values, seed=seed), "values": values}


def evaluate_policy(config: PolicyEvalConfig) -> int:
    result = policy_quality(read_completions(config.completions), config.reward_model, config.seed)
    result.pop("values")
    write_json(result, config.output)
    return 0


@dataclass
class CompareConfig:
    a: str = option(None, "completions A")
    b: str = option(None, "completions B (same prompts; matched by id when both have ids, else by order)")
    judges: str = option("gold", "comma list of judges: gold, reward:DIR, local:DIR, http:MODEL@BASE_URL "
                         "(key from $OPENAI_API_KEY or --api_key_env)")
    tie_threshold: float = option(0.0, "reward judges: a reward gap within this is a tie")
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the HTTP judge's API key")
    output: str = option(None, "write the result as JSON here")

    def __post_init__(self):
        if not self.a or not self.b:
            raise ValueError("--a and --b are required")


def build_judges(spec: str, tie_threshold: float = 0.0, api_key_env: str = "OPENAI_API_KEY") -> list:
    judges = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        kind, _, target = item.partition(":")
        if kind == "gold":
            judges.append(RewardJudge(gold_reward, tie_threshold, name="gold"))
        elif kind == "reward":
            rewards = batched_reward(target)
            judges.append(RewardJudge(lambda p, r, f=rewards: f([p], [r])[0], tie_threshold, name=item))
        elif kind == "http":
            model, _, base_url = target.partition("@")
            judges.append(HTTPJudge(base_url, model, api_key_env))
        elif kind == "local":
            from ..models import load_causal_lm, load_tokenizer
            judges.append(LocalLMJudge(load_causal_lm(target), load_tokenizer(target), name=item))
        else:
            raise ValueError(f"unknown judge {item!r}")
    return judges


def pair_up(rows_a: list[dict], rows_b: list[dict]) -> tuple[list, list, list]:
    if all("id" in r for r in rows_a + rows_b):
        by_id = {r["id"]: r for r in rows_b}
        missing = [r["id"] for r in rows_a if r["id"] not in by_id]
        if missing:
            raise DataError(f"ids {missing[:5]} of A are not in B")
        rows_b = [by_id[r["id"]] for r in rows_a]
    elif len(rows_a) != len(rows_b):
        raise DataError(f"A has {len(rows_a)} rows and B {len(rows_b)}, and they have no ids to match")
    return [r["prompt"] for r in rows_a], [r["completion"] for r in rows_a], [r["completion"] for r in rows_b]


def evaluate_compare(config: CompareConfig) -> int:
    prompts, a, b = pair_up(read_completions(config.a), read_completions(config.b))
    result = compare(prompts, a, b, build_judges(config.judges, config.tie_threshold, config.api_key_env))
    write_json(result, config.output)
    return 0


@dataclass
class ScorerEvalConfig:
    model: str = option(None, "scorer directory")
    kind: str = option("reward", "reward, difference or oracle")
    data: str = option(None, "labeled pairs")
    max_length: int = option(512, "longest scorer input")
    max_prompt_length: int = option(256, "longest prompt part")
    batch_size: int = option(32, "scoring batch size")
    output: str = option(None, "write the report as JSON here")

    def __post_init__(self):
        if not self.model or not self.data:
            raise ValueError("--model and --data are required")


def evaluate_scorer_command(config: ScorerEvalConfig) -> int:
    from ..scorers.train import evaluate_scorer

    report = evaluate_scorer(config.model, config.kind, config.data,
                             TokenizationConfig(config.max_length, config.max_prompt_length), batch_size=config.batch_size)
    write_json(report, config.output)
    return 0
