"""What a scorer kind declares: the ``deltapref score`` option that names a model of the kind
(and any settings of its own), the check that a saved model can play it, how it loads and scores
pairs, the columns it writes and the Δ they give (its weight source for ``align --coef``), and
how a model card tells a reader to use it."""

from __future__ import annotations

import dataclasses

from deltapref.coefficients import Source
from deltapref.data.splits import fold_of
from deltapref.errors import ModelRoleError
from deltapref.models.loading import describe_saved_model, load_scorer, scorer_members
from deltapref.models.preflight import read_model_config
from deltapref.models.provenance import describe
from deltapref.scorer_kinds.inference import routed


@dataclasses.dataclass(frozen=True)
class Setting:
    """An option of ``deltapref score`` that belongs to one kind (e.g. the difference model's order)."""

    name: str
    type: object
    field: dataclasses.Field


class ScorerKind:
    name: str = ""  # a --coef_source choice and an `align --coef` weight source
    option: str = ""  # the `score` option naming a model of this kind
    help: str = ""  # that option's --help
    what: str = ""  # how messages name a model of this kind ("a reward model")
    source: Source  # the columns it writes and the Δ they give
    pairwise: bool = False  # scores a pair in one input, d(x, y1, y2)
    fills: tuple[str, ...] = ()  # columns it also writes when no other kind of the run does
    settings: tuple[Setting, ...] = ()  # `score` options of its own

    def paths(self, value: str) -> list[str]:
        """The model directories the option's value names (a cross-fitted scorer: its folds)."""
        return scorer_members(value)

    def problem(self, config: dict) -> str | None:
        """Why a saved model (its ``config.json``) cannot be a model of this kind, or None."""
        return None

    def check(self, value: str) -> None:
        """Refuse, before anything loads, a model that cannot be of this kind (one line)."""
        for path in self.paths(value):
            config = read_model_config(path)
            problem = config is not None and self.problem(config)
            if problem:
                raise ModelRoleError(f"{path} is {describe_saved_model(config)}, not {self.what}: {problem}")

    def check_settings(self, config) -> None:
        """Refuse (ValueError) settings of this kind that do not fit together in ``config``."""

    def load(self, value: str, config) -> list:
        """What :meth:`score` scores with: (model, tokenizer) per fold."""
        return [load_scorer(path) for path in self.paths(value)]

    def score(self, loaded, rows: list[dict], config) -> dict[str, list]:
        """Column -> one value per row, for every column of ``source`` (and of ``fills``)."""
        raise NotImplementedError

    def provenance(self, value: str, config, column: str) -> dict:
        """What made ``column`` (recorded in the output's ``.deltapref.json``)."""
        return {"model": describe(value)}

    def card_loading(self, name: str) -> str:
        """The "Loading" section of the card of a saved model of this kind (directory ``name``)."""
        return (
            f"A deltapref {self.name} scorer: score pairs with `deltapref score --{self.option} {name}` "
            f'(in Python: `deltapref.score({self.option}="{name}", ...)`); its weights are plain '
            "`transformers` safetensors."
        )


def by_fold(score, members: list, rows: list[dict], *columns, config) -> list[float]:
    """``score(model, tokenizer, *columns)`` with each row scored by the fold model that never
    saw it (a single model scores every row)."""
    folds = [fold_of(row, len(members)) for row in rows]
    return routed(
        score, members, folds, *columns, config=config.tokenization, batch_size=config.batch_size, progress=False
    )


def texts(rows: list[dict]) -> tuple[list, list, list]:
    """The prompts, chosen and rejected responses of ``rows``."""
    return [r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows]
