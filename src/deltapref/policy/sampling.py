"""Sampling with common random numbers: each prompt's randomness is its own, drawn from the seed
(``generate`` adds the sample's index) and the prompt's tokens, so two policies completing the same prompt with the
same seed read the same random numbers (their completions coincide where the models agree), and
a prompt's completion does not depend on its batch or its position in the file.

Sampling from softmax(l/T) restricted to the top-p nucleus is done as argmax(l/T + G) over the
nucleus with G standard Gumbel noise (the Gumbel-max trick, exact); G comes from one generator
per prompt, advanced one vocabulary-sized draw per generated token."""

from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor, TopKLogitsWarper, TopPLogitsWarper


def prompt_seed(seed: int, prompt_ids: list[int]) -> int:
    """A 63-bit seed from the call's seed (``generate`` adds the sample's index) and the prompt's token ids."""
    digest = hashlib.sha256(f"{seed}:{','.join(map(str, prompt_ids))}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class PromptNoise(LogitsProcessor):
    """Temperature, top-k, top-p (Hugging Face's order and warpers), then each row's own Gumbel
    noise: greedy decoding on the result draws one sample per row from the distribution Hugging
    Face's sampling draws from."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int | None = None):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.warpers = [TopKLogitsWarper(top_k)] if top_k else []
        self.warpers += [TopPLogitsWarper(top_p)] if top_p < 1 else []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float() / self.temperature
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-20)))
        return scores + gumbel.to(scores.device)
