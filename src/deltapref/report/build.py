"""The written report of a pipeline run: results table (mean reward ± 95% CI, win rates against
baselines), scorer accuracies and the by-|score| table, and PNG plots (training curves, reward
bars with CIs, coefficient histograms, accuracy vs |score|), as ``report.md``, a self-contained
``report.html`` and ``results.json``. Every number is computed from the run's artifacts."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from deltapref.artifacts.outputs import write_text
from deltapref.report.collect import collect
from deltapref.report.options import ReportOptions
from deltapref.report.plots import make_plots
from deltapref.report.tables import make_tables
from deltapref.report.text import markdown_table


def build_report(output_dir: str | Path, stages: dict, options: ReportOptions) -> dict:
    """Write ``report.md``, ``report.html``, ``results.json`` and the PNGs into ``output_dir/report``."""
    out = Path(output_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    results = collect(stages, options)
    baselines = [b for b in options.baseline_names if b in results["policies"]]
    plots = make_plots(results, out)
    tables = make_tables(results, baselines)
    title = options.title
    md = [f"# {title}", ""]

    for caption, head, rows in tables:
        md += [f"## {caption}", "", *markdown_table(head, rows), ""]
    md += [f"![{caption}]({name})" for name, caption in plots]
    write_text(out / "report.md", "\n".join(md) + "\n")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%;height:auto}"
        "table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f3f3f3}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for caption, head, rows in tables:
        parts.append(
            f"<h2>{html.escape(caption)}</h2><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr>"
        )
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    for name, caption in plots:
        data = base64.b64encode((out / name).read_bytes()).decode()
        parts.append(
            f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
        )
    parts.append("</body></html>")
    write_text(out / "report.html", "\n".join(parts))
    slim = {
        **results,
        "coefficients": {k: {"mean": float(np.mean(v)), "n": len(v)} for k, v in results["coefficients"].items()},
    }
    slim.pop("label_correct", None)
    write_text(out / "results.json", json.dumps(slim, indent=2) + "\n")
    print("\n".join(md[: md.index("") + 1] + [line for line in md if line.startswith("|") or line.startswith("##")]))
    print(f"report: {out / 'report.html'}")
    return results
