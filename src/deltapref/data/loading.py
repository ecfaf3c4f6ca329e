"""Read preference data from JSONL / JSON / Parquet / a ``datasets`` directory / a hub id,
normalize it with an adapter and validate every row (writing it: ``data.writing``)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import datasets

from deltapref.data.adapters import ADAPTERS, detect_format
from deltapref.data.schema import DataError, ValidationReport, check_numbers, is_ranked, validate_pair, validate_ranked
from deltapref.data.tables import TABLE_ERRORS, rows_as_dataset

EMPTY = ("is empty", "has only empty messages")  # validation reasons of an empty response
FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
TOO_DEEP = "is nested too deeply to be data (lists or objects thousands of levels deep)"


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if is_gzip(path) else open(path, encoding="utf-8")


def is_gzip(path: str | os.PathLike) -> bool:
    """A path named as gzip-compressed (``.gz`` in any letter case)."""
    return str(path).lower().endswith(".gz")


class RepeatedKey(ValueError):
    """A JSON object that names one key twice (the last value would silently win)."""


def _unique_keys(pairs: list) -> dict:
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RepeatedKey(f"repeats the key(s) {', '.join(map(repr, repeated))}")
    return dict(pairs)


def read_records(source: str, split: str = "train") -> Iterator[tuple[int, object]]:
    """Yield ``(row_number, raw_record)`` with 1-based row numbers (JSONL: the line number). A
    file that cannot be read (corrupt compression, bad encoding, broken Parquet) or a hub id that
    does not load raises :class:`DataError`."""
    try:
        yield from _records(source, split)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
        raise DataError(f"cannot be read ({type(error).__name__}: {str(error)[:200]})", source=source) from None


def _jsonl_records(path: Path, source: str) -> Iterator[tuple[int, object]]:
    """A JSONL file's rows, numbered by line (blank lines skipped)."""
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line, object_pairs_hook=_unique_keys)
            except RepeatedKey as error:
                raise DataError(str(error), source=source, row=number) from None
            except json.JSONDecodeError as error:
                raise DataError(
                    f"is not valid JSON ({error.msg} at column {error.colno})", source=source, row=number
                ) from None
            except RecursionError:
                raise DataError(TOO_DEEP, source=source, row=number) from None


def _records(source: str, split: str) -> Iterator[tuple[int, object]]:
    path = Path(source)
    name = path.name.lower()
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            try:
                loaded = datasets.load_from_disk(str(path))
            except (*TABLE_ERRORS, OSError, KeyError) as error:
                raise DataError(f"is not a readable saved dataset ({str(error)[:200]})", source=source) from None
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataError(f"has no split {split!r} (has {list(loaded)})", source=source)
                loaded = loaded[split]
            yield from enumerate(loaded, start=1)
            return
        raise DataError("is a directory but not a saved `datasets` dataset", source=source)
    if path.exists():
        if name.endswith((".jsonl", ".jsonl.gz")):
            yield from _jsonl_records(path, source)
        elif name.endswith((".json", ".json.gz")):
            with _open_text(path) as handle:
                try:
                    payload = json.load(handle, object_pairs_hook=_unique_keys)
                except RepeatedKey as error:
                    raise DataError(str(error), source=source) from None
                except json.JSONDecodeError as error:
                    raise DataError(f"is not valid JSON ({error.msg} at line {error.lineno})", source=source) from None
                except RecursionError:
                    raise DataError(TOO_DEEP, source=source) from None
            if isinstance(payload, dict) and isinstance(payload.get("data"), list):
                payload = payload["data"]
            if not isinstance(payload, list):
                raise DataError("must hold a JSON list of rows (or {'data': [...]})", source=source)
            yield from enumerate(payload, start=1)
        elif name.endswith(".parquet"):
            try:
                table = datasets.Dataset.from_parquet(str(path))
            except (OSError, ValueError) as error:
                raise DataError(f"cannot be read as Parquet ({str(error)[:200]})", source=source) from None
            yield from enumerate(table, start=1)
        else:
            raise DataError(f"has an unknown extension; use one of {', '.join(FILE_SUFFIXES)}", source=source)
        return
    hub = parse_hub_id(source)
    if hub:
        name, config, hub_split = hub
        try:
            loaded = datasets.load_dataset(name, config, split=hub_split or split)
        except Exception as error:  # offline, unknown repo, bad config or split: all one line for the user
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise DataError(
                f"is not a local file or directory, and as a hub dataset id it did not load ({reason})", source=source
            ) from None
        yield from enumerate(loaded, start=1)
        return
    raise DataError("does not exist (not a local file or directory, nor a hub id like owner/name)", source=source)


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


def _check_row(row: dict, number: int, kinds: dict, numeric_columns, first_with: dict) -> None:
    """One normalized row: a valid pair or ranked list, each text column holding one kind (text
    or messages) in every row, and finite numbers in ``numeric_columns`` once a row has them."""
    (validate_ranked if is_ranked(row) else validate_pair)(row)
    for name in ("prompt", "chosen", "rejected"):
        if name in row:
            first = kinds.setdefault(name, (_kind(row[name]), number))
            if first[0] != _kind(row[name]):
                raise DataError(
                    f"is {_kind(row[name])} but row {first[1]} holds {first[0]}; one column must hold one kind",
                    field=name,
                )
    for name in numeric_columns:
        if row.get(name) is not None:
            check_numbers(row[name], name)
            first_with.setdefault(name, number)
        elif name in first_with:
            raise DataError(f"is missing (row {first_with[name]} has it)", field=name)


def _check_complete(rows: list[dict], report: ValidationReport, numeric_columns, first_with: dict) -> None:
    """Refuse a load that kept no rows, or whose numeric column starts after the first rows."""
    source = report.source
    if not rows:
        first = f"; first: {report.examples[0]}" if report.examples else ""
        reasons = ", ".join(f"{n} x {reason}" for reason, n in report.reasons.most_common(3))
        raise DataError(f"holds no valid rows ({report.skipped} skipped: {reasons or 'no rows'}{first})", source=source)
    missing = [n for n in numeric_columns if n in first_with and any(r.get(n) is None for r in rows)]
    if missing:  # a column that starts after row 1: rows before it lack it
        raise DataError(
            f"column {missing[0]} is missing in some rows (first present in row {first_with[missing[0]]})",
            source=source,
        )


def _row_key(row: dict) -> bytes:
    """A 16-byte digest of a row's texts: repeats are found without holding every text twice."""
    text = json.dumps([row.get(k) for k in ("prompt", "chosen", "rejected", "responses")], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def load_preferences(
    source: str,
    *,
    format: str = "auto",
    split: str = "train",
    skip_bad_rows: bool = False,
    limit: int | None = None,
    numeric_columns=(),
    drop_duplicates: bool = False,
    skip_empty: bool = True,
    pairs_for: str | None = None,
) -> tuple[datasets.Dataset, ValidationReport]:
    """Load, normalize and validate a preference dataset.

    Returns the normalized ``datasets.Dataset`` and a report of kept/skipped rows. A bad row
    raises :class:`DataError` (file, row, field) unless ``skip_bad_rows``, in which case it is
    counted in the report with its reason. ``numeric_columns`` (those a run reads, e.g. a custom
    coefficient column) must hold finite numbers (or lists of them) in every row. Repeated rows
    are counted, and dropped with ``drop_duplicates``. A pair whose chosen or rejected response
    is empty (HH-RLHF has some) is legal data but nothing to learn from: it is skipped and counted
    unless ``skip_empty`` is off. ``pairs_for``: the command taking pairs only (refuses ranked lists).
    """
    _check_call(format, limit)
    report = ValidationReport(source=source)
    rows: list[dict] = []
    numbers: list[int] = []
    kinds: dict[str, tuple[str, int]] = {}
    seen: set[bytes] = set()
    first_with: dict[str, int] = {}
    adapter = None if format == "auto" else ADAPTERS[format]
    for number, raw in read_records(source, split):
        try:
            if not isinstance(raw, dict):
                raise DataError(f"must be a JSON object, got {type(raw).__name__}")
            adapter = adapter or ADAPTERS[detect_format(raw)]
            row = adapter(raw)
            _check_row(row, number, kinds, numeric_columns, first_with)
        except DataError as error:
            error = DataError(error.reason, source=source, row=number, field=error.field)
            empty = error.field in ("chosen", "rejected") and error.reason in EMPTY
            if not (skip_bad_rows or (skip_empty and empty)):
                raise error from None
            report.skip(error)
            continue
        key = _row_key(row)
        if key in seen:
            report.duplicates += 1
            if drop_duplicates:
                continue
        seen.add(key)
        rows.append(row)
        numbers.append(number)
        if limit is not None and len(rows) >= limit:
            break
    report.kept = len(rows)
    report.duplicates_dropped = drop_duplicates
    _check_complete(rows, report, numeric_columns, first_with)
    if pairs_for and rows and "responses" in rows[0]:
        raise DataError(f"holds ranked lists (prompt, responses, scores); {pairs_for} takes pairs", source=source)
    return rows_as_dataset(rows, numbers, source), report


def _check_call(format: str, limit: int | None) -> None:
    if format != "auto" and format not in ADAPTERS:
        raise DataError(f"unknown format {format!r}; choose from auto, {', '.join(ADAPTERS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a count >= 1 (None: every row), got {limit!r}")
