"""Score pairs with deltapref, train with TRL: DPO+rc inside TRL's DPOTrainer on the built-in
task (no downloads, ~1 min on 2 CPU cores; needs `pip install 'deltapref[trl]'`).

    python examples/trl_weighted_dpo.py [WORK_DIR]
"""

import sys
from pathlib import Path

from datasets import Dataset
from trl import DPOConfig

import deltapref
from deltapref.integrations.trl import WeightedDPOTrainer
from deltapref.models import load_causal_lm, load_tokenizer

work = Path(sys.argv[1] if len(sys.argv) > 1 else "deltapref-trl-example")
task = deltapref.make_builtin_task(work / "task", n_train=256, n_test=64, overwrite=True)
tokens = dict(tokenizer=str(task / "tokenizer"), max_length=128, max_prompt_length=32)
deltapref.train_scorer(
    kind="reward",
    model="tiny:64:2",
    train_data=str(task / "train.jsonl"),
    output_dir=str(work / "reward"),
    overwrite_output_dir=True,
    learning_rate=1e-3,
    num_train_epochs=2,
    disable_tqdm=True,
    **tokens,
)
scored = deltapref.score(
    input=str(task / "train.jsonl"),
    output=str(work / "scored.jsonl"),
    reward_model=str(work / "reward"),
    alpha=1.0,
    overwrite=True,
    **{k: v for k, v in tokens.items() if k != "tokenizer"},
)

# --- the ten lines: deltapref's `coef` column (sigmoid(reward gap)^alpha) weights TRL's DPO loss
pairs, _ = deltapref.load_preferences(str(scored))
tokenizer = load_tokenizer(str(task / "tokenizer"))
policy, reference = (load_causal_lm("tiny:64:2", tokenizer, seed=0) for _ in range(2))
args = DPOConfig(
    output_dir=str(work / "policy"),
    max_steps=8,
    per_device_train_batch_size=16,
    learning_rate=5e-4,
    beta=0.1,
    max_length=128,
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
)
# TRL joins prompt + response with no separator: the built-in task's responses start with the space
rows = [{k: r[k] for k in ("prompt", "chosen", "rejected", "coef")} for r in pairs]
trainer = WeightedDPOTrainer(
    model=policy,
    ref_model=reference,
    args=args,
    processing_class=tokenizer,
    train_dataset=Dataset.from_list(rows),
)
result = trainer.train()
print(f"TRL DPO+rc: {result.global_step} steps, train loss {result.training_loss:.4f}")
