"""Padding-free batches: every layout of ``response_batch`` scores each response exactly as
``prompt + response`` alone, on every attention implementation that takes a block mask.

Guards: forward/batching.py, forward/length_groups.py, forward/logprobs.py."""

import logging

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import deltapref.forward.length_groups as grouping
from deltapref.forward.batching import _rows, join_prompt_responses, response_batch
from deltapref.forward.logprobs import batch_logps, sequence_logps
from deltapref.policy.run import RunOptions, layout

LAYOUTS = [(True, False), (False, True), (True, True)]


def _tiny_llama(attention: str, tied: bool = False) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation=attention,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).float().eval()


def _pairs(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)

    def ids(n):
        return torch.randint(3, 50, (n,), generator=g).tolist()

    return [ids(p) for p, _, _ in lengths], [[ids(c), ids(r)] for _, c, r in lengths]


LENGTHS = [(9, 4, 12), (3, 2, 2), (14, 6, 1), (2, 11, 5), (5, 3, 3)]


def test_first_fit_decreasing_rows():
    assert _rows([5, 3, 2, 4, 1], pack=False) == [[0], [1], [2], [3], [4]]
    # width 5: 5 | 4+1 | 3+2, each unit once
    assert _rows([5, 3, 2, 4, 1], pack=True) == [[0], [3, 4], [1, 2]]
    assert _rows([1, 2, 1], pack=True) == [[1], [0, 2]]  # ties keep input order


@pytest.mark.parametrize("share, pack", LAYOUTS)
def test_block_layouts_hold_every_response_with_restarted_positions(share, pack):
    prompts, blocks = _pairs(LENGTHS)
    batch = response_batch(prompts, blocks, 0, share, pack)
    tokens = sum(len(p) * (1 if share else 2) + len(c) + len(r) for p, (c, r) in zip(prompts, blocks))
    real = batch["attention_mask"][:, 0].diagonal(dim1=1, dim2=2).sum()  # every position sees itself
    assert real == batch["input_ids"].numel()
    if pack:
        assert batch["input_ids"].shape[0] < (5 if share else 10)  # fewer rows than units
    for i, (prompt, responses) in enumerate(zip(prompts, blocks)):
        for j, response in enumerate(responses):
            row, pos = batch["source_row"][i, j, 0], batch["source_pos"][i, j, : len(response)]
            assert batch["target_ids"][i, j, : len(response)].tolist() == response
            # the first token is predicted from the prompt's end, the others from their predecessor
            assert batch["input_ids"][row, pos[0] - len(prompt) + 1 : pos[0] + 1].tolist() == prompt
            assert batch["input_ids"][row, pos[1:]].tolist() == response[:-1]
            positions = list(range(len(prompt) - 1, len(prompt) + len(response) - 1))
            assert batch["position_ids"][row, pos].tolist() == positions
    assert batch["input_ids"].shape[1] * batch["input_ids"].shape[0] >= tokens


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("share, pack", [(False, False), *LAYOUTS])
@pytest.mark.parametrize("cost", [0, 10**6])
@pytest.mark.parametrize("tied", [False, True])
def test_every_layout_gives_the_padded_logps_and_gradients(attention, share, pack, cost, tied, monkeypatch):
    """... also when the forward runs rows of similar length together (cost 0: every distinct
    length its own pass) instead of the whole batch in one pass, looking the input embeddings up
    once; with the LM head tied to them, their gradient (sparse lookup + dense head) is dense."""
    monkeypatch.setattr(grouping, "GROUP_COST_TOKENS", cost)
    model = _tiny_llama(attention, tied)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tied
    lookups = []
    model.model.embed_tokens.register_forward_hook(lambda *_: lookups.append(1))
    prompts, blocks = _pairs(LENGTHS)
    if cost == 0 and not pack:
        batch = response_batch(prompts, blocks, 0, share, pack)
        lengths = batch["row_lengths"] if share else batch["attention_mask"].sum(1)
        assert len(grouping.length_groups(lengths.tolist())) > 1
    got = batch_logps(model, response_batch(prompts, blocks, 0, share, pack))
    got[0].sum().backward()
    assert len(lookups) == 1
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = join_prompt_responses(prompts * 2, [b[j] for j in range(2) for b in blocks], 0)
    logits = model(input_ids=plain["input_ids"], attention_mask=plain["attention_mask"]).logits
    want = sequence_logps(logits, plain["input_ids"], plain["response_mask"])
    want[0].sum().backward()
    assert torch.allclose(got[0], want[0], atol=1e-5), (got[0] - want[0]).abs().max()
    assert torch.equal(got[1], want[1])
    for mine, theirs in zip(grads, (p.grad for p in model.parameters())):
        assert torch.allclose(mine, theirs, atol=1e-5)


def test_attention_without_block_masks_falls_back_in_one_line(caplog):
    model = _tiny_llama("sdpa")
    assert layout(model, RunOptions(share_prefix=True, pack=True)) == (True, True)
    model.config._attn_implementation = "flash_attention_2"
    with caplog.at_level(logging.WARNING):
        assert layout(model, RunOptions(share_prefix=True, pack=True)) == (False, False)
        assert layout(model, RunOptions()) == (False, False)
    assert len(caplog.records) == 1 and "flash_attention_2" in caplog.text
