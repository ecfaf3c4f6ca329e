"""Splits of preference data: disjoint random parts, cross-fitting folds, and DRDO's easy/hard splits by annotator
confidence and by normalized token edit distance between the two responses. *Easy* pairs are
above the median on both (confident annotators, clearly different responses), *hard* pairs below
the median on both; ties with a median go to neither, and the counts of every group are reported."""

from __future__ import annotations

import hashlib
import json

import numpy as np


def fold_of(row: dict, folds: int) -> int:
    """The cross-fitting fold of a pair: a stable hash of its prompt and responses modulo
    ``folds`` (the same pair lands in the same fold in any file and any order)."""
    key = json.dumps([row["prompt"], row["chosen"], row["rejected"]], sort_keys=True, ensure_ascii=False)
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % folds


def partition(rows: list, sizes: dict[str, int | None], seed: int = 0) -> dict[str, list]:
    """Disjoint random parts of ``rows`` (a seeded permutation, cut in the given order); a size
    of None takes the rest. Refuses sizes that do not fit."""
    fixed = sum(n for n in sizes.values() if n is not None)
    if fixed > len(rows) or list(sizes.values()).count(None) > 1:
        raise ValueError(f"parts {sizes} do not fit {len(rows)} rows (at most one part may take the rest)")
    order = np.random.default_rng(seed).permutation(len(rows))
    parts, start = {}, 0
    for name, size in sizes.items():
        end = start + (size if size is not None else len(rows) - fixed)
        parts[name] = [rows[i] for i in order[start:end]]
        start = end
    return parts


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token sequences (insert/delete/substitute cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, token in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token != other)))
        previous = current
    return previous[-1]


EDIT_TOKENS = 256  # responses are compared on their first tokens: the distance is quadratic in length


def normalized_edit_distance(a: list, b: list) -> float:
    """Edit distance over the first ``EDIT_TOKENS`` tokens of each, divided by the longer length
    (0 = identical, 1 = nothing shared)."""
    a, b = a[:EDIT_TOKENS], b[:EDIT_TOKENS]
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _text(value) -> str:
    return " ".join(m["content"] for m in value) if isinstance(value, list) else value


def split_by_difficulty(
    rows: list[dict], *, confidence_field: str = "confidence", tokenize=str.split
) -> tuple[dict[str, list[dict]], dict]:
    """Group pairs into ``easy``, ``hard`` and ``mixed``; returns the groups and a report with
    the medians and counts. Each row gains ``edit_distance`` (normalized)."""
    missing = [i + 1 for i, r in enumerate(rows) if not _is_number(r.get(confidence_field))]
    if missing:
        columns = sorted({key for row in rows[:100] for key in row})
        raise ValueError(
            f"rows {missing[:5]}{'...' if len(missing) > 5 else ''} have no numeric "
            f"'{confidence_field}' ({len(missing)} of {len(rows)}); splits need it on every row "
            f"(--confidence_field names it; columns here: {', '.join(columns)})"
        )
    rows = [
        dict(r, edit_distance=normalized_edit_distance(tokenize(_text(r["chosen"])), tokenize(_text(r["rejected"]))))
        for r in rows
    ]
    confidence_median = float(np.median([r[confidence_field] for r in rows]))
    distance_median = float(np.median([r["edit_distance"] for r in rows]))
    groups: dict[str, list[dict]] = {"easy": [], "hard": [], "mixed": []}
    for row in rows:
        confidence, distance = row[confidence_field], row["edit_distance"]
        if confidence > confidence_median and distance > distance_median:
            groups["easy"].append(row)
        elif confidence < confidence_median and distance < distance_median:
            groups["hard"].append(row)
        else:
            groups["mixed"].append(row)
    report = {
        "rows": len(rows),
        "confidence_median": confidence_median,
        "edit_distance_median": distance_median,
        "counts": {name: len(group) for name, group in groups.items()},
    }
    return groups, report
