"""``deltapref generate``: sample completions for a set of prompts, batched, with progress,
written atomically as a dataset (``prompt``, ``completion`` and any ``id``/gold columns kept)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import torch
from tqdm.auto import tqdm

from ..config import option
from ..data.loading import read_records, save_dataset
from ..data.schema import DataError
from ..data.tokenization import encode_prompt
from ..models import load_causal_lm, load_tokenizer


@dataclass
class GenerateConfig:
    model: str = option(None, "policy directory or HF id")
    input: str = option(None, "prompts: any file with a 'prompt' column (pairs and ranked lists work)")
    output: str = option(None, "where to write completions (.jsonl, .parquet, .json or a directory)")
    max_new_tokens: int = option(32, "longest completion in tokens")
    temperature: float = option(0.7, "sampling temperature; 0 decodes greedily")
    top_p: float = option(1.0, "nucleus sampling mass")
    num_samples: int = option(1, "completions per prompt")
    batch_size: int = option(32, "prompts per generate call")
    max_prompt_length: int = option(256, "longest prompt in tokens (keeps its end)")
    limit: int = option(None, "only the first N prompts")
    seed: int = option(0, "sampling seed")
    trust_remote_code: bool = option(False, "allow model repos to run their own code")

    def __post_init__(self):
        if not self.model or not self.input or not self.output:
            raise ValueError("--model, --input and --output are required")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.num_samples < 1 or self.max_new_tokens < 1:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1, num_samples >= 1, max_new_tokens >= 1")


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
def generate_completions(model, tokenizer, prompts: list, *, max_new_tokens: int = 32, temperature: float = 0.7,
                         top_p: float = 1.0, batch_size: int = 32, max_prompt_length: int = 256, seed: int = 0,
                         progress: bool = True) -> list[str]:
    """One sampled completion per prompt (left-padded batches), decoded without special tokens."""
    model.eval()
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p)[-max_prompt_length:] for p in prompts]
    torch.manual_seed(seed)
    out = []
    for start in tqdm(range(0, len(encoded), batch_size), desc="generating", unit="batch", disable=not progress):
        batch = encoded[start: start + batch_size]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(ids)) + ids for ids in batch], device=device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
        sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
        generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **sampling)
        out.extend(tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True))
    return [text.strip() for text in out]


def generate(config: GenerateConfig) -> int:
    """Entry point of ``deltapref generate``."""
    rows = read_prompts(config.input, config.limit)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_causal_lm(config.model, tokenizer, trust_remote_code=config.trust_remote_code)
    results = []
    for sample in range(config.num_samples):
        completions = generate_completions(model, tokenizer, [r["prompt"] for r in rows],
                                           max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                           top_p=config.top_p, batch_size=config.batch_size,
                                           max_prompt_length=config.max_prompt_length, seed=config.seed + sample)
        results += [dict(row, completion=c, sample=sample, model=config.model) for row, c in zip(rows, completions)]
    save_dataset(datasets.Dataset.from_list(results), config.output)
    print(f"wrote {len(results)} completions to {config.output}")
    return 0
