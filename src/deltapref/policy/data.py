"""Tokenized policy batches.

Pairs become one concatenated batch ``[prompt+chosen ; prompt+rejected]`` with a response mask;
KTO adds a mismatched block ``[prompt_i + chosen_(i+1)]`` for its KL reference point; ranked lists
(RRHF) become ``B·k`` rows. Extra per-pair numbers (reference log-probs, coefficients, scorer or
oracle rewards) ride along as tensors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import datasets
import torch

from deltapref.columns import PAIR_LISTS, PAIR_NUMBERS, REWARD
from deltapref.data.schema import DataError
from deltapref.data.tokenization import TokenizationConfig, encode_pair, encode_prompt, encode_response, truncate
from deltapref.forward.batching import response_batch

logger = logging.getLogger(__name__)


def tokenize_pairs(
    dataset: datasets.Dataset, tokenizer, config: TokenizationConfig, with_kl: bool = False
) -> datasets.Dataset:
    """Adds ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (and, ``with_kl``, ``kl_ids``: the next
    row's chosen response under this row's prompt), and ``length`` for length-grouped batches
    (``--train_sampling_strategy group_by_length``)."""

    def encode(row):
        ids = encode_pair(tokenizer, row, config)
        ids["length"] = len(ids["prompt_ids"]) + max(len(ids["chosen_ids"]), len(ids["rejected_ids"]))
        return ids

    encoded = dataset.map(encode, desc="tokenizing pairs")
    if with_kl:
        chosen = encoded["chosen_ids"]
        shifted = chosen[1:] + chosen[:1]
        encoded = encoded.add_column(
            "kl_ids", [truncate(p, c, config)[1] for p, c in zip(encoded["prompt_ids"], shifted)]
        )
    return encoded


PAIR_SCORES = (REWARD, ("chosen_score", "rejected_score"))  # in order of preference


def pair_score_columns(dataset: datasets.Dataset) -> tuple[str, str] | None:
    """The columns that score a pair's two responses: a reward model's (``score``), else the
    data's own (``chosen_score``/``rejected_score``, e.g. UltraFeedback's); None when neither."""
    return next((pair for pair in PAIR_SCORES if all(c in dataset.column_names for c in pair)), None)


def pairs_as_ranked(dataset: datasets.Dataset) -> datasets.Dataset:
    """Pairs as 2-response ranked lists for RRHF: scores from :func:`pair_score_columns`, else
    1 and 0 (the label's order)."""
    columns = pair_score_columns(dataset)

    def convert(row):
        scores = [float(row[columns[0]]), float(row[columns[1]])] if columns else [1.0, 0.0]
        return {"prompt": row["prompt"], "responses": [row["chosen"], row["rejected"]], "scores": scores}

    return dataset.map(convert, remove_columns=dataset.column_names, desc="pairs as ranked lists")


def tokenize_ranked(dataset: datasets.Dataset, tokenizer, config: TokenizationConfig) -> datasets.Dataset:
    """Adds ``prompt_ids`` and ``responses_ids`` (one list per response) to ranked rows."""

    def encode(row):
        prompt = encode_prompt(tokenizer, row["prompt"])
        responses = [encode_response(tokenizer, row["prompt"], r) for r in row["responses"]]
        prompt, _ = truncate(prompt, max(responses, key=len), config)
        responses = [truncate(prompt, r, config)[1] for r in responses]
        return {"prompt_ids": prompt, "responses_ids": responses, "length": len(prompt) + sum(map(len, responses))}

    return dataset.map(encode, desc="tokenizing ranked lists")


@dataclass
class PolicyCollator:
    """Pads a list of tokenized rows into the tensors ``AlignTrainer`` reads."""

    pad_id: int
    blocks: tuple[str, ...] = ("chosen", "rejected")  # response columns NAME_ids per row, in order
    ranked: bool = False
    share_prefix: bool = True
    pack: bool = False
    reward_column: str = "scores"
    numbers: tuple[str, ...] = field(default=PAIR_NUMBERS)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if self.ranked:
            return self._ranked(rows)
        batch = self._batch([r["prompt_ids"] for r in rows], [[r[f"{b}_ids"] for b in self.blocks] for r in rows])
        for name in self.numbers:
            if name in rows[0] and rows[0][name] is not None:
                batch[name] = torch.tensor([float(r[name]) for r in rows])
        for name in PAIR_LISTS:
            if name in rows[0] and rows[0][name] is not None:
                batch[name] = torch.tensor([r[name] for r in rows], dtype=torch.float32)
        return batch

    def _ranked(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        k = max(len(r["responses_ids"]) for r in rows)
        blocks = [r["responses_ids"] + [r["responses_ids"][0]] * (k - len(r["responses_ids"])) for r in rows]
        batch = self._batch([r["prompt_ids"] for r in rows], blocks)
        valid = [i < len(r["responses_ids"]) for r in rows for i in range(k)]

        def matrix(column):
            return torch.tensor([list(r[column]) + [0.0] * (k - len(r[column])) for r in rows], dtype=torch.float32)

        batch["scores"] = matrix("scores")
        batch["ranking_rewards"] = matrix(self.reward_column)
        batch["valid"] = torch.tensor(valid).view(len(rows), k)
        return batch

    def _batch(self, prompts: list[list[int]], blocks: list[list[list[int]]]) -> dict[str, torch.Tensor]:
        return response_batch(prompts, blocks, self.pad_id, self.share_prefix, self.pack)


def check_weight_column(values: list, column: str, source: str) -> None:
    """Refuse precomputed weights that would train wrong: one that is not a number (a list, text),
    a negative one (that pair's loss would be maximized, pushing the policy toward the rejected
    response) or all of them 0."""
    for row, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(
                f"is {type(value).__name__}: a weight is one number per pair", source=source, row=row, field=column
            )
        if value < 0:
            raise DataError(f"is {value}: a weight must be >= 0", source=source, row=row, field=column)
    if values and not any(values):
        raise DataError(f"every weight in {column!r} is 0: the loss would be 0 and nothing would train", source=source)


def warn_if_scores_tie(data, source: str) -> None:
    """Warn when no list ranks one response above another: RRHF's ranking term is then 0 and
    the run is SFT on each list's first best response."""
    if all(max(scores) == min(scores) for scores in data["scores"]):
        logger.warning(
            "%s: every list's scores tie, so RRHF's ranking term is 0 for every list and this run trains "
            "only the SFT term on each list's first response",
            source,
        )
