"""The report's PNG plots, drawn on plain ``matplotlib.figure.Figure`` objects (no pyplot, so
the caller's matplotlib backend and figure registry are left alone)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def figure(*grid: int, figsize: tuple[float, float]):
    """A figure and its axes (one axes, or a ``rows x cols`` array when ``grid`` is given)."""
    fig = Figure(figsize=figsize)
    return fig, (fig.subplots(*grid, squeeze=False) if grid else fig.subplots())


def interval_bars(ax, intervals: dict[str, dict], ylabel: str, title: str, colors=None) -> None:
    """One bar per name at its ``mean`` with an error bar from ``low`` to ``high``."""
    names = list(intervals)
    means = [intervals[n]["mean"] for n in names]
    errors = [[intervals[n]["mean"] - intervals[n]["low"] for n in names]]
    errors.append([intervals[n]["high"] - intervals[n]["mean"] for n in names])
    ax.bar(names, means, yerr=errors, capsize=3, color=colors or "#4c72b0")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def make_plots(results: dict, out: Path) -> list[tuple[str, str]]:
    made = []

    def save(fig, name: str, caption: str) -> None:
        save_figure(fig, out / name)
        made.append((name, caption))

    policies = results["policies"]
    curves = {n: p["curve"] for n, p in policies.items() if p.get("curve")}
    if curves:
        cols = min(4, len(curves))
        rows = math.ceil(len(curves) / cols)
        fig, axes = figure(rows, cols, figsize=(3.2 * cols, 2.4 * rows))
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
        fig, ax = figure(figsize=(max(5, 0.7 * len(policies)), 3.2))
        interval_bars(ax, policies, f"mean {results['reward']} reward", "policy reward with 95% bootstrap CI")
        save(fig, "rewards.png", "Mean reward by method")
    rdo = {n: v for n, v in results["coefficients"].items() if "madpo" not in n}
    if rdo:
        fig, ax = figure(figsize=(5, 3))
        for name, values in rdo.items():  # outlines: every source stays visible where they overlap
            ax.hist(values, bins=30, label=name, range=(0, 1), histtype="step", linewidth=1.5)
        ax.set_xlabel("coefficient σ(Δ)^α")
        ax.set_ylabel("pairs")
        ax.legend()
        ax.set_title("reward-difference coefficients (train pairs)")
        save(fig, "coefficients.png", "Coefficient histograms")
    if results.get("label_correct"):
        save(_weights_by_label(results), "coefficients_by_label.png", "Weights by label correctness")
    if results["scorers"]:
        fig, ax = figure(figsize=(5, 3))
        for name, scorer in results["scorers"].items():
            buckets = [b for b in scorer["by_bucket"] if b["accuracy"] is not None]
            ax.plot([b["bucket"] for b in buckets], [b["accuracy"] for b in buckets], marker="o", label=name)
        ax.set_xlabel("|score| bucket")
        ax.set_ylabel("held-out accuracy")
        ax.set_title("accuracy vs |score| (RDO Table 15)")
        ax.legend()
        save(fig, "accuracy_by_score.png", "Accuracy by |score|")
    return made


def _weights_by_label(results: dict):
    """Per weight source, the weights of pairs whose label agrees with gold against those whose label disagrees."""
    correct = np.asarray(results["label_correct"])
    sources = list(results["coefficients"])
    fig, axes = figure(1, len(sources), figsize=(3.2 * len(sources), 2.8))
    for ax, name in zip(axes[0], sources):
        values = np.asarray(results["coefficients"][name])
        for mask, label in ((correct, "label agrees with gold"), (~correct, "label disagrees")):
            ax.hist(values[mask], bins=25, density=True, label=label, histtype="step", linewidth=1.5)
        ax.set_title(f"{name}: AUROC {results['noise'][name]['auroc']:.2f}", fontsize=9)
        ax.set_xlabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("density (pairs)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("weights of correctly vs wrongly labeled train pairs")
    return fig
