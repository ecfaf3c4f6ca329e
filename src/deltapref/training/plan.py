"""``deltapref plan``: the GPU memory a training run needs, estimated from the model's parameter
count and the run's options, for each way of spreading it over GPUs (docs/SCALE.md).

Per parameter, with AdamW in mixed precision (ZeRO, Rajbhandari et al. 2020, §3.1): 2 bytes of
bf16 weights, 2 of bf16 gradients, 12 of fp32 optimizer state (master weights, momentum,
variance) = 16 bytes; DDP keeps all of it on every GPU, FSDP full sharding (ZeRO-3) one N-th plus
one gathered layer. LoRA keeps the frozen model in bf16 (2 bytes) and the 16 bytes for adapters
only. Activations per token and layer ≈ 34·hidden bytes in bf16 (Korthikanti et al. 2022, with
a fused attention kernel, no recomputation): tokens = batch × responses per row × length.
deltapref computes reference log-probs before training, so no reference model is resident.
These are estimates, not measurements."""

from __future__ import annotations

import re
from dataclasses import dataclass

from deltapref.config.commands import Options, option
from deltapref.errors import DeltaprefError
from deltapref.training.distributed import say

SIZES = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
GIB = 1024**3
ADAM_BYTES, FROZEN_BYTES, ACTIVATION_BYTES = 16, 2, 34


@dataclass
class PlanConfig(Options):
    model: str = option(None, "a model directory, id or alias with a config.json, or a size such as 8b or 135m")
    gpus: int = option(8, "GPUs per node", ge=1)
    nodes: int = option(1, "nodes", ge=1)
    gpu_memory_gb: float = option(80.0, "memory of one GPU in GiB", gt=0)
    per_device_batch_size: int = option(4, "rows per GPU and step", ge=1)
    responses: int = option(2, "responses per row (2 for pairs, k for RRHF's lists)", ge=1)
    max_length: int = option(1024, "tokens per response sequence", ge=1)
    lora_r: int = option(16, "LoRA rank for the LoRA rows of the table", ge=1)
    gradient_checkpointing: bool = option(False, "keep only each layer's input (2·hidden B/token) between layers")

    def __post_init__(self):
        super().__post_init__()
        if not self.model:
            raise ValueError("--model is required (a model directory, or a size such as 8b)")


@dataclass(frozen=True)
class Shape:
    parameters: float
    layers: int
    hidden: int
    intermediate: int


def model_shape(model: str) -> Shape:
    """Parameters and shape from a size (``8b``: a Llama-like shape, 12·layers·hidden² parameters
    with layers = hidden/128) or from the model's config (built on the meta device: exact)."""
    size = re.fullmatch(r"(\d+(?:\.\d+)?)([kmbt])", model.lower())
    if size:
        parameters = float(size.group(1)) * SIZES[size.group(2)]
        hidden = max(128, 128 * round((parameters * 128 / 12) ** (1 / 3) / 128))  # 12·L·h² with L = h/128
        return Shape(parameters, max(1, hidden // 128), hidden, int(hidden * 3.5))
    return _shape_of_config(model)


def _shape_of_config(model: str) -> Shape:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from deltapref.models.names import resolve
    from deltapref.models.preflight import read_model_config

    read_model_config(resolve(model))  # its size fields are positive integers, or one line
    try:
        config = AutoConfig.from_pretrained(resolve(model))
    except (OSError, ValueError, TypeError) as error:
        raise DeltaprefError(f"{model}: no model config to read ({str(error).splitlines()[0][:200]})") from None
    try:
        with torch.device("meta"):
            built = AutoModelForCausalLM.from_config(config)
    except (TypeError, ValueError, KeyError) as error:
        raise DeltaprefError(f"{model}: its config does not build a causal LM ({str(error)[:200]})") from None
    text = config.get_text_config()
    parameters = float(sum(p.numel() for p in built.parameters()))
    intermediate = getattr(text, "intermediate_size", 4 * text.hidden_size)
    return Shape(parameters, text.num_hidden_layers, text.hidden_size, intermediate)


def lora_parameters(shape: Shape, r: int) -> float:
    """Adapters on every attention and MLP projection: r·(in + out) each."""
    h, m = shape.hidden, shape.intermediate
    return shape.layers * r * (4 * 2 * h + 3 * (h + m))


def estimates(config: PlanConfig, shape: Shape) -> list[tuple[str, float, float, float]]:
    """(layout, model-state GiB per GPU, activation GiB per GPU, total) for each layout."""
    world = config.gpus * config.nodes
    tokens = config.per_device_batch_size * config.responses * config.max_length
    per_layer = ACTIVATION_BYTES * shape.hidden * tokens / GIB
    if config.gradient_checkpointing:  # every layer's input kept, one layer's activations rebuilt at a time
        activations = FROZEN_BYTES * shape.hidden * tokens * shape.layers / GIB + per_layer
    else:
        activations = per_layer * shape.layers
    full, frozen = ADAM_BYTES * shape.parameters / GIB, FROZEN_BYTES * shape.parameters / GIB
    layer = ADAM_BYTES * shape.parameters / shape.layers / GIB  # one gathered layer under FSDP
    adapters = ADAM_BYTES * lora_parameters(shape, config.lora_r) / GIB
    rows = [("full fine-tune, DDP (1 GPU or many)", full), ("LoRA, DDP (frozen model in bf16)", frozen + adapters)]
    if world > 1:
        rows += [
            (f"full fine-tune, FSDP full shard over {world} GPUs", full / world + layer / 8),
            (f"LoRA, FSDP over {world} GPUs", frozen / world + adapters),
        ]
    return [(name, state, activations, state + activations) for name, state in rows]


def run_with(config: PlanConfig, layout: str) -> str:
    """The command line that trains in ``layout`` (one of ``estimates``' rows): a launch preset with
    the GPU count, then the command with LoRA's rank where the layout has LoRA."""
    world = config.gpus * config.nodes
    preset = "fsdp2" if "FSDP" in layout else "ddp"
    machines = f" --num_machines {config.nodes} --machine_rank RANK --main_process_ip HOST --main_process_port PORT"
    launch = f"deltapref launch {preset} --num_processes {world}{machines if config.nodes > 1 else ''} "
    command = (launch if world > 1 else "deltapref ") + "align"
    return command + (f" --lora_r {config.lora_r}" if layout.startswith("LoRA") else "") + " ..."


def plan(config: PlanConfig) -> int:
    """Entry point of ``deltapref plan``."""
    shape = model_shape(config.model)
    say(
        f"{config.model}: {shape.parameters / 1e9:.2f}B parameters, {shape.layers} layers, hidden {shape.hidden}; "
        f"{config.per_device_batch_size} rows x {config.responses} responses x {config.max_length} tokens per GPU"
    )
    say(f"{'layout':<48} {'model state':>12} {'activations':>12} {'total GiB':>10}  fits {config.gpu_memory_gb:g} GiB")
    fitting = []
    for name, state, activations, total in estimates(config, shape):
        fits = "yes" if total <= 0.9 * config.gpu_memory_gb else "no"
        say(f"{name:<48} {state:>12.1f} {activations:>12.1f} {total:>10.1f}  {fits}")
        fitting += [name] if fits == "yes" else []
    for name in fitting:
        say(f"{name}: {run_with(config, name)}")
    say(
        "estimates, not measurements (docs/SCALE.md): AdamW in mixed precision 16 B/param; activations "
        "34·hidden B/token/layer; 10% of each GPU kept free"
    )
    return 0
