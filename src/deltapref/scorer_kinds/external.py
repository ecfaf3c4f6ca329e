"""A reward model the user already has: any local ``AutoModelForSequenceClassification``
directory with one output (e.g. trained by TRL's ``RewardTrainer``, or an off-the-shelf reward
model), read the way it was trained — through its tokenizer's chat template, as a text pair, or
through a template of the user's. An input that fits ``--max_length`` gets exactly the score of
``model(**tokenizer(text)).logits[0, 0]`` in plain transformers."""

from __future__ import annotations

import logging
import string
from typing import Literal

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from deltapref.coefficients import gap
from deltapref.columns import reward_columns
from deltapref.config.commands import option
from deltapref.errors import OptionError
from deltapref.forward.batching import pad
from deltapref.forward.readouts import classifier_scores
from deltapref.models.loading import from_pretrained, is_classifier
from deltapref.models.provenance import describe
from deltapref.scorer_kinds.base import ScorerKind, Setting, texts
from deltapref.scorer_kinds.inference import run_batches

logger = logging.getLogger(__name__)

INPUT = Setting(
    "external_input",
    Literal["auto", "chat", "pair", "template"],
    option(
        "auto",
        "how --external_model reads (prompt, response): chat = its tokenizer's chat template on a user and "
        "an assistant turn; pair = tokenizer(prompt, response); template = --external_template; "
        "auto = chat if its tokenizer has a chat template, else pair",
    ),
)
TEMPLATE = Setting(
    "external_template",
    str,
    option("{prompt}{response}", "the text --external_model reads with --external_input template"),
)


def resolved_format(tokenizer, asked: str) -> str:
    """``auto``: the tokenizer's chat template when it has one, else a text pair."""
    if asked != "auto":
        return asked
    return "chat" if getattr(tokenizer, "chat_template", None) else "pair"


def encode(tokenizer, prompt: str, response: str, input_format: str, template: str, max_length: int) -> dict:
    """Token ids (and token types, for a pair on an encoder) of one (prompt, response); too long
    an input loses its start (a pair: the longer part's start)."""
    if isinstance(prompt, list) or isinstance(response, list):  # chat messages
        if input_format != "chat":
            raise OptionError(
                f"--external_input {input_format} reads text, and this data holds chat messages: score it with "
                "--external_input chat (an --external_model whose tokenizer has a chat template)"
            )
        turns = lambda value, role: value if isinstance(value, list) else [{"role": role, "content": value}]  # noqa: E731
        text = tokenizer.apply_chat_template(turns(prompt, "user") + turns(response, "assistant"), tokenize=False)
        return tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length)
    if input_format == "pair":
        return tokenizer(prompt, response, truncation="longest_first", max_length=max_length)
    if input_format == "chat":
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length)
    return tokenizer(template.format(prompt=prompt, response=response), truncation=True, max_length=max_length)


def external_rewards(model, tokenizer, prompts, responses, config, progress: bool = False) -> list[float]:
    """The model's one output for every (prompt, response), in batches of ``config.batch_size``
    (one at a time for a model with no pad token: it cannot tell padding from text)."""
    input_format = resolved_format(tokenizer, config.external_input)
    if input_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise OptionError("--external_input chat: the --external_model's tokenizer has no chat template")
    tokenizer.truncation_side = "left"
    encoded = [
        encode(tokenizer, p, r, input_format, config.external_template, config.max_length)
        for p, r in zip(prompts, responses)
    ]
    pad_id = model.config.pad_token_id
    batch_size = config.batch_size if pad_id is not None else 1

    def extras(index, width):
        if "token_type_ids" not in encoded[0]:
            return {}
        return {"token_type_ids": pad([encoded[i]["token_type_ids"] for i in index], 0, width)}

    sequences = [e["input_ids"] for e in encoded]
    return run_batches(
        model, sequences, pad_id or 0, batch_size, classifier_scores, "external rewards", progress, extras
    )


class ExternalKind(ScorerKind):
    name = "external"
    option = "external_model"
    help = (
        "a reward model of your own: a local AutoModelForSequenceClassification directory with one output "
        "(e.g. trained with TRL's RewardTrainer); see --external_input"
    )
    what = "a reward model (a sequence classifier with one output)"
    source = gap(reward_columns("external"))
    settings = (INPUT, TEMPLATE)

    def paths(self, value):
        return [value]

    def problem(self, config):
        if not is_classifier(config):
            return "it is not a sequence classifier"
        if config.get("deltapref_kind") == "difference":
            return "it scores pairs, not single responses (pass it as --difference_model)"
        labels = len(config.get("id2label") or {0: "LABEL_0", 1: "LABEL_1"})
        return None if labels == 1 else f"it has {labels} outputs"

    def check_settings(self, config) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(config.external_template) if name is not None}
        if config.external_input == "template" and (fields - {"prompt", "response"} or "response" not in fields):
            raise ValueError(
                "--external_template must name {response} (and may name {prompt}), "
                f"got {config.external_template!r}"
            )

    def load(self, value, config):
        tokenizer = from_pretrained(AutoTokenizer, value)
        model = from_pretrained(AutoModelForSequenceClassification, value, dtype=torch.float32)
        if model.config.pad_token_id is None:
            logger.info("%s has no pad token: scoring one input at a time", value)
        return model.eval(), tokenizer

    def score(self, loaded, rows, config):
        model, tokenizer = loaded
        prompts, chosen, rejected = texts(rows)
        values = [external_rewards(model, tokenizer, prompts, side, config) for side in (chosen, rejected)]
        return dict(zip(self.source.columns, values))

    def provenance(self, value, config, column):
        settings = {"input": config.external_input}
        if config.external_input == "template":
            settings["template"] = config.external_template
        return {"model": describe(value), **settings}
