"""Re-read a published claims table with the current verdicts (``deltapref.study.verdicts``):
each row's 95% interval over n seeds gives its mean and SD exactly (a t interval is mean ±
t·SD/√n), which is all a verdict, a Bonferroni interval, a p-value and a power analysis use. Per
row, n values with that mean and SD stand in for the seeds, and the study's own ``rows_of``
decides primary / secondary, corrections and verdicts. The table's comparison and verdict
columns are rewritten in place; the rows also go to a JSON file.

    python scripts/reverdict_claims.py docs/RESULTS.md docs/study-claims.json 5

Used once, 2026-12-06, on the table of the 2026-12-03 study (its per-seed numbers were not kept);
a study run writes its table with these verdicts directly.
"""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from deltapref.evaluation.stats import t_interval, t_quantile
from deltapref.study.claims import Comparison, rows_of
from deltapref.study.markdown import END, START

INTERVAL = re.compile(r"([+-]?\d+\.\d+|[+-]?nan) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]")
UNIT = {"C3": "accuracy", "C4": "accuracy", "C5": "AUROC"}


def standing_in(mean: float, low: float, high: float, n: int) -> list[float]:
    """n values whose mean and SD give the interval [low, high] at 95%."""
    sd = (high - low) / 2 / t_quantile(n - 1) * math.sqrt(n)
    z = np.arange(n) - (n - 1) / 2
    return (mean + sd * z / z.std(ddof=1)).tolist()


def comparison(cells: list[str], n: int) -> Comparison:
    claim, text, paper, ours = cells[:4]
    unit = UNIT.get(claim, "gold reward")
    threshold = 0.5 if unit == "AUROC" else 0.0
    outcomes = ("smaller", "larger") if "(madpo)" in text else ("reproduced", "not reproduced")
    found = INTERVAL.findall(ours)
    if not found or "nan" in found[-1][0]:
        summary = {"mean": float("nan"), "low": None, "high": None, "n": n, "why": cells[5].partition("(")[2][:-1]}
    else:
        mean, low, high = map(float, found[-1])
        summary = t_interval(standing_in(mean, low, high, n))
    return Comparison(claim, text, paper, ours, summary, threshold, outcomes, unit)


def main(results: Path, output: Path, n: int) -> None:
    text = results.read_text()
    section = text[text.index(START) : text.index(END)]
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| C"))
    last = max(i for i, line in enumerate(lines) if line.startswith("| C"))
    cells = [
        [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
        for line in lines[first : last + 1]
    ]
    rows = rows_of([comparison(c, n) for c in cells])
    lines[first : last + 1] = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    results.write_text(text.replace(section, "\n".join(lines) + "\n"))
    source = f"re-read from the 95% intervals of the table in {results} by scripts/reverdict_claims.py ({n} seeds)"
    output.write_text(json.dumps({"source": source, "n_seeds": n, "claims": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
