"""The report of a pipeline run: results table (mean reward ± 95% CI, win rates against
baselines), scorer accuracies and the by-|score| table, and PNG plots (training curves, reward
bars with CIs, coefficient histograms, accuracy vs |score|), as ``report.md``, a self-contained
``report.html`` and ``results.json``. Every number is computed from the run's artifacts."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .coefficients import SOURCES, coefficients_of_rows  # noqa: E402
from .data.loading import read_records  # noqa: E402
from .evaluation.completions import batched_reward, read_completions  # noqa: E402
from .evaluation.judges import RewardJudge, compare  # noqa: E402
from .evaluation.stats import bootstrap_ci  # noqa: E402


def _policy_name(stage: str) -> str:
    return stage[4:] if stage.startswith("gen-") else stage


def collect(stages: dict, options: dict) -> dict:
    """Compute every number the report shows from the stages' artifacts."""
    reward_spec = options.get("reward", "gold")
    if reward_spec != "gold":
        reward_spec = stages[reward_spec]["dir"] if reward_spec in stages else reward_spec
    rewards = batched_reward(reward_spec)
    completions = {
        _policy_name(n): read_completions(s["args"]["output"]) for n, s in stages.items() if s["command"] == "generate"
    }
    results = {"reward": options.get("reward", "gold"), "policies": {}, "scorers": {}, "coefficients": {}}
    values = {}
    for name, rows in completions.items():
        values[name] = rewards([r["prompt"] for r in rows], [r["completion"] for r in rows])
        entry = bootstrap_ci(values[name], seed=options.get("seed", 0))
        entry["mean_length"] = float(np.mean([len(r["completion"].split()) for r in rows]))
        summary_dir = stages.get(name, {}).get("dir")
        if summary_dir and (Path(summary_dir) / "train_summary.json").exists():
            summary = json.loads((Path(summary_dir) / "train_summary.json").read_text())
            entry.update(
                steps=summary["steps"],
                train_loss=summary["train_loss"],
                steps_per_second=summary["steps_per_second"],
                peak_rss_mb=summary["peak_rss_mb"],
                curve=[(e["step"], e["loss"]) for e in summary["log_history"] if "loss" in e],
            )
        results["policies"][name] = entry
    tie = options.get("tie_threshold", 0.0)
    for baseline in options.get("baselines", []):
        if baseline not in completions:
            continue
        for name in completions:
            if len(values[name]) != len(values[baseline]):
                continue
            pair = {"a": values[name], "b": values[baseline]}
            judge = RewardJudge(lambda _, ref, pair=pair: pair[ref[0]][ref[1]], tie, name=str(results["reward"]))
            n = len(values[name])
            outcome = compare(range(n), [("a", i) for i in range(n)], [("b", i) for i in range(n)], [judge])
            results["policies"][name][f"vs_{baseline}"] = {k: outcome[k] for k in ("win", "tie", "loss", "win_rate")}
    for name, stage in stages.items():
        path = Path(stage["dir"]) / "scorer_eval.json"
        if stage["command"] == "train-scorer" and path.exists():
            summary = json.loads(path.read_text())
            if "eval" in summary:
                results["scorers"][name] = {"kind": summary["kind"], **summary["eval"]}
        if stage["command"] == "score":
            rows = [row for _, row in read_records(stage["args"]["output"])]
            alpha = options.get("alpha", 1.0)
            for source in ("reward", "difference"):
                if rows and all(c in rows[0] for c in SOURCES[source].columns):
                    results["coefficients"][source] = coefficients_of_rows(source, rows, alpha)
    return results


def _plots(results: dict, out: Path) -> list[tuple[str, str]]:
    made = []

    def save(fig, name: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append((name, caption))

    policies = results["policies"]
    curves = {n: p["curve"] for n, p in policies.items() if p.get("curve")}
    if curves:
        cols = min(4, len(curves))
        rows = math.ceil(len(curves) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, (name, curve) in zip(axes.flat, curves.items()):
            steps, losses = zip(*curve)
            ax.plot(steps, losses, lw=1.2)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(curves) :]:
            ax.axis("off")
        fig.suptitle("training loss by step")
        save(fig, "training_curves.png", "Training curves")
    if policies:
        names = list(policies)
        means = [policies[n]["mean"] for n in names]
        errors = [
            [policies[n]["mean"] - policies[n]["low"] for n in names],
            [policies[n]["high"] - policies[n]["mean"] for n in names],
        ]
        fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(names)), 3.2))
        ax.bar(names, means, yerr=errors, capsize=3, color="#4c72b0")
        ax.set_ylabel(f"mean {results['reward']} reward")
        ax.set_title("policy reward with 95% bootstrap CI")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        save(fig, "rewards.png", "Mean reward by method")
    if results["coefficients"]:
        fig, ax = plt.subplots(figsize=(5, 3))
        for name, values in results["coefficients"].items():
            ax.hist(values, bins=30, alpha=0.55, label=name, range=(0, 1))
        ax.set_xlabel("coefficient σ(Δ)^α")
        ax.set_ylabel("pairs")
        ax.legend()
        ax.set_title("reward-difference coefficients (train pairs)")
        save(fig, "coefficients.png", "Coefficient histograms")
    if results["scorers"]:
        fig, ax = plt.subplots(figsize=(5, 3))
        for name, scorer in results["scorers"].items():
            buckets = [b for b in scorer["by_bucket"] if b["accuracy"] is not None]
            ax.plot([b["bucket"] for b in buckets], [b["accuracy"] for b in buckets], marker="o", label=name)
        ax.set_xlabel("|score| bucket")
        ax.set_ylabel("held-out accuracy")
        ax.set_title("accuracy vs |score| (RDO Table 15)")
        ax.legend()
        save(fig, "accuracy_by_score.png", "Accuracy by |score|")
    return made


def _fmt(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def _tables(results: dict, baselines: list[str]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    head = (
        ["method", f"mean {results['reward']} reward", "95% CI"]
        + [f"win rate vs {b}" for b in baselines]
        + ["steps/s", "train loss"]
    )
    rows = []
    for name, p in results["policies"].items():
        wins = [
            (
                f"{p[f'vs_{b}']['win_rate']:.3f} ({p[f'vs_{b}']['win']}/{p[f'vs_{b}']['tie']}/{p[f'vs_{b}']['loss']})"
                if f"vs_{b}" in p
                else "—"
            )
            for b in baselines
        ]
        rows.append(
            [name, _fmt(p["mean"]), f"[{_fmt(p['low'])}, {_fmt(p['high'])}]"]
            + wins
            + [_fmt(p.get("steps_per_second"), 1), _fmt(p.get("train_loss"))]
        )
    tables.append(("Policies (win rate = (wins + ties/2)/n; counts are win/tie/loss)", head, rows))
    if results["scorers"]:
        head = ["scorer", "kind", "accuracy", "vs gold", "ECE", "mean |d(x,y,y)|", "mean |d(a,b)+d(b,a)|"]
        rows = [
            [
                n,
                s["kind"],
                _fmt(s["accuracy"]),
                _fmt(s.get("gold_accuracy")),
                _fmt(s["ece"]),
                _fmt(s.get("mean_abs_d_same")),
                _fmt(s.get("mean_abs_antisymmetry")),
            ]
            for n, s in results["scorers"].items()
        ]
        tables.append(("Scorers (held-out pairs)", head, rows))
        buckets = [b["bucket"] for b in next(iter(results["scorers"].values()))["by_bucket"]]
        head = ["scorer"] + [f"|score| {b}" for b in buckets]
        rows = [
            [n] + [f"{_fmt(b['accuracy'])} (n={b['pairs']})" for b in s["by_bucket"]]
            for n, s in results["scorers"].items()
        ]
        tables.append(("Accuracy by |score| bucket", head, rows))
    return tables


def build_report(output_dir: str | Path, stages: dict, options: dict) -> dict:
    """Write ``report.md``, ``report.html``, ``results.json`` and the PNGs into ``output_dir/report``."""
    out = Path(output_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    results = collect(stages, options)
    baselines = [b for b in options.get("baselines", []) if b in results["policies"]]
    plots = _plots(results, out)
    tables = _tables(results, baselines)
    title = options.get("title", "deltapref run report")
    md = [f"# {title}", ""]

    def cells(values):
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    for caption, head, rows in tables:
        md += [f"## {caption}", "", cells(head), "|" + "---|" * len(head)]
        md += [cells(r) for r in rows] + [""]
    md += [f"![{caption}]({name})" for name, caption in plots]
    (out / "report.md").write_text("\n".join(md) + "\n")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
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
    (out / "report.html").write_text("\n".join(parts))
    slim = {
        **results,
        "coefficients": {k: {"mean": float(np.mean(v)), "n": len(v)} for k, v in results["coefficients"].items()},
    }
    (out / "results.json").write_text(json.dumps(slim, indent=2) + "\n")
    print("\n".join(md[: md.index("") + 1] + [line for line in md if line.startswith("|") or line.startswith("##")]))
    print(f"report: {out / 'report.html'}")
    return results
