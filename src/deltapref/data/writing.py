"""Write datasets atomically and deterministically (JSONL, gzip-compressed JSONL, JSON, Parquet or
a saved ``datasets`` directory, by the output's name), each with its provenance sidecar."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import datasets

from deltapref.artifacts.outputs import atomic_file, claim_output, remove_output
from deltapref.data.loading import is_gzip
from deltapref.errors import OutputError
from deltapref.models.provenance import write_meta


def write_jsonl(rows, path: str | os.PathLike) -> Path:
    """Write rows as JSONL (``.gz`` compressed by suffix) atomically and deterministically: one
    object a line, keys in insertion order, no timestamps."""

    def write(tmp):
        with open(tmp, "wb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if is_gzip(path) else raw
            with io.TextIOWrapper(stream, encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return atomic_file(Path(path), write)


WRITTEN_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


def check_data_output(destination: str | os.PathLike, option: str = "--output") -> Path:
    """``destination`` if deltapref can write data there: a file named ``.jsonl``, ``.jsonl.gz``,
    ``.json`` or ``.parquet`` (any letter case), or a name without an extension (a saved
    ``datasets`` directory); else one line, before any work."""
    destination = Path(destination)
    name = destination.name.lower()
    if not name.endswith(WRITTEN_SUFFIXES) and Path(name).suffix:
        raise OutputError(
            f"{option} {destination}: deltapref writes {', '.join(WRITTEN_SUFFIXES)}, or a saved dataset directory "
            "(a name without an extension)"
        )
    return destination


def save_dataset(
    dataset: datasets.Dataset,
    destination: str | os.PathLike,
    command: str,
    *,
    overwrite: bool = False,
    meta: dict | None = None,
    inputs=(),
) -> Path:
    """Write a dataset atomically: ``.jsonl``/``.json``/``.parquet`` by suffix, else a
    ``save_to_disk`` directory; then its provenance sidecar (``meta``, default: no columns),
    naming ``command`` as its maker. ``outputs.claim_output`` decides whether it may be replaced."""
    destination = check_data_output(destination)
    claim_output(destination, command, inputs=inputs, overwrite=overwrite, replaced_whole=True)
    name = destination.name.lower()
    if name.endswith(".parquet"):
        atomic_file(destination, dataset.to_parquet)
    elif name.endswith(".json"):
        atomic_file(destination, lambda tmp: Path(tmp).write_text(json.dumps(dataset.to_list(), ensure_ascii=False)))
    elif name.endswith((".jsonl", ".jsonl.gz")):
        write_jsonl(dataset, destination)
    else:
        tmp_dir = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
        try:
            dataset.save_to_disk(str(tmp_dir / "data"))
            remove_output(destination)
            os.replace(tmp_dir / "data", destination)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    write_meta(destination, meta or {"columns": {}}, command)
    return destination
