"""Training steps with the batch run in groups of similar length (each cut to its longest;
deltapref's forward) against one padded pass of the whole batch, in one process on the same
batches, interleaved: the reward and difference models on MiniLM at the HH recipe's lengths
(reward model: 2 sequences per pair at 256 tokens; difference model: forward, reverse and
duplicate sequences per pair, contrast readout, 256 tokens), and with ``--policy`` DPO's policy
forward on SmolLM2-135M with LoRA r=16 (shared-prefix rows: prompt, chosen, rejected).

    python benchmarks/length_groups.py --data hh-rlhf/harmless-base-test.jsonl.gz --pairs 64
    python benchmarks/length_groups.py --data hh-rlhf/harmless-base-test.jsonl.gz --pairs 16 --policy

Prints seconds per step (forward + backward; median of ``--repeats``, min–max) for one padded
pass and for each per-group cost tried (``--costs``, in padded tokens), the ratio, and the
largest loss difference to the padded pass with dropout off (float noise only).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import benchmark_parser, load_pairs  # noqa: E402

ONE_PASS = 10**9  # a group cost no split can pay for


def batches(a, kind: str, tokenizer, model):
    import datasets

    from deltapref.objectives import SCORER_OBJECTIVES
    from deltapref.scorers.trainer import ScorerCollator, prepare_scorer_dataset
    from deltapref.stages.train_scorer import TrainScorerConfig

    objective = SCORER_OBJECTIVES[kind]
    options = TrainScorerConfig(
        kind=kind, model=a.model, train_data=a.data, max_length=a.max_length, max_prompt_length=a.max_length // 2
    )
    options = objective.resolved(replace(options, difference_max_length=a.max_length), tokenizer, model.config)
    pairs = datasets.Dataset.from_list(load_pairs(a.data, a.pairs))
    rows = list(prepare_scorer_dataset(pairs, tokenizer, objective, objective.tokenization(options)))
    collate = ScorerCollator(tokenizer.pad_token_id, objective, options)
    return objective, options, [collate(rows[i : i + a.batch_size]) for i in range(0, len(rows), a.batch_size)]


def policy_batches(a, tokenizer):
    """DPO's policy batches: shared-prefix rows of (prompt, chosen, rejected)."""
    from deltapref.config.commands import TokenizationConfig
    from deltapref.data.tokenization import encode_pair
    from deltapref.forward.batching import response_batch

    config = TokenizationConfig(a.max_length, a.max_length // 2)
    rows = [encode_pair(tokenizer, pair, config) for pair in load_pairs(a.data, a.pairs)]
    return [
        response_batch(
            [r["prompt_ids"] for r in chunk],
            [[r["chosen_ids"], r["rejected_ids"]] for r in chunk],
            tokenizer.pad_token_id,
        )
        for chunk in (rows[i : i + a.batch_size] for i in range(0, len(rows), a.batch_size))
    ]


def time_kind(a, kind: str, tokenizer, model, costs: list[int]) -> None:
    """Print one kind's rows of the table."""
    import deltapref.forward.length_groups as grouping
    from deltapref.forward.logprobs import batch_logps

    if kind == "policy":
        data = policy_batches(a, tokenizer)

        def loss(batch):
            return batch_logps(model, batch)[0].sum()

        def lengths(batch):
            return batch["row_lengths"].tolist()
    else:
        objective, options, data = batches(a, kind, tokenizer, model)

        def loss(batch):
            return objective.compute(objective.forward(model, batch), batch, options)[0]

        def lengths(batch):
            return batch["attention_mask"].sum(1).tolist()

    def step(batch, cost):
        grouping.GROUP_COST_TOKENS = cost  # the forward's default, read at call time
        return loss(batch)

    def train(cost) -> float:
        started = time.perf_counter()
        for batch in data:
            model.zero_grad()
            step(batch, cost).backward()
        return (time.perf_counter() - started) / len(data)

    def padded_tokens(cost) -> float:
        total = 0
        for batch in data:
            widths = lengths(batch)
            total += sum(len(g) * max(widths[i] for i in g) for g in grouping.length_groups(widths, cost))
        return total / len(data)

    model.eval()  # without dropout both compute the same function of the weights
    with torch.no_grad():
        gap = max(abs(float(step(b, c) - step(b, ONE_PASS))) for b in data for c in costs[1:])
    model.train()
    times = {c: [] for c in costs}
    for repeat in range(a.repeats):
        for cost in costs if repeat % 2 == 0 else costs[::-1]:
            times[cost].append(train(cost))
    base = statistics.median(times[ONE_PASS])
    for cost, values in times.items():
        name = "one padded pass" if cost == ONE_PASS else str(cost)
        cell = f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
        print(f"| {kind} | {name} | {cell} | {base / statistics.median(values):.2f}× | {padded_tokens(cost):.0f} |")
    print(f"| {kind} | largest loss difference to one pass: {gap:.1e} | | | |")


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=8, max_length=256)
    parser.add_argument("--model", default=None, help="default: minilm for the scorers, smollm2 with --policy")
    parser.add_argument("--policy", action="store_true", help="time DPO's policy forward (LoRA r=16) instead")
    parser.add_argument("--costs", default="0,32,128", help="per-group costs to time, comma list")
    a = parser.parse_args()
    from deltapref.models.loading import load_causal_lm, load_sequence_scorer, load_tokenizer
    from deltapref.training.lora import LoraOptions, apply_lora

    name = a.model or ("smollm2" if a.policy else "minilm")
    tokenizer = load_tokenizer(name)
    if a.policy:
        model = apply_lora(load_causal_lm(name, tokenizer), LoraOptions(lora_r=16), "CAUSAL_LM", seed=0).train()
    else:
        model = load_sequence_scorer(name, tokenizer).train()
    costs = [ONE_PASS] + [int(c) for c in a.costs.split(",")]
    threads = torch.get_num_threads()
    print(f"{name}, batch {a.batch_size} pairs, {a.pairs} pairs, {a.max_length} tokens, {threads} threads")
    print("| forward | per-group cost | s/step, median (min–max) | speed vs one padded pass | padded tokens / step |")
    print("|---|---|---|---|---|")
    for kind in ("policy",) if a.policy else ("reward", "difference"):
        time_kind(a, kind, tokenizer, model, costs)


if __name__ == "__main__":
    main()
