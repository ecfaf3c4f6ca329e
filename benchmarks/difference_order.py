"""How much a difference-model backbone sees which response comes first, before any training:
the pooled vectors v(x, y1, y2) and v(x, y2, y1) of real pairs, split into their order-dependent
part (v_f − v_r)/2 and the shared part (v_f + v_r)/2, for the pointwise pair (x, chosen) vs
(x, rejected) beside it. Encoders with and without segment ids for the second response, and
what the contrast readout reads (part 1 mean minus part 2 mean).

    python benchmarks/difference_order.py --data ../shared/data/hh-rlhf/harmless-base-test.jsonl.gz

Prints, per input layout, the mean cosine of the two orders' vectors and the ratio of the
order-dependent to the shared variance (0: order-blind).
"""

from __future__ import annotations

import argparse

import torch


def variance_ratio(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean cosine of a_i and b_i, variance of (a − b)/2 over variance of (a + b)/2 across pairs)."""
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item()
    half_diff, mean = (a - b) / 2, (a + b) / 2
    shared = (mean - mean.mean(0)).pow(2).sum().item()
    return cosine, half_diff.pow(2).sum().item() / max(shared, 1e-12)


def pooled(model, batch: list[list[int]], types: list[list[int]] | None, pad_id: int) -> torch.Tensor:
    from deltapref.forward.batching import pad

    ids = pad(batch, pad_id)
    mask = pad([[1] * len(s) for s in batch], 0, ids.shape[1])
    extra = {} if types is None else {"token_type_ids": pad(types, 0, ids.shape[1])}
    return model.bert(input_ids=ids, attention_mask=mask, **extra).pooler_output


def contrast(model, pairs, pad_id: int) -> torch.Tensor:
    """What the contrast readout's head reads: mean h over part 1 minus mean h over part 2."""
    from deltapref.forward.batching import pad

    ids = pad([p.ids for p in pairs], pad_id)
    width = ids.shape[1]
    mask = pad([[1] * len(p.ids) for p in pairs], 0, width)
    types = pad([p.segment_ids() for p in pairs], 0, width)
    hidden = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    parts = [p.part_masks() for p in pairs]
    first, second = (pad([m[i] for m in parts], 0, width).float().unsqueeze(-1) for i in (0, 1))
    return (hidden * first).sum(1) / first.sum(1) - (hidden * second).sum(1) / second.sum(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=512)
    a = parser.parse_args()

    from deltapref.data.loading import load_preferences
    from deltapref.data.scorer_inputs import difference_ids, pointwise_ids
    from deltapref.data.tokenization import TokenizationConfig
    from deltapref.models.loading import load_sequence_scorer, load_tokenizer

    torch.set_grad_enabled(False)
    data, _ = load_preferences(a.data)
    rows = data.select(range(min(a.pairs, len(data))))
    tokenizer = load_tokenizer(a.model)
    model = load_sequence_scorer(a.model, tokenizer).eval()
    config = TokenizationConfig(a.max_length, a.max_length // 4)
    pad_id = tokenizer.pad_token_id
    forward = [difference_ids(tokenizer, r["prompt"], r["chosen"], r["rejected"], config) for r in rows]
    reverse = [difference_ids(tokenizer, r["prompt"], r["rejected"], r["chosen"], config) for r in rows]
    half = TokenizationConfig(a.max_length // 2, a.max_length // 8)
    chosen = [pointwise_ids(tokenizer, r["prompt"], r["chosen"], half)[0] for r in rows]
    rejected = [pointwise_ids(tokenizer, r["prompt"], r["rejected"], half)[0] for r in rows]

    def types(encoded):
        return [pair.segment_ids() for pair in encoded]

    layouts = {
        "difference, no segment ids": (
            pooled(model, [p.ids for p in forward], None, pad_id),
            pooled(model, [p.ids for p in reverse], None, pad_id),
        ),
        "difference, second response segment 1": (
            pooled(model, [p.ids for p in forward], types(forward), pad_id),
            pooled(model, [p.ids for p in reverse], types(reverse), pad_id),
        ),
        "difference, contrast readout (+ segment ids)": (
            contrast(model, forward, pad_id),
            contrast(model, reverse, pad_id),
        ),
        "pointwise (x, chosen) vs (x, rejected)": (
            pooled(model, chosen, None, pad_id),
            pooled(model, rejected, None, pad_id),
        ),
    }
    print(f"{a.model}, {len(rows)} pairs of {a.data}, max_length {a.max_length}")
    for name, (first, second) in layouts.items():
        cosine, ratio = variance_ratio(first, second)
        print(f"  {name:42s} cosine {cosine:.4f}   order-dependent / shared variance {ratio:.4f}")


if __name__ == "__main__":
    main()
