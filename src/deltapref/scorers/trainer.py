"""``ScorerTrainer``: one Trainer for the reward model, the difference model and the oracle.

Rows are tokenized once (``prepare_scorer_dataset``); a collator pads them into one batch per
step, and ``compute_loss`` runs the objective unit's forward (in groups of similar length,
``grouping.grouped_by_length``) and loss (``deltapref.objectives``).
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from deltapref.config.commands import TokenizationConfig
from deltapref.forward.batching import pad
from deltapref.objectives import ScorerLossOptions, ScorerObjective
from deltapref.training.trainer import MetricsTrainer


def prepare_scorer_dataset(
    dataset: datasets.Dataset,
    tokenizer,
    objective: ScorerObjective,
    config: TokenizationConfig,
    seed: int = 0,
    margin_column: str | None = None,
) -> datasets.Dataset:
    """Tokenize pairs for ``objective``, with two fixed per-row coins (drawn from ``seed``, so runs
    and resumes agree) that objectives may use, e.g. the difference model's order, and ``length``
    (the longest sequence of the row) for ``--train_sampling_strategy group_by_length``."""
    coins = np.random.default_rng(seed).integers(0, 2, size=(len(dataset), 2))

    def encode(row, index):
        out = objective.encode(tokenizer, row, config, coins[index])
        out["length"] = max(len(ids) for ids in out.values() if isinstance(ids, list))
        if margin_column:
            out["margin"] = float(row[margin_column])
        return out

    return dataset.map(
        encode,
        with_indices=True,
        remove_columns=dataset.column_names,
        desc=f"tokenizing for the {objective.name} scorer",
    )


@dataclass
class ScorerCollator:
    """Pads the sequences an objective stacks for a batch (e.g. chosen block then rejected block)."""

    pad_id: int
    objective: ScorerObjective
    options: ScorerLossOptions

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        sequences, batch = self.objective.sequences(rows, self.options)
        batch["input_ids"] = pad(sequences, self.pad_id)
        batch["attention_mask"] = pad([[1] * len(s) for s in sequences], 0, batch["input_ids"].shape[1])
        if "margin" in rows[0]:
            batch["margin"] = torch.tensor([r["margin"] for r in rows], dtype=torch.float32)
        return batch


class ScorerTrainer(MetricsTrainer):
    """Trains a scorer with one objective unit: reward (Bradley–Terry), difference (RDO §3) or
    oracle (DRDO Eq. 5)."""

    def __init__(self, *args, objective: ScorerObjective, options: ScorerLossOptions, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective, self.options = objective, options

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, metrics = self.objective.compute(self.objective.forward(model, inputs), inputs, self.options)
        self.check_finite(loss)
        self.store(**metrics)
        return (loss, {}) if return_outputs else loss
