"""The preflight of a model directory, before any training or scoring starts: ``config.json``
is a JSON object whose size fields are positive integers, the directory holds safetensors
weights (never pickles) and, for a tokenizer, tokenizer files; once loaded, the tokenizer's ids
fit the model's vocabulary and ``--max_length`` fits its positions. Each problem is one line."""

from __future__ import annotations

import json
from pathlib import Path

from deltapref.errors import ModelLoadError
from deltapref.models.names import resolve

POSITIVE_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
)


def read_model_config(name: str) -> dict | None:
    """The ``config.json`` of a local model directory as a mapping (None for a hub id or a tiny
    model), its size fields checked: one line naming the file and field when it is not JSON, not
    a mapping, or a size is not a positive integer."""
    path = Path(resolve(name)) / "config.json"
    if name.split(":")[0] == "tiny" or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path}: not readable JSON ({str(error)[:200]})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: must hold a JSON object of settings, not a {type(config).__name__}")
    for field in POSITIVE_INT_FIELDS:
        value = config.get(field, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelLoadError(f"{path}: field '{field}' must be a positive integer, got {value!r}")
    return config


def position_limit(model) -> int | None:
    """How many positions the model's (text) config says it can embed, if it says."""
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_model_fits(model, tokenizer, name: str, max_length: int | None) -> None:
    """The preflight of a loaded model, before any training or scoring: the tokenizer's ids fit
    its vocabulary and ``max_length`` fits its positions."""
    embeddings = model.get_input_embeddings()
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise ModelLoadError(
            f"{name}: its tokenizer has {len(tokenizer)} tokens but the model embeds only {rows}: ids past "
            f"{rows - 1} would index outside it (use the tokenizer the model was trained with)"
        )
    limit = position_limit(model)
    if max_length is not None and limit is not None and max_length > limit:
        raise ModelLoadError(
            f"{name}: --max_length {max_length} is more than the {limit} positions the model embeds; "
            f"pass --max_length {limit} or less"
        )


def check_model_dir(name: str, directory: Path, is_model: bool) -> None:
    files = {path.name for path in directory.iterdir()}
    if is_model:
        read_model_config(name)
    if is_model and "config.json" not in files:
        if "adapter_config.json" in files:
            raise ModelLoadError(
                f"{name} is a LoRA adapter (adapter_config.json), not a full model: merge it into its base "
                "model first (peft's merge_and_unload; deltapref saves merged models unless told not to)"
            )
        raise ModelLoadError(f"{name} has no config.json: not a model directory")
    if is_model and not any(f.endswith(".safetensors") or f.endswith(".safetensors.index.json") for f in files):
        pickled = sorted(f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt")))
        found = f" (found {', '.join(pickled)}: pickled weights are never loaded)" if pickled else ""
        raise ModelLoadError(
            f"{name} has no .safetensors weights{found}; convert them with the tool that wrote them "
            "(e.g. save_pretrained(..., safe_serialization=True))"
        )
    if not is_model and not files & {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json"}:
        raise ModelLoadError(
            f"{name} holds no tokenizer files (tokenizer.json, tokenizer_config.json, vocab.*): save its tokenizer "
            "there (tokenizer.save_pretrained); sft, align and train-scorer also take --tokenizer"
        )
