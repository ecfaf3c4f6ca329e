"""KTO+rc inside TRL's KTOTrainer, checked against TRL itself: weights 1 give TRL's loss and
gradients, weights w give each example w times its TRL loss.

Guards: integrations/trl/kto.py, integrations/trl/weights.py."""

import copy
import json

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import KTOConfig, KTOTrainer  # noqa: E402

from deltapref.integrations.trl import WEIGHTS, WeightedKTOTrainer  # noqa: E402
from deltapref.models.loading import load_causal_lm, load_tokenizer  # noqa: E402

PAIRS = 4


@pytest.fixture(scope="module")
def setup(builtin_task):
    """Four built-in pairs unpaired into eight KTO examples (the task's responses start with the
    space TRL's joining needs); both examples of a pair carry its weight."""
    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    pairs = [json.loads(line) for line in (builtin_task / "train.jsonl").read_text().splitlines()[:PAIRS]]
    weights = torch.linspace(0.2, 1.7, PAIRS).tolist()
    rows = [
        {"prompt": pair["prompt"], "completion": pair[side], "label": side == "chosen", "coef": weight}
        for pair, weight in zip(pairs, weights)
        for side in ("chosen", "rejected")
    ]
    model = load_causal_lm("tiny:32:1", tokenizer, seed=0)
    return tokenizer, rows, model


def _trainer(cls, setup, tmp_path, rows=None, **overrides):
    tokenizer, default_rows, model = setup
    values = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2 * PAIRS,
        max_steps=1,
        report_to="none",
        use_cpu=True,
        beta=0.1,
        max_length=96,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        train_sampling_strategy="sequential",
    )
    args = KTOConfig(**(values | overrides))
    extra = {} if args.precompute_ref_log_probs else {"ref_model": copy.deepcopy(model)}
    return cls(
        model=copy.deepcopy(model),
        args=args,
        train_dataset=Dataset.from_list(rows or default_rows),
        processing_class=tokenizer,
        **extra,
    )


def _loss_and_grads(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("precompute", [False, True])
def test_unit_weights_give_trls_kto_loss_and_gradients(setup, tmp_path, precompute):
    rows = [dict(row, coef=1.0) for row in setup[1]]
    options = {"precompute_ref_log_probs": precompute}
    ours = _loss_and_grads(_trainer(WeightedKTOTrainer, setup, tmp_path / "a", rows, **options))
    theirs = _loss_and_grads(_trainer(KTOTrainer, setup, tmp_path / "b", rows, **options))
    torch.testing.assert_close(ours[0], theirs[0])
    assert ours[1].keys() == theirs[1].keys() and ours[1]
    for name in ours[1]:
        torch.testing.assert_close(ours[1][name], theirs[1][name], rtol=1e-4, atol=1e-6)


def test_each_examples_loss_is_its_weight_times_trls(setup, tmp_path):
    """With one example weighted w and the rest 1, the loss moves by (w − 1)·ℓ_i/n, where ℓ_i is
    that example's TRL loss: read ℓ_i off TRL's mean with the example's weight at 1 and at 3."""
    weighted = _trainer(WeightedKTOTrainer, setup, tmp_path / "a")
    loss, _ = _loss_and_grads(weighted)
    batch = next(iter(weighted.get_train_dataloader()))
    weights = batch[WEIGHTS]
    assert torch.equal(weights, torch.tensor([row["coef"] for row in setup[1]]))  # the batch keeps the rows' order
    n = len(setup[1])
    ones = [dict(r, coef=1.0) for r in setup[1]]
    unit = _loss_and_grads(_trainer(WeightedKTOTrainer, setup, tmp_path / "b", ones))[0]
    per_example = []
    for i in range(n):
        rows = [dict(r, coef=3.0 if j == i else 1.0) for j, r in enumerate(setup[1])]
        bumped = _loss_and_grads(_trainer(WeightedKTOTrainer, setup, tmp_path / f"c{i}", rows))[0]
        per_example.append((bumped - unit) * n / 2)
    per_example = torch.stack(per_example)
    torch.testing.assert_close(per_example.mean(), unit, rtol=1e-4, atol=1e-6)  # TRL's loss is their mean
    torch.testing.assert_close(loss, (weights * per_example).mean(), rtol=1e-4, atol=1e-6)


def test_trains_logs_weights_and_names_the_weighting(setup, tmp_path):
    trainer = _trainer(WeightedKTOTrainer, setup, tmp_path, max_steps=2, logging_steps=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    first = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert first["weights/min"] == pytest.approx(0.2) and first["weights/max"] == pytest.approx(1.7)
    assert first["loss_unweighted"] > 0 and "kl" in first
    trainer.create_model_card()
    card = (tmp_path / "README.md").read_text()
    assert "KTO+rc" in card and "`coef`" in card and "[None]" not in card


def test_unsupported_loss_type_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="loss_type 'kto'"):
        _trainer(WeightedKTOTrainer, setup, tmp_path, loss_type="apo_zero_unpaired")
