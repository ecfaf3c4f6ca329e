"""The scorer training objectives as units: Bradley–Terry reward model, RDO difference model,
DRDO oracle. Each declares how a pair is tokenized, which sequences a batch stacks, its forward
pass, and ``compute(outputs, batch, options) -> (loss, metrics)`` calling its pure loss. How a
trained model of each kind scores data is its scorer kind's (``deltapref.scorer_kinds``)."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from deltapref import losses as L
from deltapref.config.commands import TokenizationConfig
from deltapref.data.scorer_inputs import (
    PairSequence,
    difference_ids,
    is_encoder_tokenizer,
    pointwise_ids,
    uses_segments,
)
from deltapref.errors import OptionError
from deltapref.forward.batching import pad
from deltapref.forward.length_groups import grouped_by_length
from deltapref.forward.logprobs import logps_and_rewards
from deltapref.forward.readouts import PAIR_LENGTH, READOUT, classifier_scores, difference_scores, pair_batch_extras
from deltapref.objectives.base import Metrics
from deltapref.objectives.options import ScorerLossOptions

CHANCE_LOSS = math.log(2)  # a pairwise cross-entropy that predicts 1/2 for every pair
CHANCE_TOLERANCE = 0.005


class ScorerObjective:
    name: str = ""
    causal_lm: bool = False  # True: a causal LM with a reward head; False: a num_labels=1 classifier
    pairwise: bool = False  # True: scores a pair in one sequence, d(x, y1, y2); False: r(x, y)
    preference_loss: str = "loss"  # the logged metric holding the pairwise cross-entropy

    def diagnostics(self, log_history: list[dict]) -> list[str]:
        """Warnings about a finished run: a preference loss that never left ln 2 (the scorer
        predicts a tie for every pair: it learned nothing)."""
        values = [entry[self.preference_loss] for entry in log_history if self.preference_loss in entry]
        if len(values) >= 2 and all(abs(v - CHANCE_LOSS) < CHANCE_TOLERANCE for v in values):
            return [
                f"its {self.preference_loss} never left ln 2 = {CHANCE_LOSS:.3f} ({values[0]:.4f} to {values[-1]:.4f} "
                f"over {len(values)} logs): it scores every pair as a tie and learned nothing"
            ]
        return []

    def encode(self, tokenizer, row: dict, config: TokenizationConfig, coins) -> dict:
        """Token ids of one pair. ``coins`` are two fixed per-row random bits."""
        chosen, chosen_start = pointwise_ids(tokenizer, row["prompt"], row["chosen"], config)
        rejected, _ = pointwise_ids(tokenizer, row["prompt"], row["rejected"], config)
        return {"chosen_ids": chosen, "rejected_ids": rejected, "chosen_start": chosen_start}

    def sequences(self, rows: list[dict], options: ScorerLossOptions) -> tuple[list[list[int]], dict]:
        """The sequences a batch stacks (chosen block, then rejected block) and extra tensors."""
        return [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows], {}

    def forward(self, model, batch: dict):
        return grouped_by_length(classifier_scores, model, batch)

    def resolved(self, options: ScorerLossOptions, tokenizer, model_config) -> ScorerLossOptions:
        """``options`` with choices left to the backbone (``auto``, lengths) made for this
        tokenizer and model config."""
        return options

    def tokenization(self, options) -> TokenizationConfig:
        """The token budgets one training input of this kind is cut to."""
        return options.tokenization

    def saved_settings(self, options: ScorerLossOptions) -> dict:
        """Settings a saved model of this kind keeps in its config, read back when it scores."""
        return {}

    def compute(self, outputs, batch: dict, options: ScorerLossOptions) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError


class RewardModel(ScorerObjective):
    """Bradley–Terry, with an optional per-pair margin column."""

    name = "reward"

    def compute(self, outputs, batch, options):
        chosen, rejected = outputs.chunk(2)
        loss = L.bradley_terry_loss(chosen, rejected, batch.get("margin")).mean()
        return loss, {"accuracy": (chosen > rejected).float(), "margin": chosen - rejected}


class Oracle(ScorerObjective):
    """DRDO's oracle: Bradley–Terry on a reward head plus the LM term on the chosen response
    (its length-mean log-prob, on the scale of a token cross-entropy)."""

    name = "oracle"
    causal_lm = True

    def sequences(self, rows, options):
        """Chosen block then rejected block; the response mask marks the chosen responses' tokens
        (the LM term's) and no token of a rejected row."""
        sequences, extra = super().sequences(rows, options)
        width = max(len(s) for s in sequences)
        chosen = [[0] * r["chosen_start"] + [1] * (len(r["chosen_ids"]) - r["chosen_start"]) for r in rows]
        extra["response_mask"] = pad(chosen + [[]] * len(rows), 0, width)
        return sequences, extra

    def forward(self, model, batch):
        return logps_and_rewards(model, batch)  # the body in length groups, the LM head once

    def compute(self, outputs, batch, options):
        (logp_sum, count), rewards = outputs
        chosen, rejected = rewards.chunk(2)
        chosen_logps = (logp_sum / count.clamp(min=1))[: chosen.shape[0]]
        loss = L.oracle_loss(chosen, rejected, chosen_logps, options.oracle_lm_weight).mean()
        return loss, {"accuracy": (chosen > rejected).float(), "margin": chosen - rejected, "lm_nll": -chosen_logps}


class DifferenceModel(ScorerObjective):
    """RDO's difference model on ``Query / Response 1 / Response 2`` sequences: the main loss on
    the shown order (and the reversed one), plus the duplication and reverse terms. Per row, one
    fixed coin picks the order shown first and another which response is duplicated."""

    name = "difference"
    pairwise = True
    preference_loss = "loss_main"

    @staticmethod
    def uses_reverse(options: ScorerLossOptions) -> bool:
        return options.both_orders or options.lambda_rev > 0

    def encode(self, tokenizer, row, config, coins):
        flip, dup_rejected = (bool(c) for c in coins)
        first, second = (row["rejected"], row["chosen"]) if flip else (row["chosen"], row["rejected"])
        duplicate = row["rejected"] if dup_rejected else row["chosen"]
        out = {"label": 0 if flip else 1, "segments": uses_segments(tokenizer)}
        for name, (a, b) in {
            "forward": (first, second),
            "reverse": (second, first),
            "duplicate": (duplicate,) * 2,
        }.items():
            sequence = difference_ids(tokenizer, row["prompt"], a, b, config)
            out[f"{name}_ids"], out[f"{name}_parts"] = sequence.ids, [sequence.first_start, sequence.second_start]
        return out

    def sequences(self, rows, options):
        names = ["forward"] + (["reverse"] if self.uses_reverse(options) else [])
        names += ["duplicate"] if options.lambda_dup > 0 else []
        pairs = [PairSequence(r[f"{name}_ids"], *r[f"{name}_parts"]) for name in names for r in rows]
        sequences = [p.ids for p in pairs]
        extra = pair_batch_extras(pairs, rows[0]["segments"], options.difference_readout, max(map(len, sequences)))
        extra["label"] = torch.tensor([r["label"] for r in rows], dtype=torch.float32)
        return sequences, extra

    def forward(self, model, batch):
        return grouped_by_length(difference_scores, model, batch)

    def resolved(self, options, tokenizer, model_config):
        readout = options.difference_readout
        if readout == "auto":
            readout = "contrast" if is_encoder_tokenizer(tokenizer) else "pooled"
        length = options.difference_max_length
        if length is None:
            length = 2 * options.max_length
            limit = getattr(model_config, "max_position_embeddings", None)
            length = min(length, limit) if limit else length
        if length <= options.max_prompt_length:
            raise OptionError(
                f"--difference_max_length {length} must be larger than --max_prompt_length {options.max_prompt_length}"
            )
        return replace(options, difference_readout=readout, difference_max_length=length)

    def tokenization(self, options):
        return replace(options.tokenization, max_length=options.difference_max_length)

    def saved_settings(self, options):
        return {READOUT: options.difference_readout, PAIR_LENGTH: options.difference_max_length}

    def compute(self, outputs, batch, options):
        blocks = outputs.split(batch["label"].shape[0])
        forward = blocks[0]
        reverse = blocks[1] if self.uses_reverse(options) else None
        duplicate = blocks[-1] if options.lambda_dup > 0 else None
        loss, parts = L.difference_model_loss(
            forward, batch["label"], reverse, duplicate, options.lambda_dup, options.lambda_rev
        )
        correct = ((forward > 0).float() == batch["label"]).float()
        return loss, {
            "accuracy": correct,
            "loss_main": parts["main"],
            "loss_dup": parts["dup"],
            "loss_rev": parts["rev"],
        }
