"""deltapref's per-pair weights inside TRL's ``DPOTrainer`` (``pip install 'deltapref[trl]'``).

:class:`WeightedDPOTrainer` is TRL's trainer with one change: each pair's DPO loss is multiplied
by its weight, read from a dataset column (``coef``, as ``deltapref score`` writes it, or any
column named by ``weight_column``) — DPO+rc, RDO Eq. 7: L = −R_α · log σ(β·Δh). Everything else
(tokenization, reference model or precomputed reference log-probs, LoRA, metrics, DDP) is TRL's.

How: TRL computes the per-pair losses inside one method and returns only their mean. The trainer
records the policy's (and the reference's) per-token log-probs as TRL's forward passes return
them, recomputes the per-pair DPO losses from them with :func:`deltapref.losses.dpo_loss`, checks
that their unweighted mean equals TRL's loss (a TRL version that computes it differently is
refused, never silently mis-weighted) and returns the weighted mean instead. No extra forward pass.
Supported: ``loss_type="sigmoid"`` (DPO) with TRL's defaults for the reward's form (reverse KL, no
length-desensitization ``ld_alpha``, no WPO weighting, no MoE auxiliary loss). Tested with the TRL
version pinned in the ``trl`` extra.
"""

from __future__ import annotations

try:
    import trl  # noqa: F401
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("deltapref.integrations.trl needs TRL: pip install 'deltapref[trl]'") from error

from deltapref.integrations.trl.dpo import WeightedDPOTrainer
from deltapref.integrations.trl.kto import WeightedKTOTrainer
from deltapref.integrations.trl.weights import MAX_WEIGHT, WEIGHTS, check_boundaries, check_weights

__all__ = ["MAX_WEIGHT", "WEIGHTS", "WeightedDPOTrainer", "WeightedKTOTrainer", "check_boundaries", "check_weights"]
