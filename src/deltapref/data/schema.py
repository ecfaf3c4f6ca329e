"""The normalized preference schema (DESIGN.md section 3) and row validation.

A pairwise row holds ``prompt``, ``chosen`` and ``rejected``; each is a string or a list of chat
messages ``{"role", "content"}``. A ranked row (HH+ style, for RRHF) holds ``prompt``,
``responses`` and ``scores``. Validation never drops a row silently: it either raises a
:class:`DataError` naming the file, row and field, or, when the caller asks to skip bad rows,
counts the skip and its reason in a :class:`ValidationReport`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from deltapref.columns import is_numeric_column
from deltapref.errors import DeltaprefError

PAIR_FIELDS = ("prompt", "chosen", "rejected")
RANKED_FIELDS = ("prompt", "responses", "scores")
# columns deltapref knows to be numeric: checked in every row that has them
ROLES = ("system", "user", "assistant", "tool")


class DataError(DeltaprefError):
    """A bad input row: says where (file, row, field) and what is wrong."""

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None, field: str | None = None):
        self.source, self.row, self.field, self.reason = source, row, field, message
        where = [
            p for p in (source, f"row {row}" if row is not None else None, f"field '{field}'" if field else None) if p
        ]
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


@dataclass
class ValidationReport:
    """What loading kept and what it skipped (with reasons and the first few locations)."""

    source: str
    kept: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicates_dropped: bool = False

    def skip(self, error: DataError) -> None:
        self.skipped += 1
        self.reasons[f"{error.field or 'row'}: {error.reason}"] += 1
        if len(self.examples) < 5:
            self.examples.append(str(error))

    def summary(self) -> str:
        lines = [f"{self.source}: kept {self.kept} rows, skipped {self.skipped}"]
        if self.duplicates:
            what = "dropped" if self.duplicates_dropped else "kept (--drop_duplicates drops them)"
            lines.append(f"  {self.duplicates} repeated row(s) {what}")
        lines += [f"  skipped {n} x {reason}" for reason, n in self.reasons.most_common()]
        lines += [f"  e.g. {example}" for example in self.examples]
        return "\n".join(lines)


def _check_unicode(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataError(
            f"holds an unpaired surrogate ({text[error.start]!r} at {error.start}): not valid Unicode", field=name
        ) from None


def check_text_or_messages(value: Any, name: str, *, allow_empty: bool = False) -> None:
    """Text, or a list of chat messages ``{"role", "content"}`` whose content is text; text that
    is valid Unicode (no unpaired surrogate, which no tokenizer or file can hold)."""
    if isinstance(value, str):
        if not allow_empty and not value.strip():
            raise DataError("is empty", field=name)
        _check_unicode(value, name)
        return
    if isinstance(value, list):
        if not value and not allow_empty:
            raise DataError("is an empty message list", field=name)
        for i, message in enumerate(value):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise DataError(f"message {i} must be a dict with 'role' and 'content'", field=name)
            if message["role"] not in ROLES:
                raise DataError(f"message {i} has unknown role {message['role']!r}", field=name)
            if not isinstance(message["content"], str):
                raise DataError(f"message {i} content must be a string", field=name)
            _check_unicode(message["content"], name)
        if not allow_empty and not any(m["content"].strip() for m in value):
            raise DataError("has only empty messages", field=name)
        return
    raise DataError(f"must be a string or a list of chat messages, got {type(value).__name__}", field=name)


def check_numbers(value: Any, name: str) -> None:
    """A finite number, or a list of finite numbers (e.g. an ensemble's rewards)."""
    if isinstance(value, list):
        if not value:
            raise DataError("is an empty list", field=name)
        for i, item in enumerate(value):
            _check_number(item, f"{name}[{i}]")
    else:
        _check_number(value, name)


def _check_number(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"must be a number, got {type(value).__name__}", field=name)
    try:
        float(value)
    except OverflowError:
        raise DataError("is too large for a floating-point number", field=name) from None
    if not math.isfinite(value):
        raise DataError(f"must be finite, got {value}", field=name)


def validate_pair(row: dict) -> dict:
    """Check one pairwise row; return it unchanged or raise :class:`DataError`."""
    for name in PAIR_FIELDS:
        if name not in row or row[name] is None:
            raise DataError("is missing", field=name)
    check_text_or_messages(row["prompt"], "prompt", allow_empty=True)
    check_text_or_messages(row["chosen"], "chosen")
    check_text_or_messages(row["rejected"], "rejected")
    if row["chosen"] == row["rejected"]:
        raise DataError("is identical to 'chosen'", field="rejected")
    for name, value in row.items():
        if value is None:
            continue
        if is_numeric_column(name):
            check_numbers(value, name)
    return row


def validate_ranked(row: dict) -> dict:
    """Check one ranked-list row (prompt, responses, scores)."""
    for name in RANKED_FIELDS:
        if name not in row or row[name] is None:
            raise DataError("is missing", field=name)
    check_text_or_messages(row["prompt"], "prompt", allow_empty=True)
    responses, scores = row["responses"], row["scores"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise DataError("must be a list of at least 2 responses", field="responses")
    for i, response in enumerate(responses):
        check_text_or_messages(response, f"responses[{i}]")
    if not isinstance(scores, list) or len(scores) != len(responses):
        raise DataError(f"must be a list of {len(responses)} numbers (one per response)", field="scores")
    for i, score in enumerate(scores):
        _check_number(score, f"scores[{i}]")
    return row


def is_ranked(row: dict) -> bool:
    return "responses" in row and "chosen" not in row
