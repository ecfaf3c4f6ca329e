"""Sharded training under the Trainer (FSDP2, DeepSpeed ZeRO), on GPUs and on CPUs.

accelerate turns ``--fsdp`` and ``--deepspeed`` into FSDP / DeepSpeed only for GPU-like devices
(and not with ``--use_cpu``): on a CPU it keeps the launch as plain DDP (every process holding the
whole model) under those flags. FSDP2 and DeepSpeed ZeRO run on CPUs over gloo, so deltapref
lifts that one gate (``allow_sharding_on_cpu``): the Trainer and accelerate then shard, save and
resume by the same code a GPU run goes through. It checks after the Trainer wrapped the model
that the model is sharded (``check_sharded``), and saves the final model from the gathered full
state dict (``full_state_dict``), which plain ``from_pretrained`` loads (LoRA merged from the
gathered tensors). FSDP version 1 on a CPU is refused in one line (``sharding_problem``).
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn
from transformers import TrainingArguments

from deltapref.errors import OptionError

logger = logging.getLogger(__name__)
_GATE_LIFTED = False


def fsdp_version(args: TrainingArguments) -> int | None:
    """The FSDP version the run asks for, by ``--fsdp`` or by ``accelerate launch`` with an FSDP
    config (its environment); None: no FSDP."""
    if not args.fsdp:
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
            return int(os.environ.get("FSDP_VERSION", "1"))
        return None
    config = args.fsdp_config or {}  # TrainingArguments keeps ``fsdp_version`` as ``version``
    return int(config.get("version", config.get("fsdp_version", 1)))


def sharding_problem(args: TrainingArguments) -> str | None:
    """Why ``args`` cannot train sharded here, or None. (LoRA trains under FSDP2: frozen and
    trainable weights share its shards; the final save merges the gathered tensors,
    ``lora.merged_state_dict``.)"""
    version = fsdp_version(args)
    if version is None:
        return None
    if args.device.type == "cpu" and version != 2:
        return (
            f"--fsdp with fsdp_version {version} on a CPU: deltapref runs FSDP on CPUs as FSDP2 only; pass "
            "--fsdp_config '{\"fsdp_version\": 2}'"
        )
    return None


def uses_deepspeed(args: TrainingArguments) -> bool:
    """Whether the run trains under DeepSpeed (``--deepspeed`` or ``accelerate launch`` with a
    DeepSpeed config)."""
    return bool(args.deepspeed) or os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def allow_sharding_on_cpu() -> None:
    """Let accelerate's state take the FSDP or DeepSpeed plugin on a multi-process CPU launch (it
    keeps ``MULTI_CPU`` and drops the plugin otherwise), as its GPU branch does. Idempotent; GPU
    launches are untouched."""
    global _GATE_LIFTED
    if _GATE_LIFTED:
        return
    from accelerate import state
    from accelerate.utils import DistributedType

    original = state.AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, deepspeed_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, deepspeed_plugin=deepspeed_plugin, **kwargs)
        if self.distributed_type != DistributedType.MULTI_CPU:
            return
        if deepspeed_plugin is not None and not isinstance(deepspeed_plugin, dict):
            deepspeed_plugin.set_mixed_precision(self._mixed_precision)
            deepspeed_plugin.select(_from_accelerator_state=True)
            self.deepspeed_plugins, self.distributed_type = deepspeed_plugin, DistributedType.DEEPSPEED
        elif fsdp_plugin is not None:
            self.fsdp_plugin, self.distributed_type = fsdp_plugin, DistributedType.FSDP
        state.PartialState._shared_state["distributed_type"] = self.distributed_type

    state.AcceleratorState.__init__ = init
    _GATE_LIFTED = True


def join_deepspeed_on_cpu() -> None:
    """DeepSpeed's communication layer over the launch's process group (gloo), as accelerate's
    GPU branch sets it up: ZeRO-3 partitions a model while loading it (``zero.Init``), before the
    Trainer exists, and reads the world size from it."""
    import deepspeed
    import torch.distributed as dist

    if dist.is_initialized():
        deepspeed.init_distributed(dist_backend=dist.get_backend())


def check_reference_pass_possible(loss: str) -> None:
    """Refuse an in-run reference pass under DeepSpeed ZeRO-3: the model is partitioned as it
    loads, before any engine could gather it for that pass."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        raise OptionError(
            f"--loss {loss} under DeepSpeed ZeRO-3 needs the reference log-probs in the data: ZeRO-3 partitions "
            "the model while loading it, so the run cannot compute them first. Add them with `deltapref score "
            "--reference_model MODEL` (columns ref_logp_chosen, ref_logp_rejected), or use ZeRO-2 or FSDP"
        )


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` (the Trainer's wrapped model) holds only a shard of the weights outside
    its own forward: FSDP2 (accelerate shards the root module last, so the root is an
    ``FSDPModule`` whenever anything is) or a DeepSpeed engine (ZeRO-3 partitions parameters;
    every DeepSpeed engine is treated alike)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule) or _is_deepspeed(model)


def _is_deepspeed(model) -> bool:
    return type(model).__name__ == "DeepSpeedEngine" and type(model).__module__.startswith("deepspeed")


def check_sharded(trainer) -> None:
    """Stop if the run asked for FSDP or DeepSpeed but the Trainer's model is not sharded (an
    accelerate that ignores the plugin would otherwise train DDP under those flags)."""
    asked = "FSDP" if fsdp_version(trainer.args) else "DeepSpeed" if uses_deepspeed(trainer.args) else None
    if not asked or trainer.args.world_size <= 1:
        return
    if not is_sharded(trainer.model_wrapped):
        raise RuntimeError(
            f"{asked} was asked for, but the Trainer wrapped the model as {type(trainer.model_wrapped).__name__}: "
            f"stopped rather than train plain DDP under the {asked} flags"
        )
    logger.info(
        "%s: the model is sharded over %d processes", "FSDP2" if asked == "FSDP" else asked, trainer.args.world_size
    )


def local_values(parameter: torch.Tensor) -> torch.Tensor:
    """This process's values of ``parameter`` (its shard when sharded)."""
    return parameter.to_local() if hasattr(parameter, "to_local") else parameter


def full_state_dict(trainer) -> dict[str, torch.Tensor] | None:
    """The trained model's whole state dict on CPU when sharded (every process takes part in the
    gather: FSDP2's full state dict, DeepSpeed's consolidated one), else None (the model saves
    its own)."""
    if _is_deepspeed(trainer.model_wrapped):
        return trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if not is_sharded(trainer.model):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
