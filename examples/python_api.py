"""deltapref from Python on the built-in gold-reward task (no downloads, ~1 min on 2 CPU cores):
make the task, train a reward model, score the training pairs into reward-difference
coefficients, then align a small policy with DPO weighted by them (DPO+rc).

    python examples/python_api.py [WORK_DIR]
"""

import sys
from pathlib import Path

import deltapref

work = Path(sys.argv[1] if len(sys.argv) > 1 else "deltapref-example")
task = deltapref.make_builtin_task(work / "task", n_train=256, n_test=64, overwrite=True)
shared = dict(tokenizer=str(task / "tokenizer"), max_length=128, max_prompt_length=32, disable_tqdm=True)

reward = deltapref.train_scorer(
    kind="reward",
    model="tiny:64:2",  # a small Llama built from scratch; any Hub or local model name works here
    train_data=str(task / "train.jsonl"),
    eval_data=str(task / "test.jsonl"),
    output_dir=str(work / "reward"),
    overwrite_output_dir=True,
    learning_rate=1e-3,
    num_train_epochs=2,
    **shared,
)
print(f"reward model: held-out accuracy {reward['eval']['accuracy']:.3f}")

scored = deltapref.score(
    input=str(task / "train.jsonl"),
    output=str(work / "train_scored.jsonl"),
    reward_model=str(work / "reward"),
    overwrite=True,
    max_length=128,
    max_prompt_length=32,
)
pairs, report = deltapref.load_preferences(str(scored))
first = pairs[0]
print(f"{report.kept} scored pairs; the first: rewards {first['reward_chosen']:.3f} vs {first['reward_rejected']:.3f}")
print(f"  its coefficient sigmoid(gap)^alpha = {first['coef']:.3f}")

summary = deltapref.align(
    model="tiny:64:2",
    train_data=str(scored),
    loss="dpo",
    coef="reward",  # DPO+rc: each pair's loss weighted by sigmoid(reward gap)^alpha
    alpha=1.0,
    output_dir=str(work / "dpo-rc"),
    overwrite_output_dir=True,
    max_steps=8,
    per_device_train_batch_size=16,
    **shared,
)
print(f"DPO+rc: {summary['steps']} steps, train loss {summary['train_loss']:.4f}; model card in {work / 'dpo-rc'}")
