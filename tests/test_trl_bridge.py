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
from deltapref.losses import cdpo_loss  # noqa: E402
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
        kwargs.setdefault("ref_model", copy.deepcopy(model))  # a model built from a config has no name to reload it by
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
    with pytest.raises(ValueError, match="only \\[.sigmoid.\\], DPO, or \\[.robust.\\], rDPO"):
        _trainer(WeightedDPOTrainer, setup, tmp_path, args=_args(tmp_path, loss_type=["ipo"]))


def _unlike_reference(setup):
    """A reference model unlike the policy (its weights moved by noise), so that every pair's
    log-ratio margin h is far from 0."""
    reference = copy.deepcopy(setup[3])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return reference


def test_rdpo_is_trls_robust_loss_at_the_same_epsilon_and_beta(setup, tmp_path):
    """On the log-probs TRL's forwards return, ``losses.rdpo_loss`` is TRL's ``robust`` loss (the
    bridge recomputes each pair's loss and refuses a step whose mean differs from TRL's), with its
    gradients; at ε > 0 it is not DPO's."""
    reference = _unlike_reference(setup)
    data = [dict(row, coef=1.0) for row in setup[1]]
    losses = {}
    for epsilon in (0.0, 0.2, 0.45):
        args = dict(loss_type=["robust"], label_smoothing=epsilon, beta=0.5)
        ours = _trainer(
            WeightedDPOTrainer, setup, tmp_path, data, args=_args(tmp_path, **args), ref_model=copy.deepcopy(reference)
        )
        theirs = _trainer(
            DPOTrainer, setup, tmp_path, data, args=_args(tmp_path, **args), ref_model=copy.deepcopy(reference)
        )
        loss, grads = _loss_and_grads(ours, range(PAIRS))
        trl_loss, trl_grads = _loss_and_grads(theirs, range(PAIRS))
        torch.testing.assert_close(loss, trl_loss)
        _assert_same(grads, trl_grads)
        losses[epsilon] = loss
    args = _args(tmp_path, beta=0.5)
    sigmoid = _trainer(DPOTrainer, setup, tmp_path, data, args=args, ref_model=copy.deepcopy(reference))
    torch.testing.assert_close(losses[0.0], _loss_and_grads(sigmoid, range(PAIRS))[0])
    assert abs(losses[0.2] - losses[0.0]) > 1e-3


class LabelSmoothedDPO(WeightedDPOTrainer):
    """cDPO recomputed from TRL's log-probs beside TRL's label-smoothed loss. TRL 1.16's ``sigmoid``
    ignores ``label_smoothing``; the label-smoothed form remains in its ``aot`` loss, which sorts
    the batch's margins: on a batch of one pair it is cDPO."""

    def check_supported(self):
        assert self.loss_types == ["aot"] and self.args.per_device_train_batch_size == 1

    def per_example_losses(self, inputs, recorded):
        return cdpo_loss(*self.pair_logps(inputs, recorded), beta=self.beta, epsilon=self.label_smoothing)


def test_cdpo_is_trls_label_smoothed_loss_at_the_same_epsilon_and_beta(setup, tmp_path):
    reference = _unlike_reference(setup)
    data = [dict(row, coef=1.0) for row in setup[1]]
    args = _args(tmp_path, loss_type=["aot"], label_smoothing=0.3, beta=0.5, per_device_train_batch_size=1)
    ours = _trainer(LabelSmoothedDPO, setup, tmp_path, data, args=args, ref_model=copy.deepcopy(reference))
    for i in range(PAIRS):  # each step's mean is checked against TRL's own loss by the bridge
        loss, _ = _loss_and_grads(ours, [i])
        assert torch.isfinite(loss)
