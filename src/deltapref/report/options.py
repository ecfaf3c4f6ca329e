"""A recipe's ``report:`` block, typed like every other option: an unknown key is refused naming
the closest known one, and each value is checked against its field before any stage runs."""

from __future__ import annotations

from dataclasses import dataclass

from deltapref.config.commands import SEED_RANGE, Options, option
from deltapref.config.values import build_configs


@dataclass
class ReportOptions(Options):
    """What a pipeline's report measures and how it is titled."""

    reward: str = option(
        "gold",
        "what scores the completions: gold (the built-in task's true reward), the name of a train-scorer "
        "stage, or a reward model's directory",
    )
    baselines: str = option("", "stages whose policies the others are compared with (win/tie/loss): a list")
    tie_threshold: float = option(0.0, "reward differences at most this large count as ties", ge=0)
    alpha: float = option(1.0, "the exponent of the reward-difference weights the report tabulates", ge=0)
    seed: int = option(0, "seed of the bootstrap intervals", **SEED_RANGE)
    title: str = option("deltapref run report", "the report's title")

    @property
    def baseline_names(self) -> list[str]:
        return [name.strip() for name in self.baselines.split(",") if name.strip()]


def report_options(block: dict | None, where: str) -> ReportOptions:
    """``block`` (a recipe's ``report:`` mapping) as :class:`ReportOptions`; a bad key or value is
    one ``ValueError`` naming ``where`` (the recipe file)."""
    try:
        (options,) = build_configs([ReportOptions], dict(block or {}), strings_parse=True)
    except ValueError as error:
        raise ValueError(f"{where}: report: {error}") from None
    return options
