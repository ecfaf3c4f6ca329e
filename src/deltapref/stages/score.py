"""Stage ``deltapref score``: annotate preference pairs with scorer outputs and coefficients
(see ``deltapref.scorers.scoring``). The option naming a model of each scorer kind, and each kind's own
settings, come from the kinds (``deltapref.scorer_kinds``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from deltapref.columns import GOLD_REWARD, RECORD_COLUMNS, REF_LOGP
from deltapref.config.commands import TokenizationConfig, option
from deltapref.data.writing import check_data_output
from deltapref.scorer_kinds import SCORER_KINDS, given_kinds
from deltapref.scorers.scoring import run_scoring


@dataclass
class ScoreOptions(TokenizationConfig):
    """The options of ``score`` that no scorer kind owns."""

    input: str = option(None, "pairs to annotate (any format `deltapref data` reads)")
    output: str = option(None, "annotated output: .jsonl, .parquet, .json or a directory")
    format: str = option("auto", "input format")
    skip_bad_rows: bool = option(False, "skip invalid rows (counted and reported)")
    reference_model: str = option(
        None,
        "the policy before alignment (e.g. the SFT model): adds ref_logp_chosen/rejected/kl, computed once "
        "for any number of align runs (which check the weights, tokenizer and --max_length/--max_prompt_length)",
    )
    alpha: float = option(1.0, "coefficient exponent: coef = sigmoid(delta)^alpha (0 gives 1)", ge=0)
    coef_column: str = option("coef", "name of the coefficient column (to keep several, e.g. coef_difference)")
    batch_size: int = option(32, "scoring batch size", gt=0)
    chunk_size: int = option(512, "rows per resumable chunk", gt=0)
    overwrite: bool = option(False, "replace score columns the input already has, and stale partial work")

    def __post_init__(self):
        super().__post_init__()
        if not self.input or not self.output:
            raise ValueError("--input and --output are required")
        check_data_output(self.output)
        if not (given_kinds(self) or self.reference_model):
            flags = ", ".join(f"--{kind.option}" for kind in SCORER_KINDS.values())
            raise ValueError(f"give at least one of {flags}, --reference_model")
        for kind in given_kinds(self):
            kind.check_settings(self)
        written = {column for kind in given_kinds(self) for column in kind.source.columns + kind.fills}
        kept = written | set(REF_LOGP) | set(RECORD_COLUMNS) | set(GOLD_REWARD)
        if self.coef_column in kept or not self.coef_column.strip():
            raise ValueError(
                f"--coef_column {self.coef_column!r} would write over a column this run or the data keeps; "
                "name a new column, e.g. coef_reward"
            )
        source = self.coef_source
        if source != "auto" and not set(SCORER_KINDS[source].source.columns) <= written:
            raise ValueError(f"--coef_source {source} needs --{SCORER_KINDS[source].option}")

    def resolved_coef_source(self) -> str | None:
        """The kind whose Δ makes the coefficient: ``--coef_source``, or with ``auto`` the first
        kind given in the registry's order; None when no scorer is given."""
        if self.coef_source != "auto":
            return self.coef_source
        return next((kind.name for kind in given_kinds(self)), None)


def _kind_fields() -> list[tuple]:
    """The fields every registered kind adds: the option naming its model, then its settings."""
    fields = []
    for kind in SCORER_KINDS.values():
        fields.append((kind.option, str, option(None, kind.help)))
        fields += [(s.name, s.type, s.field) for s in kind.settings]
    names = tuple(SCORER_KINDS)
    choices = f"auto (the first given of {', '.join(names)}), " + ", ".join(names)
    fields.append(("coef_source", Literal[("auto", *names)], option("auto", f"which score makes coef: {choices}")))
    return fields


ScoreConfig = dataclasses.make_dataclass("ScoreConfig", _kind_fields(), bases=(ScoreOptions,))
ScoreConfig.__module__ = __name__
ScoreConfig.__doc__ = "The options of ``deltapref score``: ScoreOptions and each scorer kind's."


def score(config: ScoreConfig) -> int:
    """Entry point of ``deltapref score``."""
    run_scoring(config)
    return 0
