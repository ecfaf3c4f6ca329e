"""Stage ``deltapref score``: annotate preference pairs with scorer outputs and coefficients
(see ``deltapref.scoring``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import TokenizationConfig, option
from ..scoring import run_scoring


@dataclass
class ScoreConfig(TokenizationConfig):
    input: str = option(None, "pairs to annotate (any format `deltapref data` reads)")
    output: str = option(None, "annotated output: .jsonl, .parquet, .json or a directory")
    format: str = option("auto", "input format")
    skip_bad_rows: bool = option(False, "skip invalid rows (counted and reported)")
    reward_model: str = option(None, "pointwise reward model directory")
    difference_model: str = option(None, "difference model directory")
    oracle: str = option(None, "DRDO oracle directory (causal LM with reward head)")
    ensemble: str = option(None, "ensemble directory (with ensemble.json) or comma-separated reward models")
    reference_model: str = option(
        None,
        "the policy before alignment (e.g. the SFT model): adds ref_logp_chosen/rejected/kl, computed once "
        "for any number of align runs (which check the weights, tokenizer and --max_length/--max_prompt_length)",
    )
    difference_order: Literal["balanced", "shown"] = option(
        "balanced",
        "difference model: balanced = (d(x,w,l) − d(x,l,w))/2, antisymmetric by construction (two passes); "
        "shown = d(x,w,l) alone (one pass; trusts the model to be antisymmetric)",
    )
    coef_source: Literal["auto", "reward", "difference", "ensemble", "oracle"] = option(
        "auto",
        "which score makes coef: auto (difference, else reward, else ensemble), reward, difference, ensemble, oracle",
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
        if not (self.reward_model or self.difference_model or self.oracle or self.ensemble or self.reference_model):
            raise ValueError(
                "give at least one of --reward_model, --difference_model, --oracle, --ensemble, --reference_model"
            )

    def ensemble_members(self) -> list[str]:
        if not self.ensemble:
            return []
        path = Path(self.ensemble)
        if (path / "ensemble.json").exists():
            return [str(path / m) for m in json.loads((path / "ensemble.json").read_text())["members"]]
        return [m for m in self.ensemble.split(",") if m]

    def resolved_coef_source(self) -> str | None:
        if self.coef_source != "auto":
            return self.coef_source
        for source, given in (
            ("difference", self.difference_model),
            ("reward", self.reward_model),
            ("ensemble", self.ensemble),
            ("oracle", self.oracle),
        ):
            if given:
                return source
        return None


def score(config: ScoreConfig) -> int:
    """Entry point of ``deltapref score``."""
    run_scoring(config)
    return 0
