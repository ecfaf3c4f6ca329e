"""The real SmolLM2-135M-Instruct end to end on a CPU: LoRA SFT and DPO steps on HH transcripts
as chat messages, then a generation that ends at the model's end-of-turn token.

Guards: models/names.py, training/arguments.py, training/lora.py, training/card.py."""

import json
import math
import shlex

from transformers import AutoModelForCausalLM, AutoTokenizer

from deltapref.cli import main
from deltapref.data.loading import load_preferences
from deltapref.models.loading import load_tokenizer
from deltapref.training.card import read_card_metadata

TOPICS = [
    "bake bread",
    "tie a tie",
    "boil an egg",
    "plant a tree",
    "fix a tire",
    "learn chess",
    "make tea",
    "sleep well",
]


def hh_rows() -> list[dict]:
    rows = []
    for topic in TOPICS:
        prompt = f"\n\nHuman: How do I {topic}?\n\nAssistant:"
        rows.append(
            {
                "chosen": prompt + f" Here are simple steps to {topic}: start small and practice.",
                "rejected": prompt + " I don't know.",
            }
        )
    return rows


def test_smollm2_lora_sft_dpo_and_generation(tmp_path):
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in hh_rows()))
    common = shlex.split(
        f"--train_data {data} --format hh-chat --lora_r 16 --max_steps 1 --logging_steps 1 "
        "--per_device_train_batch_size 2 --max_length 64 --max_prompt_length 32 --disable_tqdm true"
    )
    assert main(["sft", "--model", "smollm2", "--output_dir", str(tmp_path / "sft"), *common]) == 0
    assert (
        main(
            ["align", "--model", str(tmp_path / "sft"), "--loss", "dpo", "--output_dir", str(tmp_path / "dpo"), *common]
        )
        == 0
    )
    summary = json.loads((tmp_path / "dpo" / "train_summary.json").read_text())
    first = next(e["loss"] for e in summary["log_history"] if "loss" in e)
    assert abs(first - 0.6931) < 0.05  # policy = reference at the first step
    tokenizer = load_tokenizer(str(tmp_path / "dpo"))
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"  # the real template survived training
    out = tmp_path / "completions.jsonl"
    argv = f"generate --model {tmp_path / 'dpo'} --input {data} --format hh-chat --output {out} --limit 2"
    assert main([*shlex.split(argv), "--max_new_tokens", "24", "--temperature", "0"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["completion"] and "Human:" not in r["completion"] for r in rows)
    pairs, _ = load_preferences(str(data), format="hh-chat", limit=1)
    assert _plain_transformers_completion(tmp_path / "dpo", pairs[0]["prompt"]).startswith(rows[0]["completion"])
    assert read_card_metadata(tmp_path / "dpo")["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # via sft


def _plain_transformers_completion(directory, messages) -> str:
    """Greedy completion by plain `transformers` with the saved chat template."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForCausalLM.from_pretrained(str(directory)).eval()
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    generated = model.generate(**encoded, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(generated[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_default_learning_rate_follows_how_the_model_starts(builtin_task):
    """No --learning_rate: 5e-4 for the built-in task's from-scratch models (and models trained
    from them), 5e-6 for a pretrained model in full, 5e-5 for its LoRA adapter; a given rate wins."""
    from types import SimpleNamespace

    from transformers import TrainingArguments

    from deltapref.models.loading import load_tokenizer, tiny_config
    from deltapref.training.arguments import FROM_SCRATCH, resolve_learning_rate

    def rate(config, lora, given=None):
        args = TrainingArguments(output_dir="x", learning_rate=given, report_to="none", use_cpu=True)
        resolve_learning_rate(args, config, lora)
        return args.learning_rate

    tiny = tiny_config(load_tokenizer(str(builtin_task / "tokenizer")))
    assert getattr(tiny, FROM_SCRATCH) and rate(tiny, False) == 5e-4 == rate(tiny, True)
    pretrained = SimpleNamespace()
    assert rate(pretrained, False) == 5e-6 and rate(pretrained, True) == 5e-5 and rate(pretrained, False, 1e-3) == 1e-3


def test_align_on_smollm2_without_tuning_flags_stays_near_its_start(tmp_path):
    """A real pretrained model, full fine-tune and LoRA, no --learning_rate or --beta: finite losses and
    log-probs that move a few nats, against tens under the from-scratch rate 5e-4 (the old default;
    measured: 3.3 vs 72 nats after 3 steps on these pairs)."""
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in hh_rows()))

    def drift(name, *extra):
        argv = shlex.split(
            f"align --model smollm2 --train_data {data} --format hh-chat --output_dir {tmp_path / name} "
            "--max_steps 3 --logging_steps 1 --per_device_train_batch_size 2 --max_length 64 "
            "--max_prompt_length 32 --disable_tqdm true"
        )
        assert main(argv + list(extra)) == 0
        summary = json.loads((tmp_path / name / "train_summary.json").read_text())
        steps = [e for e in summary["log_history"] if "loss" in e]
        assert len(steps) == 3 and all(math.isfinite(e["loss"]) for e in steps)
        beta = summary["options"]["beta"]  # rewards are β(log π − log π_ref): divided by β, nats per response
        return max(abs(e[key]) / beta for e in steps for key in ("rewards/chosen", "rewards/rejected"))

    default, scratch_rate = drift("default"), drift("scratch-rate", "--learning_rate", "5e-4")
    assert default < 10 and default < scratch_rate / 5, (default, scratch_rate)
    assert drift("lora", "--lora_r", "16") < 10  # LoRA's default rate (5e-5) stays near the start too
