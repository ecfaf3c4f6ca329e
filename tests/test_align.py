"""Policy training end to end: every loss trains, reloads and generates; α = 0 is the unweighted
method; resume; LoRA; shared prefixes and packing give the same log-probs; RRHF's lists; the
LM head on scored positions.

Guards: policy/run.py, policy/trainer.py, policy/data.py, forward/logprobs.py, forward/batching.py,
stages/align.py, training/shared.py."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import tiny_gemma2, tiny_training_args
from deltapref.cli import main
from deltapref.data.schema import DataError
from deltapref.models.provenance import meta_path
from deltapref.stages.align import AlignConfig, train_aligned

CASES = [
    ("dpo", None),
    ("dpo", "difference"),
    ("dpo", "reward"),
    ("ipo", None),
    ("kto", None),
    ("kto", "diff"),
    ("edpo", None),
    ("drdo", None),
    ("rrhf", None),
    ("rrhf", "scores"),
]


def run(scored_task, tmp_path, loss, coef=None, name="policy", **args):
    data = scored_task["ranked"] if loss == "rrhf" else scored_task["data"]
    config = AlignConfig(
        model=scored_task["sft"],
        train_data=data,
        loss=loss,
        coef=coef,
        **{k: v for k, v in args.items() if k in AlignConfig.__dataclass_fields__},
    )
    training = {k: v for k, v in args.items() if k not in AlignConfig.__dataclass_fields__}
    training.setdefault("max_steps", 24)
    training.setdefault("learning_rate", 5e-4)
    training.setdefault("lr_scheduler_type", "constant")
    return train_aligned(config, tiny_training_args(tmp_path / name, **training))


@pytest.mark.parametrize("loss, coef", CASES)
def test_every_loss_trains_reloads_and_generates(scored_task, tmp_path, loss, coef):
    summary = run(scored_task, tmp_path, loss, coef, logging_steps=4)
    curve = [e["loss"] for e in summary["log_history"] if "loss" in e]
    assert len(curve) == 6 and curve[-1] < curve[0], curve
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "policy"))
    generated = model.generate(
        torch.tensor([[2, 10, 11]]), max_new_tokens=5, do_sample=False, pad_token_id=0, eos_token_id=3
    )
    assert generated[0, :3].tolist() == [2, 10, 11] and 4 <= generated.shape[1] <= 8
    if coef:
        logged = [e for e in summary["log_history"] if "weights/mean" in e]
        assert logged and all(e["weights/mean"] == e["coef_mean"] for e in logged)  # TRL-style name, old alias


def test_alpha_zero_equals_plain_method_exactly(scored_task, tmp_path):
    for loss in ("dpo", "kto"):
        run(scored_task, tmp_path, loss, None, name=f"{loss}-plain", max_steps=4)
        run(scored_task, tmp_path, loss, "diff", name=f"{loss}-alpha0", alpha=0.0, max_steps=4)
        plain = load_file(str(tmp_path / f"{loss}-plain" / "model.safetensors"))
        weighted = load_file(str(tmp_path / f"{loss}-alpha0" / "model.safetensors"))
        assert all(torch.equal(plain[k], weighted[k]) for k in plain)
    run(scored_task, tmp_path, "dpo", "diff", name="alpha1", alpha=1.0, max_steps=4)
    changed = load_file(str(tmp_path / "alpha1" / "model.safetensors"))
    assert not all(torch.equal(plain[k], changed[k]) for k in plain)


def test_resume_reaches_the_same_weights(scored_task, tmp_path):
    common = dict(max_steps=8, save_strategy="steps", save_steps=4, data_seed=0)
    run(scored_task, tmp_path, "dpo", "reward", name="straight", **common)
    run(
        scored_task,
        tmp_path,
        "dpo",
        "reward",
        name="resumed",
        resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-4"),
        **common,
    )
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_reference_columns_from_another_model_are_refused(scored_task, tmp_path):
    rows = [json.loads(line) for line in open(scored_task["data"])]
    for row in rows:
        row.update(ref_logp_chosen=-1.0, ref_logp_rejected=-2.0)
    path = tmp_path / "with_ref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta_path(path).write_text(json.dumps({"columns": {"ref_logp_chosen": {"model": {"path": "/somewhere/else"}}}}))
    with pytest.raises(DataError, match="weights differ .recorded /somewhere/else"):
        train_aligned(
            AlignConfig(model=scored_task["sft"], train_data=str(path), loss="dpo"),
            tiny_training_args(tmp_path / "x", max_steps=1),
        )


def test_missing_columns_are_named(scored_task, builtin_task, tmp_path):
    with pytest.raises(DataError, match="needs column.*oracle_reward_chosen"):
        train_aligned(
            AlignConfig(model=scored_task["sft"], train_data=str(builtin_task / "train.jsonl"), loss="drdo"),
            tiny_training_args(tmp_path / "x", max_steps=1),
        )


def test_cli_align_and_generate(scored_task, tmp_path, capsys):
    assert (
        main(
            [
                "align",
                "--model",
                scored_task["sft"],
                "--train_data",
                scored_task["data"],
                "--loss",
                "dpo",
                "--coef",
                "diff",
                "--alpha",
                "0.5",
                "--output_dir",
                str(tmp_path / "p"),
                "--max_steps",
                "3",
                "--disable_tqdm",
                "true",
            ]
        )
        == 0
    )
    assert "dpo +rc(diff)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "p" / "train_summary.json").read_text())
    assert summary["options"]["alpha"] == 0.5 and summary["peak_rss_mb"] > 0
    assert (
        main(
            [
                "generate",
                "--model",
                str(tmp_path / "p"),
                "--input",
                scored_task["test"],
                "--output",
                str(tmp_path / "gen.jsonl"),
                "--limit",
                "5",
                "--num_samples",
                "2",
                "--max_new_tokens",
                "8",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "gen.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(r["completion"] is not None and r["prompt"] for r in rows)


def test_lora_trains_and_saves_merged(scored_task, tmp_path):
    summary = run(scored_task, tmp_path, "dpo", None, name="lora", lora_r=4, max_steps=6)
    assert summary["steps"] == 6
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "lora"))
    assert not any("lora" in name for name in merged.state_dict())


@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("with_kl, ranked", [(False, False), (True, False), (False, True)])
def test_prefix_sharing_gives_the_same_logps(scored_task, with_kl, ranked, pack):
    import datasets

    from deltapref.config.commands import TokenizationConfig
    from deltapref.forward.logprobs import batch_logps
    from deltapref.models.loading import load_causal_lm, load_tokenizer
    from deltapref.policy.data import PolicyCollator, tokenize_pairs, tokenize_ranked

    tokenizer = load_tokenizer(scored_task["sft"])
    model = load_causal_lm(scored_task["sft"]).eval()
    source = scored_task["ranked"] if ranked else scored_task["data"]
    rows = datasets.Dataset.from_json(source).select(range(12))
    config = TokenizationConfig(96, 24)
    data = tokenize_ranked(rows, tokenizer, config) if ranked else tokenize_pairs(rows, tokenizer, config, with_kl)
    batch = [data[i] for i in range(12)]
    blocks = ("chosen", "rejected", "kl") if with_kl else ("chosen", "rejected")
    with torch.no_grad():
        shared = batch_logps(model, PolicyCollator(0, blocks, ranked=ranked, share_prefix=True, pack=pack)(batch))
        plain = batch_logps(model, PolicyCollator(0, blocks, ranked=ranked, share_prefix=False)(batch))
    assert (shared[0] - plain[0]).abs().max() < 1e-5, (shared[0] - plain[0]).abs().max()
    assert torch.equal(shared[1], plain[1])


def test_prefix_sharing_and_packing_train_like_unshared(scored_task, tmp_path):
    curves = []
    for share, pack in ((False, False), (True, False), (True, True), (False, True)):
        summary = run(
            scored_task,
            tmp_path,
            "dpo",
            "diff",
            name=f"share{share}-pack{pack}",
            share_prefix=share,
            pack=pack,
            max_steps=6,
            logging_steps=2,
        )
        curves.append([e["loss"] for e in summary["log_history"] if "loss" in e])
    for curve in curves[1:]:
        assert curve == pytest.approx(curves[0], rel=1e-4)


@pytest.mark.parametrize("share", [True, False])
def test_rrhf_pairs_each_prompt_with_its_own_responses(scored_task, tmp_path, share):
    """The trainer's RRHF loss equals rrhf_loss on log-probs computed one response at a time."""
    import datasets
    from transformers import TrainingArguments

    from deltapref.config.commands import TokenizationConfig
    from deltapref.forward.batching import join_prompt_responses
    from deltapref.forward.logprobs import batch_logps
    from deltapref.losses import rrhf_loss
    from deltapref.models.loading import load_causal_lm, load_tokenizer
    from deltapref.objectives import PolicyLossOptions
    from deltapref.policy.data import PolicyCollator, tokenize_ranked
    from deltapref.policy.trainer import AlignTrainer

    tokenizer = load_tokenizer(scored_task["sft"])
    model = load_causal_lm(scored_task["sft"]).eval()
    rows = tokenize_ranked(
        datasets.Dataset.from_json(scored_task["ranked"]).select(range(5)), tokenizer, TokenizationConfig(96, 24)
    )
    batch = PolicyCollator(0, ranked=True, share_prefix=share)([rows[i] for i in range(5)])
    trainer = AlignTrainer(
        model=model,
        options=PolicyLossOptions(loss="rrhf"),
        data_collator=lambda x: x,
        args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, remove_unused_columns=False),
    )
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch).item()
        means = torch.tensor(
            [
                [
                    (lambda s, c: (s / c).item())(
                        *batch_logps(model, join_prompt_responses([r["prompt_ids"]], [resp], 0))
                    )
                    for resp in r["responses_ids"]
                ]
                for r in (rows[i] for i in range(5))
            ]
        )
    scores = torch.tensor([rows[i]["scores"] for i in range(5)])
    best = -means[torch.arange(5), scores.argmax(dim=1)]
    expected = rrhf_loss(means, scores, torch.ones_like(means, dtype=torch.bool), best)[0].mean().item()
    assert loss == pytest.approx(expected, rel=1e-4)


def test_align_applies_disable_dropout(scored_task, tmp_path, monkeypatch):
    import deltapref.training.shared as training_run

    seen = []
    monkeypatch.setattr(training_run, "disable_dropout", lambda model: seen.append(type(model).__name__))
    run(scored_task, tmp_path, "dpo", name="kept", max_steps=1)
    assert seen == []
    run(scored_task, tmp_path, "dpo", name="off", max_steps=1, disable_dropout=True)
    assert seen == ["LlamaForCausalLM"]


@pytest.mark.parametrize("bias", [False, True])
def test_head_token_logps_equal_cross_entropy(bias):
    """The LM head's token log-probs, whose backward reuses the forward's logits buffer, equal
    -cross_entropy(head(h), y): a hand value, then values and gradients of h, W and b, also
    without gradients; a second backward through the same graph is refused, not wrong."""
    import math

    import torch.nn.functional as F

    from deltapref.forward.logprobs import head_token_logps

    two = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        two.weight.copy_(torch.tensor([[0.0], [math.log(3.0)]]))  # p = (1/4, 3/4)
    assert head_token_logps(two, torch.ones(1, 1), torch.tensor([1])).item() == pytest.approx(math.log(0.75))
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 30, bias=bias)
    hidden = torch.randn(7, 8, requires_grad=True)
    targets, weights = torch.randint(0, 30, (7,)), torch.randn(7)

    def values_and_grads(read):
        head.zero_grad()
        hidden.grad = None
        values = read()
        (values * weights).sum().backward()
        return values.detach(), [t.grad.clone() for t in (hidden, *head.parameters())]

    got = values_and_grads(lambda: head_token_logps(head, hidden, targets))
    want = values_and_grads(lambda: -F.cross_entropy(head(hidden), targets, reduction="none"))
    assert torch.allclose(got[0], want[0], atol=1e-6)
    assert len(got[1]) == (3 if bias else 2)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got[1], want[1]))
    with torch.no_grad():
        assert torch.allclose(head_token_logps(head, hidden, targets), want[0], atol=1e-6)
    total = head_token_logps(head, hidden, targets).sum()
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="second backward"):
        total.backward()


@pytest.mark.parametrize("softcap", [None, 5.0])
@pytest.mark.parametrize("share", [True, False])
def test_head_on_scored_positions_matches_full_logits(softcap, share):
    """batch_logps projects only response positions through the LM head; it equals log-probs read
    from the model's full logits (values and gradients), and a model whose logits are not the
    plain head (Gemma 2's soft-capping) takes the full-logits path. Gemma 2 runs eager attention,
    which adds the mask to the scores: the shared-prefix block mask must be additive there."""
    from deltapref.forward.batching import join_prompt_responses
    from deltapref.forward.logprobs import batch_logps, sequence_logps
    from deltapref.policy.data import PolicyCollator

    model = tiny_gemma2(softcap)
    g = torch.Generator().manual_seed(1)

    def ids(n):
        return torch.randint(3, 40, (n,), generator=g).tolist()

    rows = [{"prompt_ids": ids(p), "chosen_ids": ids(c), "rejected_ids": ids(r)} for p, c, r in [(5, 3, 6), (2, 7, 1)]]
    got = batch_logps(model, PolicyCollator(0, ("chosen", "rejected"), share_prefix=share)(rows))
    model.zero_grad()
    got[0].sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = join_prompt_responses(
        [r["prompt_ids"] for r in rows] * 2, [r[k] for k in ("chosen_ids", "rejected_ids") for r in rows], 0
    )
    logits = model(input_ids=plain["input_ids"], attention_mask=plain["attention_mask"]).logits
    want = sequence_logps(logits, plain["input_ids"], plain["response_mask"])
    want[0].sum().backward()
    assert torch.allclose(got[0], want[0], atol=1e-5) and torch.equal(got[1], want[1])
    assert all(torch.allclose(a, p.grad, atol=1e-5) for a, p in zip(grads, model.parameters()))
