"""Reading completions, rewarding them (gold or a reward model), building judges, and pairing
two completion sets for a comparison."""

from __future__ import annotations

from collections import Counter

from deltapref.config.commands import TokenizationConfig
from deltapref.data.loading import read_records
from deltapref.data.schema import DataError, check_text_or_messages
from deltapref.data.synthetic import gold_reward
from deltapref.errors import DeltaprefError
from deltapref.evaluation.judges import HTTPJudge, LocalLMJudge, RewardJudge
from deltapref.evaluation.stats import bootstrap_ci


def read_completions(source: str) -> list[dict]:
    rows = []
    for number, raw in read_records(source):
        for name in ("prompt", "completion"):
            if not isinstance(raw, dict) or name not in raw:
                raise DataError("is missing", source=source, row=number, field=name)
            try:
                check_text_or_messages(raw[name], name, allow_empty=True)
            except DataError as error:
                raise DataError(error.reason, source=source, row=number, field=name) from None
        rows.append(raw)
    if not rows:
        raise DataError("holds no completions", source=source)
    return rows


def gold(prompt, response) -> float:
    """The built-in task's gold reward, refusing text it is not defined for."""
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise DeltaprefError(
            "the gold reward is defined for the built-in task's plain-text prompts and responses "
            "only; judge other data with reward:DIR or an LLM judge"
        )
    return gold_reward(prompt, response)


def batched_reward(reward_model: str | None = "gold", max_length: int = 512):
    """``rewards(prompts, responses) -> list[float]``: the built-in task's gold reward for
    ``gold`` (or None), else a trained scorer's reward."""
    if not reward_model or reward_model == "gold":
        return lambda prompts, responses: [gold(p, r) for p, r in zip(prompts, responses)]
    from deltapref.models.loading import load_scorer
    from deltapref.scorer_kinds import SCORER_KINDS
    from deltapref.scorer_kinds.inference import pointwise_rewards

    SCORER_KINDS["reward"].check(reward_model)
    model, tokenizer = load_scorer(reward_model)
    tokenization = TokenizationConfig(max_length, max_length // 2)
    return lambda prompts, responses: pointwise_rewards(
        model, tokenizer, prompts, responses, tokenization, progress=len(prompts) > 1
    )


def policy_quality(rows: list[dict], reward_model: str | None = "gold", seed: int = 0) -> dict:
    """Mean reward of the completions with a bootstrap 95% CI."""
    values = batched_reward(reward_model)([r["prompt"] for r in rows], [r["completion"] for r in rows])
    return {"reward": reward_model or "gold", **bootstrap_ci(values, seed=seed), "values": values}


def build_judges(
    spec: str,
    tie_threshold: float = 0.0,
    api_key_env: str = "OPENAI_API_KEY",
    attempts: int = 4,
    backoff: float = 1.0,
    deadline: float = 180.0,
) -> list:
    judges = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        kind, _, target = item.partition(":")
        if kind == "gold":
            judges.append(RewardJudge(gold, tie_threshold, name="gold"))
        elif kind == "reward":
            rewards = batched_reward(target)
            judges.append(RewardJudge(lambda p, r, f=rewards: f([p], [r])[0], tie_threshold, name=item))
        elif kind == "http":
            model, _, base_url = target.partition("@")
            judges.append(
                HTTPJudge(base_url, model, api_key_env, attempts=attempts, backoff=backoff, deadline=deadline)
            )
        elif kind == "local":
            from deltapref.models.loading import check_policy, load_causal_lm, load_tokenizer

            check_policy(target)
            judges.append(LocalLMJudge(load_causal_lm(target), load_tokenizer(target), name=item))
        else:
            raise DeltaprefError(f"unknown judge {item!r} (gold, reward:DIR, local:DIR, http:MODEL@BASE_URL)")
    return judges


def pair_up(rows_a: list[dict], rows_b: list[dict]) -> tuple[list, list, list]:
    if all("id" in r for r in rows_a + rows_b):
        for side, rows in (("A", rows_a), ("B", rows_b)):
            repeated = sorted({str(i) for i, n in Counter(r["id"] for r in rows).items() if n > 1})
            if repeated:
                raise DataError(f"{side} repeats id(s) {', '.join(repeated[:5])}: each prompt's completion once")
        by_id = {r["id"]: r for r in rows_b}
        missing = [r["id"] for r in rows_a if r["id"] not in by_id]
        if missing:
            raise DataError(f"ids {missing[:5]} of A are not in B")
        rows_b = [by_id[r["id"]] for r in rows_a]
    elif len(rows_a) != len(rows_b):
        raise DataError(f"A has {len(rows_a)} rows and B {len(rows_b)}, and they have no ids to match")
    for row, (a, b) in enumerate(zip(rows_a, rows_b), start=1):
        if a["prompt"] != b["prompt"]:
            where = f"id {a['id']!r}" if "id" in a else f"row {row}"
            raise DataError(f"A and B answer different prompts at {where}: compare completions of the same prompts")
    return [r["prompt"] for r in rows_a], [r["completion"] for r in rows_a], [r["completion"] for r in rows_b]
