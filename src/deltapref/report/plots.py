"""The report's PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def make_plots(results: dict, out: Path) -> list[tuple[str, str]]:
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
    rdo = {n: v for n, v in results["coefficients"].items() if "madpo" not in n}
    if rdo:
        fig, ax = plt.subplots(figsize=(5, 3))
        for name, values in rdo.items():
            ax.hist(values, bins=30, alpha=0.55, label=name, range=(0, 1))
        ax.set_xlabel("coefficient σ(Δ)^α")
        ax.set_ylabel("pairs")
        ax.legend()
        ax.set_title("reward-difference coefficients (train pairs)")
        save(fig, "coefficients.png", "Coefficient histograms")
    if results.get("label_correct"):
        correct = np.asarray(results["label_correct"])
        sources = list(results["coefficients"])
        fig, axes = plt.subplots(1, len(sources), figsize=(3.2 * len(sources), 2.8), squeeze=False)
        for ax, name in zip(axes[0], sources):
            values = np.asarray(results["coefficients"][name])
            for mask, label in ((correct, "label agrees with gold"), (~correct, "label disagrees")):
                ax.hist(values[mask], bins=25, alpha=0.55, density=True, label=label)
            ax.set_title(f"{name}: AUROC {results['noise'][name]['auroc']:.2f}", fontsize=9)
            ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7)
        fig.suptitle("weights of correctly vs wrongly labeled train pairs")
        save(fig, "coefficients_by_label.png", "Weights by label correctness")
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
