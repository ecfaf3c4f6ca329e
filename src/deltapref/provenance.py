"""Provenance: which model produced which data column, recorded in ``<data>.deltapref.json``
beside the data, and a short identity of a saved model."""

from __future__ import annotations

import json
from pathlib import Path


def meta_path(output: str | Path) -> Path:
    """Where the provenance of ``output``'s columns is kept."""
    output = Path(output)
    return output.with_name(output.name + ".deltapref.json")


def read_meta(source: str | Path) -> dict:
    """The recorded provenance of ``source``'s columns (empty when none was recorded)."""
    path = meta_path(source)
    return json.loads(path.read_text()) if path.exists() else {"columns": {}}


def write_meta(output: str | Path, meta: dict) -> None:
    meta_path(output).write_text(json.dumps(meta, indent=2) + "\n")


def describe(path: str | Path) -> dict:
    """A short identity of a saved model, recorded beside the columns it produced."""
    path = Path(path)
    identity = {"path": str(path.resolve()) if path.exists() else str(path)}
    config = path / "config.json"
    if config.exists():
        identity["architectures"] = json.loads(config.read_text()).get("architectures")
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if weights:
        stat = weights[0].stat()
        identity["weights"] = {"file": weights[0].name, "bytes": stat.st_size, "mtime": int(stat.st_mtime)}
    return identity
