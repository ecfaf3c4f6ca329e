"""``ScorerTrainer``: one Trainer for the reward model, the difference model and the oracle.

Rows are tokenized once (``prepare_scorer_dataset``); a collator pads them into one batch per
step, and ``compute_loss`` applies the pure loss of the scorer's kind (``deltapref.losses``).
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from ..batching import pad, sequence_logps
from ..data.tokenization import TokenizationConfig
from ..losses import bradley_terry_loss, difference_model_loss, oracle_loss
from ..models import lm_forward
from ..training import MetricsTrainer
from .inputs import difference_ids, pointwise_ids

KINDS = ("reward", "difference", "oracle")


def prepare_scorer_dataset(dataset: datasets.Dataset, tokenizer, kind: str, config: TokenizationConfig,
                           seed: int = 0, margin_column: str | None = None) -> datasets.Dataset:
    """Tokenize pairs for ``kind``. The difference model also gets a fixed per-row coin for the
    order shown first and for which response is duplicated (so runs and resumes agree)."""
    coins = np.random.default_rng(seed).integers(0, 2, size=(len(dataset), 2))

    def encode(row, index):
        if kind == "difference":
            flip, dup_rejected = (bool(c) for c in coins[index])
            first, second = (row["rejected"], row["chosen"]) if flip else (row["chosen"], row["rejected"])
            duplicate = row["rejected"] if dup_rejected else row["chosen"]
            out = {"forward_ids": difference_ids(tokenizer, row["prompt"], first, second, config),
                   "reverse_ids": difference_ids(tokenizer, row["prompt"], second, first, config),
                   "duplicate_ids": difference_ids(tokenizer, row["prompt"], duplicate, duplicate, config),
                   "label": 0 if flip else 1}
        else:
            chosen, chosen_start = pointwise_ids(tokenizer, row["prompt"], row["chosen"], config)
            rejected, _ = pointwise_ids(tokenizer, row["prompt"], row["rejected"], config)
            out = {"chosen_ids": chosen, "rejected_ids": rejected, "chosen_start": chosen_start}
        if margin_column:
            out["margin"] = float(row[margin_column])
        return out

    return dataset.map(encode, with_indices=True, remove_columns=dataset.column_names,
                       desc=f"tokenizing for the {kind} scorer")


@dataclass
class ScorerCollator:
    """Pads tokenized pairs: chosen block then rejected block (pointwise kinds), or forward,
    reverse and duplicate blocks (difference model)."""

    pad_id: int
    kind: str
    use_reverse: bool = True
    use_duplicate: bool = True

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if self.kind == "difference":
            sequences = [r["forward_ids"] for r in rows]
            if self.use_reverse:
                sequences += [r["reverse_ids"] for r in rows]
            if self.use_duplicate:
                sequences += [r["duplicate_ids"] for r in rows]
            batch = {"label": torch.tensor([r["label"] for r in rows], dtype=torch.float32)}
        else:
            sequences = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
            batch = {}
            if self.kind == "oracle":
                batch["response_mask"] = pad([[0] * r["chosen_start"] + [1] * (len(r["chosen_ids"]) - r["chosen_start"])
                                              for r in rows], 0, max(len(s) for s in sequences))
        batch["input_ids"] = pad(sequences, self.pad_id)
        batch["attention_mask"] = pad([[1] * len(s) for s in sequences], 0, batch["input_ids"].shape[1])
        if "margin" in rows[0]:
            batch["margin"] = torch.tensor([r["margin"] for r in rows], dtype=torch.float32)
        return batch


class ScorerTrainer(MetricsTrainer):
    """Trains a scorer of one ``kind``: reward (Bradley–Terry), difference (RDO §3) or oracle
    (DRDO Eq. 5)."""

    def __init__(self, *args, kind: str, lambda_dup: float = 0.0, lambda_rev: float = 0.0,
                 alpha_lm: float = 0.01, **kwargs):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        super().__init__(*args, **kwargs)
        self.kind, self.lambda_dup, self.lambda_rev, self.alpha_lm = kind, lambda_dup, lambda_rev, alpha_lm

    def scores(self, model, inputs) -> torch.Tensor:
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.squeeze(-1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.kind == "difference":
            loss, outputs = self._difference_loss(model, inputs)
        elif self.kind == "reward":
            rewards = self.scores(model, inputs)
            chosen, rejected = rewards.chunk(2)
            loss = bradley_terry_loss(chosen, rejected, inputs.get("margin")).mean()
            self.store(accuracy=(chosen > rejected).float(), margin=chosen - rejected)
            outputs = {"reward_chosen": chosen, "reward_rejected": rejected}
        else:
            logits, rewards = lm_forward(model, inputs["input_ids"], inputs["attention_mask"], reward=True)
            chosen, rejected = rewards.chunk(2)
            n = chosen.shape[0]
            logp_sum, count = sequence_logps(logits[:n], inputs["input_ids"][:n], inputs["response_mask"])
            chosen_logps = logp_sum / count.clamp(min=1)
            loss = oracle_loss(chosen, rejected, chosen_logps, self.alpha_lm).mean()
            self.store(accuracy=(chosen > rejected).float(), margin=chosen - rejected,
                       lm_nll=-chosen_logps)
            outputs = {"reward_chosen": chosen, "reward_rejected": rejected}
        return (loss, outputs) if return_outputs else loss

    def _difference_loss(self, model, inputs):
        d = self.scores(model, inputs)
        blocks = d.split(inputs["label"].shape[0])
        forward = blocks[0]
        reverse = blocks[1] if self.data_collator.use_reverse else None
        duplicate = blocks[-1] if self.data_collator.use_duplicate else None
        loss, parts = difference_model_loss(forward, inputs["label"], reverse, duplicate,
                                            self.lambda_dup, self.lambda_rev)
        correct = ((forward > 0).float() == inputs["label"]).float()
        self.store(accuracy=correct, loss_main=parts["main"], loss_dup=parts["dup"], loss_rev=parts["rev"])
        return loss, {"diff": forward}
