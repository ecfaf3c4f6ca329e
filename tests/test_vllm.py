"""``generate --backend vllm`` writes what ``--backend hf`` writes under greedy decoding: on a tiny
policy trained here and on SmolLM2 (chat template, end-of-turn token). vLLM does not install
beside this project's test environment (vllm-cpu pins transformers < 5.20 and brings a torchvision
that breaks transformers' imports): scripts/vllm_check.sh builds its own environment and runs
this file there; elsewhere it is skipped, saying so.

Guards: policy/vllm_backend.py."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: scripts/vllm_check.sh runs these tests")

ENV = dict(os.environ, OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1")


def generate(model, prompts, output, backend, *extra):
    argv = [sys.executable, "-m", "deltapref.cli", "generate", "--model", model, "--input", prompts]
    argv += ["--output", str(output), "--temperature", "0", "--backend", backend, *extra]
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in output.read_text().splitlines()]


def assert_backends_agree(model, prompts, tmp_path, *extra):
    hf = generate(model, prompts, tmp_path / "hf.jsonl", "hf", *extra)
    vllm = generate(model, prompts, tmp_path / "vllm.jsonl", "vllm", *extra)
    assert [r["completion"] for r in hf] == [r["completion"] for r in vllm]
    assert [r.get("id") for r in hf] == [r.get("id") for r in vllm]
    assert any(r["completion"] for r in hf)
    return hf


def test_greedy_completions_agree_on_a_tiny_policy(builtin_task, tmp_path):
    from deltapref.cli import main

    argv = ["sft", "--model", "tiny:64:2", "--tokenizer", str(builtin_task / "tokenizer")]
    argv += ["--train_data", str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path / "sft")]
    assert main(argv + ["--max_steps", "30", "--learning_rate", "3e-3", "--disable_tqdm", "true"]) == 0
    rows = assert_backends_agree(
        str(tmp_path / "sft"), str(builtin_task / "test.jsonl"), tmp_path, "--limit", "24", "--max_new_tokens", "16"
    )
    assert len(rows) == 24


def test_greedy_completions_agree_on_smollm2_chat(tmp_path):
    """HH transcripts as chat messages through SmolLM2's template; both stop at <|im_end|>."""
    from deltapref.models.names import resolve

    prompts = tmp_path / "hh.jsonl"
    topics = ["bake bread", "tie a tie", "boil an egg", "plant a tree"]
    rows = [{"chosen": f"\n\nHuman: How do I {t}?\n\nAssistant: Step by step.", "rejected": "..."} for t in topics]
    rows = [dict(r, rejected=r["chosen"].rsplit(" Step", 1)[0] + " No.") for r in rows]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert_backends_agree(resolve("smollm2"), str(prompts), tmp_path, "--format", "hh-chat", "--max_new_tokens", "24")
