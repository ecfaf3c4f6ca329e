"""Common random numbers in generation: how much they shrink the noise of a paired comparison.

Two pairs of policies of the built-in task complete the same held-out prompts at T = 0.7 —
DPO against DPO+rc (gold weights, α = 1: close policies, the study's kind of comparison) and
DPO against the SFT model it started from (far apart) — first with Hugging Face's seeded
stream (shared by the arms only as far as their batches coincide), then with each prompt's own
random numbers (`generate --paired_sampling true`). Printed: the share of prompts whose two completions coincide,
and the SD of the per-prompt gold-reward difference, whose mean is the comparison a
study makes; the ratio of the SDs is the noise left. One run, several sampling seeds.

    python benchmarks/paired_sampling.py [WORK_DIR]
"""

import json
import statistics
import sys
from pathlib import Path

import deltapref
from deltapref.data.synthetic import gold_reward

work = Path(sys.argv[1] if len(sys.argv) > 1 else "paired-sampling-bench")
task = deltapref.make_builtin_task(work / "task", n_train=1000, n_test=300, overwrite=True)
common = dict(tokenizer=str(task / "tokenizer"), max_length=96, max_prompt_length=32, disable_tqdm=True)
deltapref.sft(
    model="tiny:64:2",
    train_data=str(task / "train.jsonl"),
    output_dir=str(work / "sft"),
    num_train_epochs=2,
    overwrite_output_dir=True,
    **common,
)
for name, weights in (("dpo", {}), ("dpo-rc", {"coef": "gold"})):
    deltapref.align(
        model=str(work / "sft"),
        train_data=str(task / "train.jsonl"),
        loss="dpo",
        output_dir=str(work / name),
        overwrite_output_dir=True,
        seed=0,
        **weights,
        **common,
    )


def completions(policy: str, paired: bool, seed: int) -> list[dict]:
    out = deltapref.generate(
        model=str(work / policy),
        input=str(task / "test.jsonl"),
        seed=seed,
        output=str(work / f"{policy}-{paired}-{seed}.jsonl"),
        paired_sampling=paired,
        max_new_tokens=24,
        overwrite=True,
    )
    return [json.loads(line) for line in open(out)]


print(f"{'pair':<14} {'sampling':<26} {'seed':>4} {'identical':>9} {'SD of paired diff':>18} {'mean diff':>10}")
for first, second in (("dpo", "dpo-rc"), ("sft", "dpo")):
    ratios = []
    for seed in (0, 1, 2):
        sd = {}
        for paired in (False, True):
            a_rows, b_rows = completions(first, paired, seed), completions(second, paired, seed)
            same = sum(a["completion"] == b["completion"] for a, b in zip(a_rows, b_rows)) / len(a_rows)
            diffs = [
                gold_reward(b["prompt"], b["completion"]) - gold_reward(a["prompt"], a["completion"])
                for a, b in zip(a_rows, b_rows)
            ]
            sd[paired] = statistics.stdev(diffs)
            name = "per-prompt random numbers" if paired else "one stream per call"
            pair = f"{second}-{first}"
            print(f"{pair:<14} {name:<26} {seed:>4} {same:>9.0%} {sd[paired]:>18.3f} {statistics.mean(diffs):>10.3f}")
        ratios.append(sd[True] / sd[False])
    print(f"{second} - {first}: SD ratio (per-prompt / one stream), by seed: {', '.join(f'{r:.2f}' for r in ratios)}")
