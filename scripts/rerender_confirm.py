"""Re-render the confirmatory section of a results file from the run's committed summary (its
per-seed rewards are all a verdict, Holm's correction and a power analysis use):
``python scripts/rerender_confirm.py docs/RESULTS.md docs/study-confirm.json``."""

import json
import sys
from pathlib import Path

from deltapref.study.confirm import confirm_markdown
from deltapref.study.markdown import CONFIRM_MARKERS, write_section


def main(results: str, summary_path: str) -> None:
    summary = json.loads(Path(summary_path).read_text())
    for key in ("methods", "lr_grid", "learning_rates", "rewards"):  # JSON keys temperatures as text
        summary[key] = {float(t): v for t, v in summary[key].items()}
    summary["lr_grid"] = {t: {float(lr): v for lr, v in grid.items()} for t, grid in summary["lr_grid"].items()}
    write_section(Path(results), confirm_markdown(summary), CONFIRM_MARKERS)


if __name__ == "__main__":
    main(*sys.argv[1:3])
