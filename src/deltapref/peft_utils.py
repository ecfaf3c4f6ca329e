"""Optional LoRA (peft) for any trained model."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Options, option


@dataclass
class LoraOptions(Options):
    lora_r: int = option(0, "LoRA rank; 0 trains all weights", ge=0)
    lora_alpha: int = option(16, "LoRA scaling alpha", gt=0)
    lora_dropout: float = option(0.0, "LoRA dropout", ge=0, lt=1)
    lora_target_modules: str = option("all-linear", "modules LoRA adapts (comma list or all-linear)")


def apply_lora(model, options: LoraOptions, task_type: str, modules_to_save: list[str] | None = None, *, seed: int):
    """Wrap ``model`` with LoRA adapters when ``options.lora_r > 0``; heads listed in
    ``modules_to_save`` stay fully trainable. The adapters' initial weights follow ``seed``."""
    if options.lora_r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    from .randomness import seeded

    targets = options.lora_target_modules
    config = LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=targets if targets == "all-linear" else targets.split(","),
        task_type=task_type,
        modules_to_save=modules_to_save,
    )
    with seeded(seed):
        return get_peft_model(model, config)
