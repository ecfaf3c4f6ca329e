"""deltapref's weights inside TRL's DPOTrainer, checked against TRL itself.

Guards: integrations/trl/dpo.py, integrations/trl/weights.py."""

import copy
import json

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

from deltapref.data.schema import DataError  # noqa: E402
from deltapref.integrations.trl import WEIGHTS, WeightedDPOTrainer  # noqa: E402
from deltapref.models.loading import load_causal_lm, load_tokenizer  # noqa: E402

PAIRS = 8


def trl_pair(row: dict) -> dict:
    """A built-in task pair as TRL reads it: TRL joins prompt + response with no separator, and
    the task's responses start with the space between them."""
    assert row["chosen"].startswith(" ") and row["rejected"].startswith(" ")
    return {k: row[k] for k in ("prompt", "chosen", "rejected")}


@pytest.fixture(scope="module")
def setup(builtin_task):
    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    rows = [json.loads(line) for line in (builtin_task / "train.jsonl").read_text().splitlines()[:PAIRS]]
    weights = torch.linspace(0.1, 1.9, PAIRS).tolist()
    data = [trl_pair(row) | {"coef": w} for row, w in zip(rows, weights)]
    model = load_causal_lm("tiny:32:1", tokenizer, seed=0)
    return tokenizer, data, torch.tensor(weights), model


def _args(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=PAIRS,
        max_steps=1,
        report_to="none",
        use_cpu=True,
        beta=0.1,
        max_length=96,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    return DPOConfig(**(values | overrides))


def _trainer(cls, setup, tmp_path, data=None, **kwargs):
    tokenizer, rows, _, model = setup
    args = kwargs.pop("args", None) or _args(tmp_path)
    if "peft_config" not in kwargs and not args.precompute_ref_log_probs:
        kwargs["ref_model"] = copy.deepcopy(model)  # a model built from a config has no name to reload it by
    return cls(
        model=copy.deepcopy(model),
        args=args,
        train_dataset=Dataset.from_list(data or rows),
        processing_class=tokenizer,
        **kwargs,
    )


def _loss_and_grads(trainer, indices):
    examples = [trainer.train_dataset[i] for i in indices]
    batch = trainer.data_collator(examples)
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _assert_same(grads_a, grads_b, scale=1.0):
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], scale * grads_b[name], rtol=1e-4, atol=1e-6)  # fp32 rounding


def test_unit_weights_give_trl_loss_and_gradients(setup, tmp_path):
    data = [dict(row, coef=1.0) for row in setup[1]]
    ours = _loss_and_grads(_trainer(WeightedDPOTrainer, setup, tmp_path / "a", data), range(PAIRS))
    theirs = _loss_and_grads(_trainer(DPOTrainer, setup, tmp_path / "b", data), range(PAIRS))
    torch.testing.assert_close(ours[0], theirs[0])
    _assert_same(ours[1], theirs[1])


def test_each_pair_loss_is_its_weight_times_trls(setup, tmp_path):
    weights = setup[2]
    plain = _trainer(DPOTrainer, setup, tmp_path / "b")
    per_pair = torch.stack([_loss_and_grads(plain, [i])[0] for i in range(PAIRS)])
    weighted = _trainer(WeightedDPOTrainer, setup, tmp_path / "a")
    loss, _ = _loss_and_grads(weighted, range(PAIRS))
    torch.testing.assert_close(loss, (weights * per_pair).mean())
    for i in (0, PAIRS - 1):  # one pair alone: exactly w_i times TRL's loss and gradient
        one, grads = _loss_and_grads(weighted, [i])
        reference, reference_grads = _loss_and_grads(plain, [i])
        torch.testing.assert_close(one, weights[i] * reference)
        _assert_same(grads, reference_grads, scale=weights[i].item())


def test_precomputed_reference_log_probs(setup, tmp_path):
    args = _args(tmp_path / "a", precompute_ref_log_probs=True)
    weighted = _trainer(WeightedDPOTrainer, setup, tmp_path / "a", args=args)
    assert weighted.ref_model is None and "ref_chosen_logps" in weighted.train_dataset.column_names
    plain = _trainer(DPOTrainer, setup, tmp_path / "b", args=_args(tmp_path / "b", precompute_ref_log_probs=True))
    per_pair = torch.stack([_loss_and_grads(plain, [i])[0] for i in range(PAIRS)])
    loss, _ = _loss_and_grads(weighted, range(PAIRS))
    torch.testing.assert_close(loss, (setup[2] * per_pair).mean())


def test_lora(setup, tmp_path):
    from peft import LoraConfig

    lora = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, init_lora_weights=False)
    weighted = _trainer(WeightedDPOTrainer, setup, tmp_path / "a", peft_config=LoraConfig(**lora))
    plain = _trainer(DPOTrainer, setup, tmp_path / "b", peft_config=LoraConfig(**lora))
    for trainer in (weighted, plain):  # the same adapter weights in both
        torch.manual_seed(1)
        for name, parameter in trainer.model.named_parameters():
            if "lora_" in name:
                parameter.data = torch.randn_like(parameter) * 0.1
    assert weighted.ref_model is None  # the reference is the adapter switched off
    for i in (0, PAIRS - 1):
        one, grads = _loss_and_grads(weighted, [i])
        reference, reference_grads = _loss_and_grads(plain, [i])
        assert reference > 0
        torch.testing.assert_close(one, setup[2][i] * reference)
        _assert_same(grads, reference_grads, scale=setup[2][i].item())


def test_trains_and_keeps_the_weight_column(setup, tmp_path):
    trainer = _trainer(WeightedDPOTrainer, setup, tmp_path, args=_args(tmp_path, max_steps=2, logging_steps=1))
    batch = next(iter(trainer.get_train_dataloader()))
    assert WEIGHTS in batch and batch[WEIGHTS].shape == (PAIRS,)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in trainer.state.log_history if "loss" in entry)
    first = next(entry for entry in trainer.state.log_history if "loss" in entry)  # weights and TRL's own loss logged
    weights = setup[2]
    assert first["weights/mean"] == pytest.approx(weights.mean().item(), rel=1e-5)
    assert first["weights/min"] == pytest.approx(weights.min().item()) and first["weights/max"] == pytest.approx(1.9)
    assert first["loss_unweighted"] > 0 and "rewards/chosen" in first
    trainer.create_model_card()
    card = (tmp_path / "README.md").read_text()
    assert "DPO+rc" in card and "`coef`" in card and "[None]" not in card and "deltapref" in card


def test_bad_weights_are_refused_with_their_row(setup, tmp_path):
    data = [dict(row) for row in setup[1]]
    data[2]["coef"] = float("nan")
    with pytest.raises(DataError, match="row 3.*coef"):
        _trainer(WeightedDPOTrainer, setup, tmp_path, data)
    with pytest.raises(DataError, match="no weight column 'weight'"):
        _trainer(WeightedDPOTrainer, setup, tmp_path, weight_column="weight")


@pytest.mark.parametrize(
    "weights, pattern",
    [
        ([0.0] * PAIRS, "every weight in 'coef' is 0"),
        ([1.0] * (PAIRS - 1) + [1e308], "row 8.*coef.*finite number in"),
        (["heavy"] * PAIRS, "row 1.*coef.*got 'heavy'"),
    ],
)
def test_weights_that_cannot_train_are_refused(setup, tmp_path, weights, pattern):
    data = [dict(row, coef=w) for row, w in zip(setup[1], weights)]
    with pytest.raises(DataError, match=pattern):
        _trainer(WeightedDPOTrainer, setup, tmp_path, data)


@pytest.mark.parametrize("bad, pattern", [(float("nan"), "row 2.*finite number"), (-5.0, "row 2.*got -5.0")])
def test_evaluation_weights_are_checked_like_training_weights(setup, tmp_path, bad, pattern):
    evaluation = [dict(row) for row in setup[1]]
    evaluation[1]["coef"] = bad
    with pytest.raises(DataError, match="eval_dataset.*" + pattern):
        _trainer(WeightedDPOTrainer, setup, tmp_path, eval_dataset=Dataset.from_list(evaluation))


def test_pairs_that_tokenize_across_the_boundary_are_refused(setup, builtin_task, tmp_path):
    rows = [json.loads(line) for line in (builtin_task / "train.jsonl").read_text().splitlines()[:PAIRS]]
    raw = [  # responses stripped of the leading space the built-in task writes
        {"prompt": row["prompt"], "chosen": row["chosen"].lstrip(), "rejected": row["rejected"].lstrip(), "coef": 1.0}
        for row in rows
    ]
    with pytest.raises(DataError, match="train_dataset, row 1, field 'chosen': the tokenized prompt is not a prefix"):
        _trainer(WeightedDPOTrainer, setup, tmp_path, raw)


def test_unsupported_loss_types_are_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="only \\['sigmoid'\\]"):
        _trainer(WeightedDPOTrainer, setup, tmp_path, args=_args(tmp_path, loss_type=["ipo"]))
