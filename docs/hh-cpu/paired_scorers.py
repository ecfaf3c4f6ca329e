"""Paired accuracy of the reward and the difference model on the same held-out pairs.

Input: a file `deltapref score` wrote with both models (columns reward_chosen, reward_rejected and
the order-balanced diff). Prints each accuracy, their paired difference (difference − reward)
with a 95% normal interval over pairs, and the discordant counts. Run from the recipe's output:

    deltapref score --input run/parts/test.jsonl --output scored_test.jsonl --reward_model run/reward \
        --difference_model run/difference --max_length 256 --max_prompt_length 128
    python docs/hh-cpu/paired_scorers.py scored_test.jsonl
"""

import json
import math
import sys


def correct(margin: float) -> float:
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def main(path: str) -> dict:
    rows = [json.loads(line) for line in open(path)]
    reward = [correct(r["reward_chosen"] - r["reward_rejected"]) for r in rows]
    difference = [correct(r["diff"]) for r in rows]
    gaps = [d - r for d, r in zip(difference, reward)]
    n = len(rows)
    mean = sum(gaps) / n
    half = 1.96 * math.sqrt(sum((g - mean) ** 2 for g in gaps) / (n - 1) / n)
    return {
        "pairs": n,
        "reward_accuracy": sum(reward) / n,
        "difference_accuracy": sum(difference) / n,
        "difference_minus_reward": mean,
        "ci95": [mean - half, mean + half],
        "only_difference_right": sum(d == 1 and r == 0 for d, r in zip(difference, reward)),
        "only_reward_right": sum(d == 0 and r == 1 for d, r in zip(difference, reward)),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))
