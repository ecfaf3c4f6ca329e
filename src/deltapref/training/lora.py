"""Optional LoRA (peft) for any trained model."""

from __future__ import annotations

from dataclasses import dataclass

from deltapref.config.commands import Options, option
from deltapref.errors import OptionError


@dataclass
class LoraOptions(Options):
    lora_r: int = option(0, "LoRA rank; 0 trains all weights", ge=0)
    lora_alpha: int = option(16, "LoRA scaling alpha", gt=0)
    lora_dropout: float = option(0.0, "LoRA dropout", ge=0, lt=1)
    lora_target_modules: str = option("all-linear", "modules LoRA adapts (comma list or all-linear)")

    def __post_init__(self):
        super().__post_init__()
        if not self.target_modules():
            raise ValueError("--lora_target_modules must name modules (e.g. q_proj,v_proj) or be all-linear")

    def target_modules(self) -> list[str] | str:
        """``all-linear`` or the named modules."""
        if self.lora_target_modules == "all-linear":
            return "all-linear"
        return [name.strip() for name in (self.lora_target_modules or "").split(",") if name.strip()]


def check_targets(model, targets: list[str] | str) -> None:
    """Refuse LoRA target names that match no module of ``model`` (peft matches a name against
    the end of each module's dotted name), listing the linear layers it has."""
    if targets == "all-linear":
        return
    names = [name for name, _ in model.named_modules() if name]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        from torch import nn

        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise OptionError(
            f"--lora_target_modules {','.join(missing)}: no such module in this model (its linear layers: "
            f"{', '.join(linear[:20])}; or all-linear)"
        )


def apply_lora(model, options: LoraOptions, task_type: str, modules_to_save: list[str] | None = None, *, seed: int):
    """Wrap ``model`` with LoRA adapters when ``options.lora_r > 0``; heads listed in
    ``modules_to_save`` stay fully trainable. The adapters' initial weights follow ``seed``."""
    if options.lora_r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    from deltapref.randomness import seeded

    targets = options.target_modules()
    check_targets(model, targets)
    config = LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=targets,
        task_type=task_type,
        modules_to_save=modules_to_save,
    )
    with seeded(seed):
        return get_peft_model(model, config)


def merged_state_dict(state_dict: dict, config) -> dict:
    """A LoRA model's whole state dict (a peft model's keys, e.g. gathered from FSDP2 shards)
    merged into the base model's: W + s·B·A for each adapted linear (s = α/r, α/√r with rsLoRA),
    biases and ``modules_to_save`` heads under the base names, adapter-only keys dropped — the
    weights peft's ``merge_and_unload`` leaves, computed from tensors alone (no module is rebuilt,
    so a sharded run merges without a second copy of the model)."""
    scale = config.lora_alpha / (config.r**0.5 if config.use_rslora else config.r)
    prefix, adapter = "base_model.model.", "default"
    out = {}
    for key, value in state_dict.items():
        name = key.removeprefix(prefix)
        if f".lora_A.{adapter}." in name or f".lora_B.{adapter}." in name or ".original_module." in name:
            continue
        if ".base_layer." in name:
            module, _, leaf = name.rpartition(".base_layer.")
            if leaf == "weight" and f"{prefix}{module}.lora_A.{adapter}.weight" in state_dict:
                a = state_dict[f"{prefix}{module}.lora_A.{adapter}.weight"].float()
                b = state_dict[f"{prefix}{module}.lora_B.{adapter}.weight"].float()
                value = (value.float() + scale * (b @ a)).to(value.dtype)
            name = f"{module}.{leaf}"
        name = name.replace(f".modules_to_save.{adapter}.", ".")
        out[name] = value
    return out
