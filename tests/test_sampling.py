"""Sampling with common random numbers: exact in distribution, and each prompt's randomness its
own (not its batch's or its position's), so policies compared on the same prompts share it.

Guards: policy/sampling.py, policy/generation.py, randomness.py."""

import torch

from deltapref.policy.sampling import PromptNoise, prompt_seed


def test_gumbel_max_draws_from_the_tempered_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]])
    draws = 20000
    noise = PromptNoise([prompt_seed(0, [1, 2, 3])], temperature=0.7, top_p=1.0)
    counts = torch.bincount(torch.stack([noise(None, logits).argmax(-1) for _ in range(draws)]).flatten(), minlength=5)
    expected = torch.softmax(logits[0] / 0.7, -1)
    assert torch.allclose(counts / draws, expected, atol=0.012)  # ~4 binomial SDs at 20k draws
    nucleus = PromptNoise([prompt_seed(0, [1])], temperature=1.0, top_p=0.7)
    kept = {int(nucleus(None, logits).argmax(-1)) for _ in range(2000)}
    assert kept == {0, 1}  # softmax(l) = .64 .23 .09 ...: the 0.7 nucleus holds the first two
    top_k = PromptNoise([prompt_seed(0, [2])], temperature=5.0, top_p=1.0, top_k=3)
    assert {int(top_k(None, logits).argmax(-1)) for _ in range(2000)} == {0, 1, 2}  # Hugging Face's top-k too


def test_a_prompts_random_numbers_are_its_own():
    a = PromptNoise([prompt_seed(0, [5, 6]), prompt_seed(0, [7])], temperature=1.0, top_p=1.0)
    b = PromptNoise([prompt_seed(0, [7]), prompt_seed(0, [5, 6])], temperature=1.0, top_p=1.0)
    zeros = torch.zeros(2, 50)
    for _ in range(3):  # step by step, the same prompt draws the same numbers in either row
        x, y = a(None, zeros), b(None, zeros)
        assert torch.equal(x[0], y[1]) and torch.equal(x[1], y[0]) and not torch.equal(x[0], x[1])
    assert prompt_seed(0, [5, 6]) != prompt_seed(1, [5, 6])


def test_completions_follow_the_prompt_not_the_batch(builtin_task):
    from deltapref.data.loading import load_preferences
    from deltapref.models.loading import load_causal_lm, load_tokenizer
    from deltapref.policy.generation import generate_completions

    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    model = load_causal_lm("tiny:32:1", tokenizer, seed=0)
    prompts = [r["prompt"] for r in load_preferences(str(builtin_task / "test.jsonl"), limit=10)[0]]
    options = dict(max_new_tokens=8, temperature=1.0, seed=3, progress=False, paired=True)
    together = generate_completions(model, tokenizer, prompts, batch_size=10, **options)
    reversed_in_pairs = generate_completions(model, tokenizer, prompts[::-1], batch_size=2, **options)[::-1]
    assert together == reversed_in_pairs
    other_seed = generate_completions(model, tokenizer, prompts, batch_size=10, **dict(options, seed=4))
    assert other_seed != together
    stream = generate_completions(model, tokenizer, prompts, batch_size=10, **dict(options, paired=False))
    assert stream != together  # the former sampling is still there, and it is another draw
