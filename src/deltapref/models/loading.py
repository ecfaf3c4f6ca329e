"""Building and loading the models deltapref trains.

- Scorers (reward, difference): ``AutoModelForSequenceClassification`` with ``num_labels=1``,
  encoder or decoder backbone; decoders score the last non-pad token.
- Causal LMs with a scalar reward head (the DRDO oracle and the DRDO student): an ordinary
  ``AutoModelForCausalLM`` that carries one extra ``reward_head`` linear layer. It saves as a
  normal causal-LM directory (any tool loads it as a plain LM; the head's weights sit beside
  the LM's in the same safetensors file) and ``load_causal_lm(..., reward_head=True)`` restores
  the head.
- ``tiny:`` backbones: a fresh small Llama for the built-in task, built from its tokenizer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig

from deltapref.artifacts.records import CROSS_FIT, listed_members
from deltapref.config.commands import tiny_shape
from deltapref.errors import ModelLoadError, ModelRoleError
from deltapref.models.names import resolve
from deltapref.models.preflight import check_model_dir, read_model_config
from deltapref.randomness import seeded

logger = logging.getLogger(__name__)

TINY_PREFIX = "tiny"
REWARD_HEAD = "reward_head"


def tiny_config(tokenizer, spec: str = "tiny") -> LlamaConfig:
    """A small Llama config for ``tiny`` or ``tiny:HIDDEN:LAYERS`` (e.g. ``tiny:64:2``)."""
    hidden, layers = tiny_shape(spec)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        num_key_value_heads=max(1, hidden // 32),
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        deltapref_from_scratch=True,  # kept by every model trained from it (training_arguments.FROM_SCRATCH)
    )


def disable_dropout(model: nn.Module) -> nn.Module:
    """Set every dropout probability of ``model`` to 0: its ``nn.Dropout`` layers and the float
    ``attention_dropout`` that some attention modules pass to their kernel."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return model


def is_tiny(name: str) -> bool:
    return name == TINY_PREFIX or name.startswith(TINY_PREFIX + ":")


LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, SafetensorError, json.JSONDecodeError)


def from_pretrained(loader, name: str, **kwargs):
    """``loader.from_pretrained(name)`` with one clear line (naming ``name`` and why) when it does
    not load: not a local model directory nor a hub id, no ``config.json``, an unmerged LoRA
    adapter, an unknown ``model_type``, a corrupt or truncated weights file. Model weights load
    from safetensors only (a pickled ``.bin`` is never unpickled)."""
    target = resolve(name)
    local = Path(target)
    is_model = loader is not AutoTokenizer
    if local.is_dir():
        check_model_dir(name, local, is_model)
    if is_model:
        kwargs["use_safetensors"] = True
    try:
        return loader.from_pretrained(target, **kwargs)
    except LOAD_ERRORS as error:
        where = (
            f"{name} does not load as a {'model' if is_model else 'tokenizer'}"
            if local.is_dir()
            else f"{name} is not a local directory, and as a hub id it did not load"
        )
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"{where} ({type(error).__name__}: {reason[:300]})") from None


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """A tokenizer with a pad token (eos stands in when the model has none)."""
    tokenizer = from_pretrained(AutoTokenizer, name, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_sequence_scorer(
    name: str, tokenizer, *, seed: int = 0, trust_remote_code: bool = False, dtype: torch.dtype = torch.float32
):
    """A scalar scorer (``num_labels=1``); ``tiny`` builds one from scratch. New weights (a tiny
    model, a pretrained backbone's new head) follow ``seed`` (ensembles differ by it); the
    caller's random state is left as it was."""
    with seeded(seed):
        if is_tiny(name):
            config = tiny_config(tokenizer, name)
            config.num_labels = 1
            return AutoModelForSequenceClassification.from_config(config, dtype=dtype)
        model = from_pretrained(
            AutoModelForSequenceClassification, name, num_labels=1, trust_remote_code=trust_remote_code, dtype=dtype
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_causal_lm(
    name: str,
    tokenizer=None,
    *,
    reward_head: bool = False,
    seed: int = 0,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
):
    """A causal LM, optionally with its scalar ``reward_head`` (restored when saved, else new);
    new weights follow ``seed`` and the caller's random state is left as it was."""
    with seeded(seed):
        if is_tiny(name):
            model = AutoModelForCausalLM.from_config(tiny_config(tokenizer, name), dtype=dtype)
        else:
            model = from_pretrained(AutoModelForCausalLM, name, trust_remote_code=trust_remote_code, dtype=dtype)
        if reward_head:
            attach_reward_head(model, Path(resolve(name)) if not is_tiny(name) else None)
    return model


def is_classifier(config: dict) -> bool:
    """Whether a saved model's config (``config.json``) is a sequence classifier."""
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def describe_saved_model(config: dict) -> str:
    """What a saved model is, for messages: its deltapref kind if deltapref saved it, else its head."""
    kind = config.get("deltapref_kind")
    what = f"a deltapref {kind} model" if kind else "a sequence classifier" if is_classifier(config) else "a causal LM"
    return f"{what} ({(config.get('architectures') or ['unknown architecture'])[0]})"


def check_policy(path: str) -> None:
    """Refuse a saved model directory that cannot be a policy (it has no language-model head).
    Hub ids and tiny models are not checked here; scorers are checked by their kind
    (``deltapref.scorer_kinds``)."""
    config = read_model_config(path)
    if config is not None and is_classifier(config):
        raise ModelRoleError(
            f"{path} is {describe_saved_model(config)}, not a causal-LM policy: it has no language-model head"
        )


def scorer_members(path: str) -> list[str]:
    """The model directories behind a scorer: the directory itself, or a cross-fitted scorer's
    fold models (listed in its ``cross_fit.json``)."""
    return listed_members(path, CROSS_FIT) or [path]


def load_scorer(path: str):
    """A saved scorer and its tokenizer: a causal LM with a reward head (oracle, DRDO student)
    when its config says so, else a ``num_labels=1`` classifier."""
    tokenizer = load_tokenizer(path)
    config = read_model_config(path) or {}
    if config.get("deltapref_reward_head"):
        return load_causal_lm(path, reward_head=True), tokenizer
    return load_sequence_scorer(path, tokenizer), tokenizer


def attach_reward_head(model, directory: Path | None = None) -> nn.Linear:
    """Add ``model.reward_head`` (hidden → 1) and load its weights from ``directory`` if saved."""
    hidden = model.config.get_text_config().hidden_size
    head = nn.Linear(hidden, 1, bias=True, dtype=model.dtype)
    nn.init.normal_(head.weight, std=1 / (hidden + 1) ** 0.5)
    nn.init.zeros_(head.bias)
    model.reward_head = head
    model.config.deltapref_reward_head = True
    if directory is not None:
        state = _read_prefixed(directory, REWARD_HEAD + ".")
        if state:
            head.load_state_dict(state)
        else:
            logger.info("%s has no saved reward head: a new one was initialized", directory)
    return head


def _read_prefixed(directory: Path, prefix: str) -> dict[str, torch.Tensor]:
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    state = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                if key.startswith(prefix):
                    state[key[len(prefix) :]] = handle.get_tensor(key)
    return state


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token (right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask * positions).argmax(dim=1)


def unwrap(model):
    """The underlying transformers model under DDP (``.module``) and PEFT wrappers."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def last_token_rewards(model, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's reward head (oracle, DRDO student) on each row's last real token of the final
    hidden states ``hidden`` (B, T, H): (B,)."""
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    return unwrap(model).reward_head(last).squeeze(-1)


def head_rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``last_token_rewards`` from the model's own forward (so DDP and PEFT wrappers do their
    work), asked for one position of logits: the LM head does not run over the sequence."""
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        logits_to_keep=1,
        output_hidden_states=True,
        use_cache=False,
    )
    return last_token_rewards(model, out.hidden_states[-1], attention_mask)


def model_dtype(name: str) -> torch.dtype:
    """fp32 unless the user asks otherwise (bf16 matmul on CPU is ~400x slower)."""
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
