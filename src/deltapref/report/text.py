"""The text forms every report writes (run report, sweep, claims study): a markdown table and
an estimate as ``mean [low, high]``."""

from __future__ import annotations


def markdown_table(head: list[str], rows: list[list]) -> list[str]:
    """A markdown table's lines; a ``|`` inside a cell is escaped."""

    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return [cells(head), "|" + "---|" * len(head), *map(cells, rows)]


def estimate(summary: dict, digits: int = 3, sign: str = "") -> str:
    """``mean [low, high]`` of a summary with those keys (just the mean when it has no interval);
    ``sign="+"`` signs them, for a difference."""
    f = f"{sign}.{digits}f"
    if summary.get("low") is None:
        return f"{summary['mean']:{f}}"
    return f"{summary['mean']:{f}} [{summary['low']:{f}}, {summary['high']:{f}}]"
