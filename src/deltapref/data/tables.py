"""Rows as an Arrow-backed ``datasets.Dataset``, with the first row and column that cannot be
stored named in one line (a column whose type changes between rows, an integer past 64 bits,
text that is not valid Unicode) instead of pyarrow's traceback."""

from __future__ import annotations

import datasets
import pyarrow
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable

from deltapref.data.schema import DataError

TABLE_ERRORS = (pyarrow.ArrowException, TypeError, ValueError, OverflowError, UnicodeError, RecursionError)


def rows_as_dataset(rows: list[dict], numbers: list[int], source: str) -> datasets.Dataset:
    """``rows`` as a ``datasets.Dataset``; when they do not make a table (a column whose type
    changes between rows, an integer past 64 bits, text that is not valid Unicode), one
    :class:`DataError` naming the first row and column that breaks it."""
    try:  # not from_list: it hashed the whole table for a fingerprint, tripling the peak memory
        table = pyarrow.Table.from_pylist(rows)
        return datasets.Dataset(InMemoryTable(table), fingerprint=generate_random_fingerprint())
    except TABLE_ERRORS as error:
        row, column, reason = _first_breaking(rows, error)
        raise DataError(
            f"cannot be stored as a table column ({reason}): a column holds one type in every row, integers "
            "fit in 64 bits and text is valid Unicode",
            source=source,
            row=numbers[row] if row is not None else None,
            field=column,
        ) from None


def _first_breaking(rows: list[dict], error: Exception) -> tuple[int | None, str | None, str]:
    """(index of the first row, its column) that keeps a column from becoming one Arrow array,
    found by bisection over each column; the error's own text when no column alone fails."""
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def fails(values) -> Exception | None:
        try:
            pyarrow.array(values)
        except TABLE_ERRORS as failure:
            return failure
        return None

    for column in columns:
        values = [row.get(column) for row in rows]
        if fails(values) is None:
            continue
        low, high = 1, len(values)  # the shortest failing prefix has length in [low, high]
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if fails(values[:middle]) else (middle + 1, high)
        reason = str(fails(values[:high])).splitlines()[0][:160]
        return high - 1, str(column), reason
    return None, None, f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
