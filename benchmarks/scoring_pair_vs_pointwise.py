"""Difference-model pair scoring against pointwise reward scoring (two passes over (x, y)) of the
same pairs, same backbone size, in one session (RDO App. C): the pair model in the shown order
only (one pass over (x, y1, y2)) and order-balanced ((d(x,y1,y2) − d(x,y2,y1))/2: two passes,
what `deltapref score` does by default).

    python benchmarks/scoring_pair_vs_pointwise.py --data hh.jsonl.gz --tokenizer gpt2

Prints pairs/s of each (medians of repeats, min-max) and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import benchmark_parser, gpt2_tokenizer, hh_like, load_pairs, summarize  # noqa: E402


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=16, max_length=1024)
    a = parser.parse_args()

    from transformers import AutoModelForSequenceClassification, LlamaConfig

    from deltapref.data.scorer_inputs import difference_ids, pointwise_ids
    from deltapref.data.tokenization import TokenizationConfig
    from deltapref.scorer_kinds.inference import balanced_differences, pair_differences, pointwise_rewards

    torch.set_grad_enabled(False)
    if a.tokenizer == "gpt2":
        tokenizer = gpt2_tokenizer(Path(tempfile.mkdtemp()) / "tokenizer")
    else:
        from deltapref.data.synthetic import build_tokenizer

        tokenizer = build_tokenizer()
    pairs = hh_like(load_pairs(a.data, 100000), tokenizer, a.pairs) if a.hh_like else load_pairs(a.data, a.pairs)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=a.hidden,
        intermediate_size=4 * a.hidden,
        num_hidden_layers=a.layers,
        num_attention_heads=max(1, a.hidden // 64),
        num_key_value_heads=max(1, a.hidden // 64),
        max_position_embeddings=2048,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    tokenization = TokenizationConfig(a.max_length, a.max_length // 2)
    prompts, chosen, rejected = ([p[k] for p in pairs] for k in ("prompt", "chosen", "rejected"))
    pair_tokens = statistics.mean(
        len(difference_ids(tokenizer, p, c, r, tokenization)[0]) for p, c, r in zip(prompts, chosen, rejected)
    )
    point_tokens = statistics.mean(
        len(pointwise_ids(tokenizer, p, c, tokenization)[0]) + len(pointwise_ids(tokenizer, p, r, tokenization)[0])
        for p, c, r in zip(prompts, chosen, rejected)
    )
    print(
        f"data: {a.data}, {len(pairs)} pairs; tokens per pair: difference model {pair_tokens:.0f} (one pass), "
        f"reward model {point_tokens:.0f} (two passes)"
    )

    def pointwise():
        pointwise_rewards(model, tokenizer, prompts, chosen, tokenization, a.batch_size, progress=False)
        pointwise_rewards(model, tokenizer, prompts, rejected, tokenization, a.batch_size, progress=False)

    def pairwise():
        pair_differences(model, tokenizer, prompts, chosen, rejected, tokenization, a.batch_size, progress=False)

    def balanced():
        balanced_differences(model, tokenizer, prompts, chosen, rejected, tokenization, a.batch_size, progress=False)

    runs = {
        "reward model (2 passes)": pointwise,
        "difference, shown order (1 pass)": pairwise,
        "difference, balanced (2 passes)": balanced,
    }
    timings = {name: [] for name in runs}
    pointwise()  # warm-up
    for _ in range(a.repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            timings[name].append(len(pairs) / (time.perf_counter() - started))
    base = statistics.median(timings["reward model (2 passes)"])
    for name, rates in timings.items():
        print(f"{name:34s} pairs/s {summarize(rates)}  ratio vs reward model {statistics.median(rates) / base:.2f}x")


if __name__ == "__main__":
    main()
