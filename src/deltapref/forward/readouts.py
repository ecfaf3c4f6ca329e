"""How a scorer's output is read from its forward pass, the same in training and in scoring: a
``num_labels=1`` classifier's scalar, and a difference model's readouts of one pair sequence (its
classifier's own, or ``contrast``: the head on the difference of the two responses' mean hidden
states). A saved difference model keeps its readout and input length in its config."""

from __future__ import annotations

from dataclasses import replace

import torch

from deltapref.config.commands import TokenizationConfig
from deltapref.data.scorer_inputs import PairSequence
from deltapref.forward.batching import pad
from deltapref.models.loading import unwrap

READOUT = "deltapref_difference_readout"  # the config attribute a saved difference model keeps its readout in
PAIR_LENGTH = "deltapref_pair_max_length"  # ... and the input length it was trained at


def pair_tokenization(model, config: TokenizationConfig) -> TokenizationConfig:
    """``config`` with the longest input a saved difference model was trained at (models saved
    before it was kept read pairs at ``config.max_length``); the prompt budget stays below it."""
    length = getattr(unwrap(model).config, PAIR_LENGTH, None)
    if not length:
        return config.tokenization
    return replace(config.tokenization, max_length=length, max_prompt_length=min(config.max_prompt_length, length - 1))


def _types(batch: dict) -> dict:
    return {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}


def classifier_scores(model, batch: dict) -> torch.Tensor:
    """The scalar output of a ``num_labels=1`` classifier for every sequence of the batch (with
    its ``token_type_ids`` when the batch has them)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **_types(batch)).logits.squeeze(
        -1
    )


def contrast_scores(model, batch: dict) -> torch.Tensor:
    """The ``contrast`` readout of a difference model: the classifier's linear head applied to
    mean(h over part 1) − mean(h over part 2) of the backbone's last hidden states, so each
    response is read where it sits (in the context of the other) and swapping them flips the
    sign up to position effects. The hidden states come from the model's own forward (a
    distributed wrapper's included, so its gradients sync)."""
    hf = unwrap(model)
    head = hf.classifier if hasattr(hf, "classifier") else hf.score
    hidden = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True, **_types(batch)
    ).hidden_states[-1]

    def part_mean(mask):
        mask = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    return head(part_mean(batch["first_mask"]) - part_mean(batch["second_mask"])).squeeze(-1)


def difference_scores(model, batch: dict) -> torch.Tensor:
    """d(x, y1, y2) for a batch: the contrast readout when the batch carries part masks, else the
    classifier's own (last token for decoders, [CLS] for encoders)."""
    return contrast_scores(model, batch) if "first_mask" in batch else classifier_scores(model, batch)


def pair_batch_extras(sequences: list[PairSequence], segments: bool, readout: str, width: int) -> dict:
    """Token types (encoders) and part masks (``contrast`` readout) of difference-model inputs."""
    extra = {}
    if segments:
        extra["token_type_ids"] = pad([s.segment_ids() for s in sequences], 0, width)
    if readout == "contrast":
        masks = [s.part_masks() for s in sequences]
        extra["first_mask"] = pad([m[0] for m in masks], 0, width)
        extra["second_mask"] = pad([m[1] for m in masks], 0, width)
    return extra
