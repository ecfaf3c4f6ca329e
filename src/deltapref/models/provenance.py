"""Provenance: which model produced which data column, recorded in ``<data>.deltapref.json``
beside the data, and a short identity of a saved model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from deltapref.artifacts.outputs import write_text
from deltapref.artifacts.records import CROSS_FIT, listed_members, meta_path, output_identity, read_record
from deltapref.models.names import resolve


def read_meta(source: str | Path) -> dict:
    """The recorded provenance of ``source``'s columns (``{"columns": {}}`` when none was
    recorded); a broken sidecar is refused in one line naming it."""
    path = meta_path(source)
    if not path.is_file():
        return {"columns": {}}
    return read_record(path, "its provenance sidecar", {"columns": dict})


def write_meta(output: str | Path, meta: dict, command: str) -> None:
    """``meta`` (column provenance) as ``output``'s sidecar, naming ``command`` as its maker and
    the output it describes (by content: only then is the output deltapref's to replace)."""
    record = {**meta, "made_by": command, "output": output_identity(output)}
    write_text(meta_path(output), json.dumps(record, indent=2) + "\n")


def describe(path: str | Path) -> dict:
    """A short identity of a saved model, recorded beside the columns it produced."""
    path = Path(resolve(str(path)))
    identity = {"path": str(path.resolve()) if path.exists() else str(path)}
    config = path / "config.json"
    if config.exists():
        identity["architectures"] = json.loads(config.read_text()).get("architectures")
    folds = listed_members(path, CROSS_FIT) if path.is_dir() else None
    if folds:
        identity["cross_fit"] = [describe(member) for member in folds]
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if weights:
        stat = weights[0].stat()
        identity["weights"] = {"file": weights[0].name, "bytes": stat.st_size, "mtime": int(stat.st_mtime)}
    return identity


WEIGHT_FILES = ("*.safetensors", "*.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "added_tokens.json",
)


def files_sha256(directory: str | Path, patterns) -> str | None:
    """SHA-256 over the names and contents of ``directory``'s files matching ``patterns`` (None
    when it is not a local directory or holds none)."""
    directory = Path(resolve(str(directory)))
    files = sorted({f for p in patterns for f in directory.glob(p)}) if directory.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def reference_identity(model: str, tokenizer: str, tokenization) -> dict:
    """What reference log-probs depend on: the model's weights, the tokenizer, the truncation."""
    return {
        "model": describe(model),
        "weights_sha256": files_sha256(model, WEIGHT_FILES),
        "tokenizer_sha256": files_sha256(tokenizer, TOKENIZER_FILES),
        "tokenization": {k: getattr(tokenization, k) for k in ("max_length", "max_prompt_length", "prompt_truncation")},
    }


def identity_mismatch(recorded: dict, current: dict) -> str | None:
    """How a recorded reference identity differs from the current one (None if it matches)."""
    if recorded.get("weights_sha256") != current["weights_sha256"]:
        return f"the reference weights differ (recorded {recorded.get('model', {}).get('path')})"
    if recorded.get("tokenizer_sha256") != current["tokenizer_sha256"]:
        return "the tokenizer differs"
    if recorded.get("tokenization") != current["tokenization"]:
        return f"the truncation differs (recorded {recorded.get('tokenization')}, now {current['tokenization']})"
    return None


def machine() -> str:
    """What ran a measurement, read from this machine: usable CPU cores, the CPU's model name
    (Linux) or architecture, and the GPU when torch sees one."""
    import os
    import platform

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        name = models[0] if models else name
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cores} CPU cores ({name}){gpu}"
