"""``AlignTrainer``: one Trainer for every policy objective. It runs the policy forward on a
batch (its body in groups of rows of similar length), reads per-response log-probs (and the DRDO
student's reward head when the objective asks for it), and hands them to the objective unit
(``deltapref.objectives``)."""

from __future__ import annotations

from deltapref.forward.logprobs import batch_logps, logps_and_rewards
from deltapref.objectives import POLICY_OBJECTIVES, PolicyLossOptions, PolicyOutputs
from deltapref.objectives.base import RENAMED_METRICS
from deltapref.training.trainer import MetricsTrainer


def policy_outputs(
    model, batch: dict, n_blocks: int, student_head: bool = False, unlikelihood: bool = False
) -> PolicyOutputs:
    """Per-response log-prob sums (block by block), token counts (at least 1), with
    ``student_head`` the reward head's output and with ``unlikelihood`` Σ_t log(1 − p_t)."""
    if student_head:
        sums, rewards = logps_and_rewards(model, batch, unlikelihood)
    else:
        sums, rewards = batch_logps(model, batch, unlikelihood), None
    return PolicyOutputs(sums[0], sums[1].clamp(min=1), n_blocks, rewards, sums[2] if unlikelihood else None)


class AlignTrainer(MetricsTrainer):
    """Trains a causal LM with the objective named by ``options.loss``."""

    metric_aliases = RENAMED_METRICS

    def __init__(self, *args, options: PolicyLossOptions, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = options
        self.objective = POLICY_OBJECTIVES[options.loss]

    def _reduce_mean(self, value):
        return self.accelerator.reduce(value, reduction="mean")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        objective = self.objective
        outputs = policy_outputs(
            model,
            inputs,
            objective.block_count(inputs),
            objective.student_head(self.options),
            objective.needs_unlikelihood(self.options),
        )
        loss, metrics = objective.compute(outputs, inputs, self.options, self._reduce_mean)
        self.check_finite(loss)
        self.store(**metrics)
        self.trace(**{name: metrics[name] for name in objective.traced if name in metrics})
        return (loss, {}) if return_outputs else loss
