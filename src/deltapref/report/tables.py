"""The report's tables: policies with CIs and win rates, how training moved them (and what DRDO's
student distilled), scorers, accuracy by |score|, weights vs label noise."""

from __future__ import annotations

Table = tuple[str, list[str], list[list[str]]]
ORDER_FLAG = " (FLAGGED: order-insensitive)"


def _fmt(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def _win_cell(policy: dict, baseline: str) -> str:
    versus = policy.get(f"vs_{baseline}")
    if versus is None:
        return "—"
    return f"{versus['win_rate']:.3f} ({versus['win']}/{versus['tie']}/{versus['loss']})"


def _loss_cell(policy: dict) -> str:
    """A run's final loss named by its objective: losses of different objectives are on different
    scales (IPO's squared margin against DPO's log-sigmoid), so the cell never stands alone."""
    if policy.get("train_loss") is None:
        return "—"
    return f"{_fmt(policy['train_loss'])} ({policy.get('objective', '?')})"


def _policy_table(results: dict, baselines: list[str]) -> Table:
    head = (
        ["method", f"mean {results['reward']} reward", "95% CI"]
        + [f"win rate vs {b}" for b in baselines]
        + ["mean length (words)", "steps/s", "train loss (its own objective's)"]
    )
    rows = [
        [name, _fmt(p["mean"]), f"[{_fmt(p['low'])}, {_fmt(p['high'])}]"]
        + [_win_cell(p, b) for b in baselines]
        + [_fmt(p.get("mean_length"), 1), _fmt(p.get("steps_per_second"), 1), _loss_cell(p)]
        for name, p in results["policies"].items()
    ]
    return "Policies (win rate = (wins + ties/2)/n; counts are win/tie/loss)", head, rows


def _movement(d: dict, side: str) -> str:
    first, last = d.get(f"logps_{side}_first"), d.get(f"logps_{side}_last")
    return "—" if first is None or last is None else f"{first:.1f} → {last:.1f}"


def _pair(d: dict, a: str, b: str, digits: int = 2) -> str:
    return "—" if d.get(a) is None else f"{_fmt(d[a], digits)} / {_fmt(d.get(b), digits)}"


def _training_table(policies: dict) -> Table:
    """How far each trained policy moved, and for DRDO what its student distilled (student vs
    oracle margins and how much the student's gaps track length), with the run's warnings."""
    head = ["method", "log π(chosen)", "log π(rejected)", "moved", "student / oracle margin"]
    head += ["corr(student, oracle)", "corr(Δ, Δlength) student / oracle", "warnings"]
    rows = []
    for name, p in policies.items():
        d = p.get("diagnostics")
        if not d:
            continue
        moved = "—" if d.get("relative_movement") is None else f"{d['relative_movement']:.1%}"
        rows.append(
            [name, _movement(d, "chosen"), _movement(d, "rejected"), moved]
            + [_pair(d, "student_margin_mean", "oracle_margin_mean", 3)]
            + [_fmt(d.get("corr_student_oracle"), 2), _pair(d, "corr_student_length", "corr_oracle_length")]
            + ["; ".join(p.get("warnings") or []) or "—"]
        )
    caption = (
        "Training (mean response log-probs, first → last logging window; moved = the larger change "
        "relative to the start; margins and correlations over the traced pairs)"
    )
    return caption, head, rows


def _scorer_table(scorers: dict) -> Table:
    head = ["scorer", "kind", "accuracy", "vs gold", "ECE"]
    head += ["mean |d(x,y,y)|", "mean |d(a,b)+d(b,a)|", "order dependence"]
    rows = [
        [
            n,
            s["kind"],
            _fmt(s["accuracy"]),
            _fmt(s.get("gold_accuracy")),
            _fmt(s["ece"]),
            _fmt(s.get("mean_abs_d_same")),
            _fmt(s.get("mean_abs_antisymmetry")),
            _fmt(s.get("order_dependence"), 2) + (ORDER_FLAG if s.get("order_insensitive") else ""),
        ]
        for n, s in scorers.items()
    ]
    return "Scorers (held-out pairs; a difference model's accuracy is order-balanced)", head, rows


def _bucket_table(scorers: dict) -> Table:
    buckets = [b["bucket"] for b in next(iter(scorers.values()))["by_bucket"]]
    head = ["scorer"] + [f"|score| {b}" for b in buckets]
    rows = [[n] + [f"{_fmt(b['accuracy'])} (n={b['pairs']})" for b in s["by_bucket"]] for n, s in scorers.items()]
    return "Accuracy by |score| bucket", head, rows


def _noise_table(noise: dict) -> Table:
    head = ["weights", "AUROC (label agrees with gold)", "mean weight, correct labels", "mean weight, wrong labels"]
    rows = [
        [n, _fmt(v["auroc"]), _fmt(v["mean_weight_correct"]), _fmt(v["mean_weight_wrong"])] for n, v in noise.items()
    ]
    first = next(iter(noise.values()))
    caption = (
        f"Weights vs label noise (train pairs; {first['wrong_labels']} of {first['pairs']} labels disagree with gold)"
    )
    return caption, head, rows


def make_tables(results: dict, baselines: list[str]) -> list[Table]:
    """Every table the run report holds, as (caption, header, rows), in report order."""
    tables = [_policy_table(results, baselines)] if results["policies"] else []
    if any(p.get("diagnostics") for p in results["policies"].values()):
        tables.append(_training_table(results["policies"]))
    if results["scorers"]:
        tables += [_scorer_table(results["scorers"]), _bucket_table(results["scorers"])]
    if results.get("noise"):
        tables.append(_noise_table(results["noise"]))
    return tables
