"""A training run that would train wrong stops without a model: a non-finite loss, weights
that never change (and the reason read from the logs), a smoke test inside warmup.

Guards: training/trainer.py, training/shared.py."""

import pytest

from deltapref.cli import main
from helpers import TWO_STEPS, align_argv, fails, with_column


def test_a_non_finite_loss_stops_training_and_writes_no_model(capsys, scored_task, tmp_path):
    data = with_column(scored_task, tmp_path, "weights", [1e308] * 5000)  # finite weights whose sum overflows
    argv = ["align", "--model", scored_task["sft"], "--train_data", data, "--coef", "weights", "--output_dir"]
    fails(capsys, argv + [str(tmp_path / "p")] + TWO_STEPS, 1, r"the loss became inf at step 1: training stopped")
    assert not (tmp_path / "p" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "extra, code, pattern",
    [
        (["--max_steps", "0"], 2, "--max_steps must be > 0 .or -1"),
        (["--loss", "kto", "--kto_lambda_d", "0", "--kto_lambda_u", "0"], 2, "KTO would have no loss"),
        (["--gradient_accumulation_steps", "100000"], 1, "--gradient_accumulation_steps 100000 is more than the"),
        (["--learning_rate", "1e-30"], 1, r"2 optimizer step\(s\) changed no weight: its gradients were not finite"),
        (["--beta", "1e30"], 1, "changed no weight|the loss became|non-finite"),
    ],
)
def test_training_that_would_change_nothing_stops_without_a_model(capsys, scored_task, tmp_path, extra, code, pattern):
    argv = align_argv(scored_task, tmp_path / "out", *extra)  # a repeated flag: the last one wins
    fails(capsys, argv, code, pattern)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_the_reason_for_unchanged_weights_is_read_from_the_logs():
    from deltapref.training.trainer import unchanged_reason

    assert "not finite at every logged step" in unchanged_reason(
        [{"grad_norm": float("inf")}, {"grad_norm": float("nan")}]
    )
    assert "no gradient at any logged step" in unchanged_reason([{"loss": 0.0, "grad_norm": 0.0}] * 2)
    assert "too small to register" in unchanged_reason([{"loss": 0.7, "grad_norm": 0.5}])
    assert "too small to register" in unchanged_reason([])


def test_the_weight_watch_passes_a_run_that_learns(scored_task, tmp_path):
    assert main(align_argv(scored_task, tmp_path / "out")) == 0
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_a_one_step_smoke_test_inside_warmup_saves_with_a_warning(scored_task, tmp_path, caplog):
    """Decided: one step at learning rate 0 (warmup from 0) is what a smoke test asks for, so the
    model is saved, with a warning saying it equals its start; more steps that change nothing fail."""
    argv = align_argv(scored_task, tmp_path / "out", "--max_steps", "1", "--warmup_steps", "0.5")
    assert main(argv) == 0 and (tmp_path / "out" / "model.safetensors").exists()
    assert "only step had learning rate 0" in caplog.text
