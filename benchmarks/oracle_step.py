"""DRDO's oracle: a training step (Bradley–Terry on the reward head + the LM term on the chosen
response) and a scoring pass, as deltapref runs them — the LM head projects only the chosen
responses' tokens in training and no position at all in scoring — against the same loss and
rewards read from the model's full logits (what a plain forward computes), in one process on
the same batches, interleaved, on SmolLM2-135M with LoRA r=16 at the HH recipe's lengths.

    python benchmarks/oracle_step.py --data hh-rlhf/harmless-base-test.jsonl.gz --model smollm2

Prints seconds per step (median of ``--repeats``, min–max), the ratio, and the largest loss and
reward differences between the two computations (float noise only).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import benchmark_parser, load_pairs  # noqa: E402


def batches(a):
    import datasets

    from deltapref.config.commands import TokenizationConfig
    from deltapref.models.loading import load_causal_lm, load_tokenizer
    from deltapref.objectives import SCORER_OBJECTIVES, ScorerLossOptions
    from deltapref.scorers.trainer import ScorerCollator, prepare_scorer_dataset
    from deltapref.training.lora import LoraOptions, apply_lora

    tokenizer = load_tokenizer(a.model)
    model = load_causal_lm(a.model, tokenizer, reward_head=True)
    if a.lora_r:
        model = apply_lora(model, LoraOptions(lora_r=a.lora_r), "CAUSAL_LM", modules_to_save=["reward_head"], seed=0)
    oracle, options = SCORER_OBJECTIVES["oracle"], ScorerLossOptions()
    pairs = datasets.Dataset.from_list(load_pairs(a.data, a.batch_size * a.steps))
    config = TokenizationConfig(a.max_length, a.max_length // 2)
    rows = list(prepare_scorer_dataset(pairs, tokenizer, oracle, config))
    collate = ScorerCollator(tokenizer.pad_token_id, oracle, options)
    return model, oracle, options, [collate(rows[i : i + a.batch_size]) for i in range(0, len(rows), a.batch_size)]


def full_logits(model, batch, options):
    """The oracle's loss and rewards from the whole (B, T, V) logits tensor."""
    from deltapref import losses as L
    from deltapref.forward.logprobs import sequence_logps
    from deltapref.models.loading import last_token_rewards

    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    n = batch["input_ids"].shape[0] // 2  # chosen rows, then rejected
    logp_sum, count = sequence_logps(out.logits[:n], batch["input_ids"][:n], batch["response_mask"][:n])
    rewards = last_token_rewards(model, out.hidden_states[-1], batch["attention_mask"])
    loss = L.oracle_loss(rewards[:n], rewards[n:], logp_sum / count.clamp(min=1), options.oracle_lm_weight)
    return loss.mean(), rewards


def main() -> None:
    parser = benchmark_parser(__doc__, batch_size=8, max_length=256)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="batches per timed repeat")
    a = parser.parse_args()
    from deltapref.models.loading import head_rewards

    model, oracle, options, data = batches(a)

    def deltapref_step(batch):
        return oracle.compute(oracle.forward(model, batch), batch, options)[0]

    def plain_step(batch):
        return full_logits(model, batch, options)[0]

    def train(step) -> float:
        started = time.perf_counter()
        for batch in data:
            model.zero_grad()
            step(batch).backward()
        return (time.perf_counter() - started) / len(data)

    def score(read) -> float:
        started = time.perf_counter()
        with torch.no_grad():
            for batch in data:
                read(batch)
        return (time.perf_counter() - started) / len(data)

    def rewards(batch):
        return head_rewards(model, batch["input_ids"], batch["attention_mask"])

    with torch.no_grad():
        loss_gap = max(abs(float(deltapref_step(b) - plain_step(b))) for b in data)
        reward_gap = max(float((rewards(b) - full_logits(model, b, options)[1]).abs().max()) for b in data)
    times = {"train, deltapref": [], "train, full logits": [], "score, deltapref": [], "score, full logits": []}
    for repeat in range(a.repeats):  # alternate which runs first
        runs = [("deltapref", deltapref_step), ("full logits", plain_step)]
        for name, step in runs if repeat % 2 == 0 else runs[::-1]:
            times[f"train, {name}"].append(train(step))
        reads = [
            ("deltapref", rewards),
            ("full logits", lambda b: full_logits(model, b, options)[1]),
        ]
        for name, read in reads if repeat % 2 == 0 else reads[::-1]:
            times[f"score, {name}"].append(score(read))
    tokens = sum(int(b["attention_mask"].sum()) for b in data) / len(data)
    threads = torch.get_num_threads()
    print(f"{a.model}, LoRA r={a.lora_r}, batch {a.batch_size} pairs ({tokens:.0f} tokens), {threads} threads")
    print("| pass | s/batch, median (min–max) | speed vs full logits |")
    print("|---|---|---|")
    for key, values in times.items():
        kind = key.split(",")[0]
        ratio = statistics.median(times[f"{kind}, full logits"]) / statistics.median(times[f"{kind}, deltapref"])
        cell = f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
        print(f"| {key} | {cell} | {ratio:.2f}× |" if "deltapref" in key else f"| {key} | {cell} | 1.00× |")
    print(f"largest |loss difference| {loss_gap:.2e}, largest |reward difference| {reward_gap:.2e}")


if __name__ == "__main__":
    main()
