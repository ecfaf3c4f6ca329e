"""The report's tables: policies with CIs and win rates, scorers, accuracy by |score|, weights vs label noise."""

from __future__ import annotations


def _fmt(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def make_tables(results: dict, baselines: list[str]) -> list[tuple[str, list[str], list[list[str]]]]:
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
        head = [
            "scorer",
            "kind",
            "accuracy",
            "vs gold",
            "ECE",
            "mean |d(x,y,y)|",
            "mean |d(a,b)+d(b,a)|",
            "order dependence",
        ]
        rows = [
            [
                n,
                s["kind"],
                _fmt(s["accuracy"]),
                _fmt(s.get("gold_accuracy")),
                _fmt(s["ece"]),
                _fmt(s.get("mean_abs_d_same")),
                _fmt(s.get("mean_abs_antisymmetry")),
                _fmt(s.get("order_dependence"), 2)
                + (" (FLAGGED: order-insensitive)" if s.get("order_insensitive") else ""),
            ]
            for n, s in results["scorers"].items()
        ]
        caption = "Scorers (held-out pairs; a difference model's accuracy is order-balanced)"
        tables.append((caption, head, rows))
        buckets = [b["bucket"] for b in next(iter(results["scorers"].values()))["by_bucket"]]
        head = ["scorer"] + [f"|score| {b}" for b in buckets]
        rows = [
            [n] + [f"{_fmt(b['accuracy'])} (n={b['pairs']})" for b in s["by_bucket"]]
            for n, s in results["scorers"].items()
        ]
        tables.append(("Accuracy by |score| bucket", head, rows))
    if results.get("noise"):
        head = ["weights", "AUROC (label agrees with gold)", "mean weight, correct labels", "mean weight, wrong labels"]
        rows = [
            [n, _fmt(v["auroc"]), _fmt(v["mean_weight_correct"]), _fmt(v["mean_weight_wrong"])]
            for n, v in results["noise"].items()
        ]
        wrong = next(iter(results["noise"].values()))
        caption = (
            f"Weights vs label noise (train pairs; {wrong['wrong_labels']} of {wrong['pairs']} labels disagree "
            "with gold)"
        )
        tables.append((caption, head, rows))
    return tables
