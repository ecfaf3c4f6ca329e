"""Sampling completions for a set of prompts, batched, with progress."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from deltapref.data.loading import load_preferences, read_records
from deltapref.data.schema import DataError, check_text_or_messages
from deltapref.data.tokenization import encode_prompt
from deltapref.policy.sampling import PromptNoise, prompt_seed
from deltapref.randomness import seeded

KEEP = ("id", "prompt")


def read_prompts(source: str, limit: int | None = None, format: str = "auto") -> list[dict]:
    """Prompts (and ids) to complete: a file's ``prompt`` column, or, with ``format`` (e.g.
    ``hh-chat``), the prompts of preference data normalized by that adapter."""
    if format != "auto":
        rows, _ = load_preferences(source, format=format, limit=limit)
        return [{k: row[k] for k in KEEP if k in row} for row in rows]
    rows = []
    for number, raw in read_records(source):
        if not isinstance(raw, dict) or "prompt" not in raw:
            raise DataError(
                "is missing (pass --format for preference data without one, e.g. hh)",
                source=source,
                row=number,
                field="prompt",
            )
        try:
            check_text_or_messages(raw["prompt"], "prompt", allow_empty=True)
        except DataError as error:
            raise DataError(error.reason, source=source, row=number, field="prompt") from None
        rows.append({k: raw[k] for k in KEEP if k in raw})
        if limit and len(rows) >= limit:
            break
    return rows


TRANSCRIPT_TURNS = ("\n\nHuman:", "\n\nAssistant:")  # HH-style prompts: the next turn ends the answer


def default_stops(prompts: list) -> list[str]:
    """Stop strings when none are given: the next turn marker for transcript-style prompts (a chat
    template's end-of-turn token already ends generation through the tokenizer's eos)."""
    transcripts = any(isinstance(p, str) and TRANSCRIPT_TURNS[0] in p for p in prompts)
    return list(TRANSCRIPT_TURNS) if transcripts else []


def cut_at_stops(text: str, stops: list[str]) -> str:
    """``text`` up to the first stop string."""
    ends = [text.find(stop) for stop in stops if stop in text]
    return text[: min(ends)] if ends else text


class StopStrings(StoppingCriteria):
    """Ends a row once its generated text contains a stop string (decoded text, so it works for
    any tokenizer, whatever tokens the string spans)."""

    def __init__(self, tokenizer, stops: list[str], start: int):
        self.tokenizer, self.stops, self.start = tokenizer, stops, start

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        return torch.tensor([any(stop in text for stop in self.stops) for text in texts], device=input_ids.device)


def prompt_ids(tokenizer, prompts: list, max_prompt_length: int) -> list[list[int]]:
    """Each prompt's token ids as every backend feeds them (chat template or plain text), cut to
    their last ``max_prompt_length``."""
    return [encode_prompt(tokenizer, p)[-max_prompt_length:] for p in prompts]


@torch.no_grad()
def generate_completions(
    model,
    tokenizer,
    prompts: list,
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.7,
    top_p: float = 1.0,
    top_k: int = 50,
    batch_size: int = 32,
    max_prompt_length: int = 256,
    seed: int = 0,
    stops: list[str] | None = None,
    progress: bool = True,
    paired: bool = False,
) -> list[str]:
    """One sampled completion per prompt (left-padded batches), decoded without special tokens,
    ending at the end-of-turn token or the first stop string (``None``: :func:`default_stops`).
    Sampling keeps the ``top_k`` most likely tokens (0: all), then the ``top_p`` nucleus.
    ``paired``: each prompt's own random numbers (``sampling.PromptNoise``), shared by any policy
    completing it with this seed; else one random stream for the call (Hugging Face's sampling)."""
    model.eval()
    stops = default_stops(prompts) if stops is None else stops
    encoded = prompt_ids(tokenizer, prompts, max_prompt_length)
    out = []
    with seeded(seed):  # sampling follows the seed; the caller's random state is kept
        for start in tqdm(range(0, len(encoded), batch_size), desc="generating", unit="batch", disable=not progress):
            batch = encoded[start : start + batch_size]
            if temperature <= 0:
                sampling = {"do_sample": False}
            elif paired:
                noise = PromptNoise([prompt_seed(seed, ids) for ids in batch], temperature, top_p, top_k)
                sampling = {"do_sample": False, "logits_processor": LogitsProcessorList([noise])}
            else:
                sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k)
            out += _generate_batch(model, tokenizer, batch, max_new_tokens, stops, sampling)
    return [cut_at_stops(text, stops).strip() for text in out]


def _generate_batch(model, tokenizer, batch: list[list[int]], max_new_tokens: int, stops, sampling: dict) -> list[str]:
    """Left-padded ``batch`` of prompt ids -> decoded new tokens, stopping at ``stops``."""
    device = next(model.parameters()).device
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(ids)) + ids for ids in batch], device=device)
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
    if stops:
        sampling = dict(sampling, stopping_criteria=StoppingCriteriaList([StopStrings(tokenizer, stops, width)]))
    generated = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    return tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
