"""The scorer objectives as units: Bradley–Terry reward model, RDO difference model, DRDO
oracle. Each declares how a pair is tokenized, which sequences a batch stacks, its forward pass,
and ``compute(outputs, batch, options) -> (loss, metrics)`` calling its pure loss."""

from __future__ import annotations

import torch

from .. import losses as L
from ..batching import pad, sequence_logps
from ..config import TokenizationConfig
from ..data.scorer_inputs import difference_ids, pointwise_ids
from ..models import lm_forward
from .base import Metrics
from .options import ScorerOptions


def classifier_scores(model, batch: dict) -> torch.Tensor:
    """The scalar output of a ``num_labels=1`` classifier for every sequence of the batch."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)


class ScorerObjective:
    name: str = ""
    causal_lm: bool = False  # True: a causal LM with a reward head; False: a num_labels=1 classifier
    pairwise: bool = False  # True: scores a pair in one sequence, d(x, y1, y2); False: r(x, y)

    def encode(self, tokenizer, row: dict, config: TokenizationConfig, coins) -> dict:
        """Token ids of one pair. ``coins`` are two fixed per-row random bits."""
        chosen, chosen_start = pointwise_ids(tokenizer, row["prompt"], row["chosen"], config)
        rejected, _ = pointwise_ids(tokenizer, row["prompt"], row["rejected"], config)
        return {"chosen_ids": chosen, "rejected_ids": rejected, "chosen_start": chosen_start}

    def sequences(self, rows: list[dict], options: ScorerOptions) -> tuple[list[list[int]], dict]:
        """The sequences a batch stacks (chosen block, then rejected block) and extra tensors."""
        return [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows], {}

    def forward(self, model, batch: dict):
        return classifier_scores(model, batch)

    def compute(self, outputs, batch: dict, options: ScorerOptions) -> tuple[torch.Tensor, Metrics]:
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
        sequences, extra = super().sequences(rows, options)
        width = max(len(s) for s in sequences)
        extra["response_mask"] = pad(
            [[0] * r["chosen_start"] + [1] * (len(r["chosen_ids"]) - r["chosen_start"]) for r in rows], 0, width
        )
        return sequences, extra

    def forward(self, model, batch):
        return lm_forward(model, batch["input_ids"], batch["attention_mask"], reward=True)

    def compute(self, outputs, batch, options):
        logits, rewards = outputs
        chosen, rejected = rewards.chunk(2)
        n = chosen.shape[0]
        logp_sum, count = sequence_logps(logits[:n], batch["input_ids"][:n], batch["response_mask"])
        chosen_logps = logp_sum / count.clamp(min=1)
        loss = L.oracle_loss(chosen, rejected, chosen_logps, options.alpha_lm).mean()
        return loss, {"accuracy": (chosen > rejected).float(), "margin": chosen - rejected, "lm_nll": -chosen_logps}


class DifferenceModel(ScorerObjective):
    """RDO's difference model on ``Query / Response 1 / Response 2`` sequences: the main loss on
    the shown order (and the reversed one), plus the duplication and reverse terms. Per row, one
    fixed coin picks the order shown first and another which response is duplicated."""

    name = "difference"
    pairwise = True

    @staticmethod
    def uses_reverse(options: ScorerOptions) -> bool:
        return options.both_orders or options.lambda_rev > 0

    def encode(self, tokenizer, row, config, coins):
        flip, dup_rejected = (bool(c) for c in coins)
        first, second = (row["rejected"], row["chosen"]) if flip else (row["chosen"], row["rejected"])
        duplicate = row["rejected"] if dup_rejected else row["chosen"]
        return {
            "forward_ids": difference_ids(tokenizer, row["prompt"], first, second, config),
            "reverse_ids": difference_ids(tokenizer, row["prompt"], second, first, config),
            "duplicate_ids": difference_ids(tokenizer, row["prompt"], duplicate, duplicate, config),
            "label": 0 if flip else 1,
        }

    def sequences(self, rows, options):
        sequences = [r["forward_ids"] for r in rows]
        if self.uses_reverse(options):
            sequences += [r["reverse_ids"] for r in rows]
        if options.lambda_dup > 0:
            sequences += [r["duplicate_ids"] for r in rows]
        return sequences, {"label": torch.tensor([r["label"] for r in rows], dtype=torch.float32)}

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
