"""Stage ``deltapref evaluate scorer|policy|compare``: configs and entry points."""

from __future__ import annotations

import json
from dataclasses import dataclass

from deltapref.artifacts.outputs import claim_output, finite_or_null, write_text
from deltapref.config.commands import SEED_RANGE, OverwriteOption, TokenizationConfig, option
from deltapref.evaluation.completions import build_judges, pair_up, policy_quality, read_completions
from deltapref.evaluation.judges import compare
from deltapref.evaluation.scorer_eval import evaluate_scorer
from deltapref.models.provenance import write_meta
from deltapref.objectives import TrainedKind
from deltapref.training.distributed import say


def claim_result(config, command: str, inputs) -> None:
    """Claim ``config.output`` for ``command`` before any work (``outputs.claim_output``)."""
    if config.output:
        claim_output(config.output, command, inputs=inputs, overwrite=config.overwrite)


def write_json(payload: dict, config, command: str) -> dict:
    """``payload`` with non-finite numbers as null; given ``config.output``, also written there
    atomically, marked as ``command``'s."""
    payload = finite_or_null(payload)
    text = json.dumps(payload, indent=2)
    if config.output:
        write_text(config.output, text + "\n")
        write_meta(config.output, {"columns": {}}, command)
    return payload


def printed(report: dict) -> int:
    """An entry point's end: the report on stdout, exit code 0."""
    say(json.dumps(report, indent=2))
    return 0


@dataclass
class PolicyEvalConfig(OverwriteOption):
    completions: str = option(None, "completions from `deltapref generate`")
    reward_model: str = option("gold", "gold (the built-in task's known reward) or a reward model directory")
    output: str = option(None, "write the result as JSON here")
    seed: int = option(0, "bootstrap seed", **SEED_RANGE)

    def __post_init__(self):
        super().__post_init__()
        if not self.completions:
            raise ValueError("--completions is required")


def policy_report(config: PolicyEvalConfig) -> dict:
    """Mean reward of the completions with a bootstrap 95% CI (``evaluate policy``)."""
    claim_result(config, "evaluate policy", [config.completions, config.reward_model])
    result = policy_quality(read_completions(config.completions), config.reward_model, config.seed)
    result.pop("values")
    return write_json(result, config, "evaluate policy")


def evaluate_policy(config: PolicyEvalConfig) -> int:
    return printed(policy_report(config))


@dataclass
class CompareConfig(OverwriteOption):
    a: str = option(None, "completions A")
    b: str = option(None, "completions B (same prompts; matched by id when both have ids, else by order)")
    judges: str = option(
        "gold",
        "comma list of judges: gold, reward:DIR, local:DIR, http:MODEL@BASE_URL "
        "(key from $OPENAI_API_KEY or --api_key_env)",
    )
    tie_threshold: float = option(0.0, "reward judges: a reward gap within this is a tie", ge=0)
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the HTTP judge's API key")
    judge_attempts: int = option(4, "HTTP judges: attempts per question before giving up", ge=1)
    judge_backoff: float = option(1.0, "HTTP judges: seconds before the first retry (doubling after each)", ge=0)
    judge_deadline: float = option(
        180.0, "HTTP judges: seconds one question may take in all (connecting, waiting, reading, retries)", gt=0
    )
    output: str = option(None, "write the result as JSON here")

    def __post_init__(self):
        super().__post_init__()
        if not self.a or not self.b:
            raise ValueError("--a and --b are required")
        names = [name.strip() for name in self.judges.split(",")]
        if not all(names) or len(set(names)) != len(names):
            raise ValueError(f"--judges must name distinct judges, comma-separated, got {self.judges!r}")


def compare_report(config: CompareConfig) -> dict:
    """Win/tie/loss of two completion sets under each judge and their majority (``evaluate compare``)."""
    claim_result(config, "evaluate compare", [config.a, config.b])
    prompts, a, b = pair_up(read_completions(config.a), read_completions(config.b))
    result = compare(
        prompts,
        a,
        b,
        build_judges(
            config.judges,
            config.tie_threshold,
            config.api_key_env,
            config.judge_attempts,
            config.judge_backoff,
            config.judge_deadline,
        ),
    )
    for name, counts in result["judges"].items():
        if counts["unparsed_replies"]:
            say(
                f"WARNING: judge {name} gave no verdict (A, B or T) in {counts['unparsed_replies']} of "
                f"{2 * result['n']} replies; each counts as a tie",
                error=True,
            )
    return write_json(result, config, "evaluate compare")


def evaluate_compare(config: CompareConfig) -> int:
    return printed(compare_report(config))


@dataclass
class ScorerEvalConfig(OverwriteOption, TokenizationConfig):
    model: str = option(None, "scorer directory")
    kind: TrainedKind = option("reward", "the scorer's kind")
    data: str = option(None, "labeled pairs")
    batch_size: int = option(32, "scoring batch size", gt=0)
    output: str = option(None, "write the report as JSON here")

    def __post_init__(self):
        super().__post_init__()
        if not self.model or not self.data:
            raise ValueError("--model and --data are required")


def scorer_report(config: ScorerEvalConfig) -> dict:
    """A scorer's held-out accuracy, accuracy by confidence, calibration and consistency (``evaluate scorer``)."""
    claim_result(config, "evaluate scorer", [config.model, config.data])
    report = evaluate_scorer(config.model, config.kind, config.data, config.tokenization, batch_size=config.batch_size)
    return write_json(report, config, "evaluate scorer")


def evaluate_scorer_command(config: ScorerEvalConfig) -> int:
    return printed(scorer_report(config))
