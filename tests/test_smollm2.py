"""The real SmolLM2-135M-Instruct end to end on a CPU: LoRA SFT and DPO steps on HH transcripts
as chat messages, then a generation that ends at the model's end-of-turn token."""

import json
import shlex

from deltapref.cli import main
from deltapref.models import load_tokenizer

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
