"""Token sequences that scorers read.

- Pointwise (reward model, oracle): prompt then response. Decoders: ``[bos] prompt response
  [eos]`` and the score sits on the last token; encoders (a tokenizer with [CLS]/[SEP] and no
  bos): ``[CLS] prompt [SEP] response [SEP]``, scored on [CLS].
- Difference model: ``Query: x`` ``Response 1: y1`` ``Response 2: y2`` in one sequence (RDO §3),
  each segment truncated on its own: the prompt keeps its end, responses keep their start. On
  an encoder with segment embeddings (BERT's ``token_type_ids``) the second response, from its
  label on, is segment 1: without it a bidirectional encoder pooled at [CLS] barely sees which
  response comes first (docs/RESULTS.md). Decoders read the last token, which follows both.
"""

from __future__ import annotations

from typing import NamedTuple

from deltapref.config.commands import TokenizationConfig
from deltapref.data.tokenization import encode_prompt, encode_response, truncate

QUERY, FIRST, SECOND = "Query: ", "\nResponse 1: ", "\nResponse 2: "


def is_encoder_tokenizer(tokenizer) -> bool:
    return tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None and tokenizer.bos_token_id is None


def _plain(value) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m['role']}: {m['content']}" for m in value)
    return value


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def pointwise_ids(tokenizer, prompt, response, config: TokenizationConfig) -> tuple[list[int], int]:
    """Token ids of (prompt, response) for a scorer and the index where the response starts."""
    if is_encoder_tokenizer(tokenizer):
        prompt_ids, response_ids = truncate(
            _ids(tokenizer, _plain(prompt)),
            _ids(tokenizer, _plain(response)),
            TokenizationConfig(config.max_length - 3, config.max_prompt_length, config.prompt_truncation),
        )
        head = [tokenizer.cls_token_id] + prompt_ids + [tokenizer.sep_token_id]
        return head + response_ids + [tokenizer.sep_token_id], len(head)
    prompt_ids, response_ids = truncate(
        encode_prompt(tokenizer, prompt), encode_response(tokenizer, prompt, response), config
    )
    return prompt_ids + response_ids, len(prompt_ids)


def _keep(ids: list[int], n: int, mode: str) -> list[int]:
    n = max(n, 0)
    return (ids[len(ids) - n :] if mode == "keep_end" else ids[:n]) if len(ids) > n else ids


def uses_segments(tokenizer) -> bool:
    """Whether difference-model inputs mark the second response with ``token_type_ids``."""
    return is_encoder_tokenizer(tokenizer) and "token_type_ids" in tokenizer.model_input_names


class PairSequence(NamedTuple):
    """A difference-model input: its token ids and where each response's part (label and
    response) starts; the second part runs to the end of the sequence."""

    ids: list[int]
    first_start: int
    second_start: int

    def segment_ids(self) -> list[int]:
        """Token types: 0 up to the second response's label, 1 from it to the end."""
        return [0] * self.second_start + [1] * (len(self.ids) - self.second_start)

    def part_masks(self) -> tuple[list[int], list[int]]:
        """Masks of the first part (label + response 1) and of the second (label + response 2 + end)."""
        rest = len(self.ids) - self.second_start
        first = [0] * self.first_start + [1] * (self.second_start - self.first_start) + [0] * rest
        return first, self.segment_ids()


def difference_ids(tokenizer, prompt, first, second, config: TokenizationConfig) -> PairSequence:
    """One sequence holding the query and both responses, with where each response's part starts."""
    encoder = is_encoder_tokenizer(tokenizer)
    start = (
        [tokenizer.cls_token_id]
        if encoder
        else ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else [])
    )
    end = (
        [tokenizer.sep_token_id]
        if encoder
        else ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])
    )
    labels = [_ids(tokenizer, text) for text in (QUERY, FIRST, SECOND)]
    query = _ids(tokenizer, _plain(prompt))
    responses = [_ids(tokenizer, _plain(first)), _ids(tokenizer, _plain(second))]
    fixed = len(start) + len(end) + sum(len(label) for label in labels)
    budget = config.max_length - fixed
    query = _keep(query, config.max_prompt_length, config.prompt_truncation)
    if len(query) + sum(len(r) for r in responses) > budget:
        per_response = max(1, (budget - min(len(query), budget // 3)) // 2)
        responses = [r[:per_response] for r in responses]
        room = budget - sum(len(r) for r in responses)
        query = _keep(query, room, config.prompt_truncation)
    query_part = start + labels[0] + query
    head = query_part + labels[1] + responses[0]
    return PairSequence(head + labels[2] + responses[1] + end, len(query_part), len(head))
