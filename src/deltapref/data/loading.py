"""Read preference data from JSONL / JSON / Parquet / a ``datasets`` directory / a hub id,
normalize it with an adapter, validate every row, and write datasets atomically."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import datasets

from .adapters import ADAPTERS, detect_format
from .schema import DataError, ValidationReport, is_ranked, validate_pair, validate_ranked

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_records(source: str, split: str = "train") -> Iterator[tuple[int, object]]:
    """Yield ``(row_number, raw_record)`` with 1-based row numbers (JSONL: the line number)."""
    path = Path(source)
    name = path.name.lower()
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataError(f"has no split {split!r} (has {list(loaded)})", source=source)
                loaded = loaded[split]
            yield from enumerate(loaded, start=1)
            return
        raise DataError("is a directory but not a saved `datasets` dataset", source=source)
    if path.exists():
        if name.endswith((".jsonl", ".jsonl.gz")):
            with _open_text(path) as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as error:
                        raise DataError(
                            f"is not valid JSON ({error.msg} at column {error.colno})", source=source, row=number
                        ) from None
        elif name.endswith((".json", ".json.gz")):
            with _open_text(path) as handle:
                try:
                    payload = json.load(handle)
                except json.JSONDecodeError as error:
                    raise DataError(f"is not valid JSON ({error.msg} at line {error.lineno})", source=source) from None
            if isinstance(payload, dict) and isinstance(payload.get("data"), list):
                payload = payload["data"]
            if not isinstance(payload, list):
                raise DataError("must hold a JSON list of rows (or {'data': [...]})", source=source)
            yield from enumerate(payload, start=1)
        elif name.endswith(".parquet"):
            yield from enumerate(datasets.Dataset.from_parquet(str(path)), start=1)
        else:
            raise DataError(f"has an unknown extension; use one of {', '.join(FILE_SUFFIXES)}", source=source)
        return
    hub = parse_hub_id(source)
    if hub:
        name, config, hub_split = hub
        yield from enumerate(datasets.load_dataset(name, config, split=hub_split or split), start=1)
        return
    raise DataError("does not exist", source=source)


def parse_hub_id(source: str) -> tuple[str, str | None, str | None] | None:
    """``owner/name[:config][@split]`` -> (name, config, split); None for anything else."""
    name, _, split = source.partition("@")
    name, _, config = name.partition(":")
    if (
        name.count("/") != 1
        or name.startswith((".", "/"))
        or "{" in name
        or name.endswith(FILE_SUFFIXES)
        or Path(name).exists()
    ):
        return None
    return name, config or None, split or None


def _kind(value) -> str:
    return "messages" if isinstance(value, list) else type(value).__name__


def load_preferences(
    source: str, *, format: str = "auto", split: str = "train", skip_bad_rows: bool = False, limit: int | None = None
) -> tuple[datasets.Dataset, ValidationReport]:
    """Load, normalize and validate a preference dataset.

    Returns the normalized ``datasets.Dataset`` and a report of kept/skipped rows. A bad row
    raises :class:`DataError` (file, row, field) unless ``skip_bad_rows``, in which case it is
    counted in the report with its reason.
    """
    if format != "auto" and format not in ADAPTERS:
        raise DataError(f"unknown format {format!r}; choose from auto, {', '.join(ADAPTERS)}")
    report = ValidationReport(source=source)
    rows: list[dict] = []
    kinds: dict[str, tuple[str, int]] = {}
    adapter = None if format == "auto" else ADAPTERS[format]
    for number, raw in read_records(source, split):
        try:
            if not isinstance(raw, dict):
                raise DataError(f"must be a JSON object, got {type(raw).__name__}")
            if adapter is None:
                adapter = ADAPTERS[detect_format(raw)]
            row = adapter(raw)
            (validate_ranked if is_ranked(row) else validate_pair)(row)
            for name in ("prompt", "chosen", "rejected"):
                if name in row:
                    first = kinds.setdefault(name, (_kind(row[name]), number))
                    if first[0] != _kind(row[name]):
                        raise DataError(
                            f"is {_kind(row[name])} but row {first[1]} holds {first[0]}; one column must hold one kind",
                            field=name,
                        )
        except DataError as error:
            error = DataError(error.reason, source=source, row=number, field=error.field)
            if not skip_bad_rows:
                raise error from None
            report.skip(error)
            continue
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    report.kept = len(rows)
    if not rows:
        raise DataError(f"holds no valid rows ({report.skipped} skipped)", source=source)
    return datasets.Dataset.from_list(rows), report


def _atomic_file(destination: Path, write) -> Path:
    """Call ``write(tmp_path)`` then move the result into place, so readers never see a
    half-written file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return destination


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    return _atomic_file(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_jsonl(rows, path: str | os.PathLike) -> Path:
    """Write rows as JSONL (``.gz`` compressed by suffix) atomically and deterministically: one
    object a line, keys in insertion order, no timestamps."""

    def write(tmp):
        with open(tmp, "wb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if str(path).endswith(".gz") else raw
            with io.TextIOWrapper(stream, encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return _atomic_file(Path(path), write)


def save_dataset(dataset: datasets.Dataset, destination: str | os.PathLike) -> Path:
    """Write a dataset atomically: ``.jsonl``/``.json``/``.parquet`` by suffix, else a
    ``save_to_disk`` directory."""
    destination = Path(destination)
    name = destination.name.lower()
    if name.endswith(".parquet"):
        return _atomic_file(destination, dataset.to_parquet)
    if name.endswith(".json"):
        return _atomic_file(
            destination, lambda tmp: Path(tmp).write_text(json.dumps(dataset.to_list(), ensure_ascii=False))
        )
    if name.endswith((".jsonl", ".jsonl.gz")):
        return write_jsonl(dataset, destination)
    if name.endswith(".gz"):
        raise ValueError(f"{destination}: only .jsonl.gz can be written compressed")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
    try:
        dataset.save_to_disk(str(tmp_dir / "data"))
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(tmp_dir / "data", destination)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return destination
