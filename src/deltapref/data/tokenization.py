"""Turning (prompt, response) into token ids with the prompt/response boundary kept exactly.

Strings are tokenized as ``[bos] + prompt`` and ``response + [eos]``; chat messages go through
the tokenizer's chat template, and the response is whatever the template adds after the prompt
with a generation prompt. Truncation keeps the response: the prompt loses tokens first (from its
start by default), then the response's end is cut only if it alone is too long.
"""

from __future__ import annotations

import numpy as np

from deltapref.config.commands import TokenizationConfig
from deltapref.data.schema import DataError


def _chat_text(tokenizer, messages, add_generation_prompt: bool) -> str:
    if tokenizer.chat_template is None:
        raise DataError("holds chat messages but the tokenizer has no chat template", field="prompt")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prompt_text(tokenizer, prompt) -> str:
    """The prompt as the text a model continues (chat template applied to messages)."""
    return _chat_text(tokenizer, prompt, True) if isinstance(prompt, list) else prompt


def encode_prompt(tokenizer, prompt) -> list[int]:
    """Prompt ids, with the tokenizer's bos for plain strings (chat templates carry their own;
    a string that is already templated, i.e. starts with bos, is not given a second)."""
    ids = _ids(tokenizer, prompt_text(tokenizer, prompt))
    if not isinstance(prompt, list) and tokenizer.bos_token_id is not None and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id] + ids  # a prompt that already starts with bos (e.g. templated) keeps one
    return ids


def encode_response(tokenizer, prompt, response) -> list[int]:
    """Response ids (ending with eos for plain strings; the template's own end for messages)."""
    if isinstance(response, list):
        prompt_part = _chat_text(
            tokenizer, prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}], True
        )
        conversation = (prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]) + response
        full = _chat_text(tokenizer, conversation, False)
        if not full.startswith(prompt_part):
            raise DataError(
                "chat template does not keep the prompt as a prefix of the "
                "conversation, so the response boundary is unknown",
                field="chosen",
            )
        return _ids(tokenizer, full[len(prompt_part) :])
    ids = _ids(tokenizer, response)
    return ids + [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else ids


def truncate(prompt_ids: list[int], response_ids: list[int], config: TokenizationConfig) -> tuple[list[int], list[int]]:
    """Apply the truncation policy: shorten the prompt first, then the response's end."""
    if len(prompt_ids) + len(response_ids) > config.max_length and len(prompt_ids) > config.max_prompt_length:
        keep = config.max_prompt_length
        prompt_ids = prompt_ids[-keep:] if config.prompt_truncation == "keep_end" else prompt_ids[:keep]
    if len(prompt_ids) + len(response_ids) > config.max_length:
        response_ids = response_ids[: config.max_length - len(prompt_ids)]
    return prompt_ids, response_ids


def encode_pair(tokenizer, row: dict, config: TokenizationConfig) -> dict:
    """Token ids for a pairwise row: ``prompt_ids`` (one prompt, truncated for the longer
    response), ``chosen_ids`` and ``rejected_ids``."""
    responses = {name: encode_response(tokenizer, row["prompt"], row[name]) for name in ("chosen", "rejected")}
    longest = max(responses.values(), key=len)
    prompt_ids, _ = truncate(encode_prompt(tokenizer, row["prompt"]), longest, config)
    out = {"prompt_ids": prompt_ids}
    for name, ids in responses.items():
        out[f"{name}_ids"] = truncate(prompt_ids, ids, config)[1]
    return out


def length_stats(tokenizer, rows, fields=("prompt", "chosen", "rejected")) -> dict:
    """Token-length percentiles (p50, p90, p99, max) of each field."""
    stats = {}
    for name in fields:
        lengths = []
        for row in rows:
            if name == "prompt":
                lengths.append(len(encode_prompt(tokenizer, row["prompt"])))
            elif name in row:
                lengths.append(len(encode_response(tokenizer, row["prompt"], row[name])))
        if lengths:
            values = np.asarray(lengths)
            stats[name] = {
                "mean": float(values.mean()),
                "p50": float(np.percentile(values, 50)),
                "p90": float(np.percentile(values, 90)),
                "p99": float(np.percentile(values, 99)),
                "max": int(values.max()),
            }
    return stats
