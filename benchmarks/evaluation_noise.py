"""How much of a paired comparison's seed-to-seed noise is evaluation sampling, and how much
several samples per prompt remove: a nested design, training seed x evaluation sample.

For each training seed s (a fresh draw of the built-in task at T = 0.5, 1000 pairs, 200
held-out prompts, as the claims study's full profile): SFT, then DPO and DPO+rc (gold weights,
α = 1, the study's "bound") from it; each policy completes the held-out prompts K times
(``generate --num_samples K``: sample j uses seed j, the same for both arms). d[s, j] is the
mean over prompts of gold(DPO+rc) − gold(DPO) for sample j. With K samples a seed's estimate
is D_s(K) = mean_j d[s, j], and

    Var_s D_s(K) = σ²_train + σ²_eval / K,

σ²_eval estimated from the spread of d[s, ·] within seeds, σ²_train from the rest. Printed: both
components, the paired SD at K = 1 and K = 4 (measured and from the components), and the seeds
a SESOI of 0.05 would need at each (80% power, two-sided 5%).

    python benchmarks/evaluation_noise.py [WORK_DIR] [SEEDS] [K]
"""

import json
import statistics
import sys
from pathlib import Path

import deltapref
from deltapref.data.synthetic import gold_reward
from deltapref.study.verdicts import SESOI, seeds_needed

work = Path(sys.argv[1] if len(sys.argv) > 1 else "evaluation-noise-bench")
seeds = range(int(sys.argv[2]) if len(sys.argv) > 2 else 4)
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 4


def train(seed: int) -> Path:
    here = work / f"seed-{seed}"
    task = deltapref.make_builtin_task(here / "task", seed=seed, n_train=1000, n_test=200, overwrite=True)
    common = dict(tokenizer=str(task / "tokenizer"), max_length=128, max_prompt_length=32, disable_tqdm=True, seed=seed)
    sft = dict(model="tiny:64:2", train_data=str(task / "train.jsonl"), num_train_epochs=4, learning_rate=2e-3)
    deltapref.sft(output_dir=str(here / "sft"), overwrite_output_dir=True, **sft, **common)
    for name, weights in (("dpo", {}), ("dpo-rc", {"coef": "gold", "coef_temperature": 0.5})):
        deltapref.align(model=str(here / "sft"), train_data=str(task / "train.jsonl"), loss="dpo", beta=0.1,
                        learning_rate=5e-4, output_dir=str(here / name), overwrite_output_dir=True,
                        **weights, **common)  # fmt: skip
    return here


def sample_means(here: Path) -> list[float]:
    """d[s, j]: per sample j, the mean paired gold-reward difference DPO+rc − DPO over prompts."""
    rows = {}
    for name in ("dpo", "dpo-rc"):
        out = deltapref.generate(model=str(here / name), input=str(here / "task" / "test.jsonl"),
                                 output=str(here / f"{name}-completions.jsonl"), num_samples=samples,
                                 temperature=0.7, max_new_tokens=24, batch_size=64, overwrite=True)  # fmt: skip
        rows[name] = [json.loads(line) for line in open(out)]
    by_sample = [[] for _ in range(samples)]
    for a, b in zip(rows["dpo"], rows["dpo-rc"], strict=True):
        assert (a["sample"], a["prompt"]) == (b["sample"], b["prompt"])
        by_sample[a["sample"]].append(
            gold_reward(b["prompt"], b["completion"]) - gold_reward(a["prompt"], a["completion"])
        )
    return [statistics.mean(values) for values in by_sample]


d = {seed: sample_means(train(seed)) for seed in seeds}
within = statistics.mean(statistics.variance(values) for values in d.values())  # σ²_eval
one = [values[0] for values in d.values()]
every = [statistics.mean(values) for values in d.values()]
train_var = max(0.0, statistics.variance(every) - within / samples)
print(f"{len(d)} training seeds x {samples} evaluation samples (DPO+rc(gold) − DPO, gold reward, 200 prompts)")
for seed, values in d.items():
    print(f"seed {seed}: d[s, j] = {', '.join(f'{v:+.3f}' for v in values)}")
print(f"σ_eval (one sample of 200 prompts) {within**0.5:.3f}; σ_train {train_var**0.5:.3f}")
for k, measured in ((1, statistics.stdev(one)), (samples, statistics.stdev(every))):
    modelled = (train_var + within / k) ** 0.5
    need = seeds_needed(modelled, SESOI["gold reward"])
    print(f"K = {k}: paired SD measured {measured:.3f}, from the components {modelled:.3f}; seeds for +0.05: {need}")
