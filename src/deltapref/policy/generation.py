"""Sampling completions for a set of prompts, batched, with progress."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..data.loading import read_records
from ..data.schema import DataError
from ..data.tokenization import encode_prompt

KEEP = ("id", "prompt")


def read_prompts(source: str, limit: int | None = None) -> list[dict]:
    rows = []
    for number, raw in read_records(source):
        if not isinstance(raw, dict) or "prompt" not in raw:
            raise DataError("is missing", source=source, row=number, field="prompt")
        rows.append({k: raw[k] for k in KEEP if k in raw})
        if limit and len(rows) >= limit:
            break
    return rows


@torch.no_grad()
def generate_completions(
    model,
    tokenizer,
    prompts: list,
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.7,
    top_p: float = 1.0,
    batch_size: int = 32,
    max_prompt_length: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """One sampled completion per prompt (left-padded batches), decoded without special tokens."""
    model.eval()
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p)[-max_prompt_length:] for p in prompts]
    torch.manual_seed(seed)
    out = []
    for start in tqdm(range(0, len(encoded), batch_size), desc="generating", unit="batch", disable=not progress):
        batch = encoded[start : start + batch_size]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(ids)) + ids for ids in batch], device=device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
        sampling = (
            dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
        )
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
        out.extend(tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True))
    return [text.strip() for text in out]
