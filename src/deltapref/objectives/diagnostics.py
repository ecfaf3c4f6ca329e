"""Run diagnostics of policy objectives: did the policy move, and does a learned reward track
length? Pure functions of a run's log history and traced per-pair values, with the warnings a
user should see (thresholds measured on the built-in task, docs/RESULTS.md)."""

from __future__ import annotations

import numpy as np

MIN_MOVEMENT = 0.01  # of |start log-prob|: below it for both responses the policy "barely moved"
LENGTH_TRACKING = 0.5  # |corr(student Δ, Δlength)| above it (and beyond the oracle's) is flagged
LENGTH_EXCESS = 0.2  # how much more than the oracle's own |corr(Δ, Δlength)| the student may show


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, or None when either side is constant or has under 3 values."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def policy_movement(log_history: list[dict]) -> tuple[dict, list[str]]:
    """How far the mean chosen / rejected log-probs moved between the first and the last logging
    window (window means over the batches each saw: an estimate, not a paired measurement)."""
    windows = [entry for entry in log_history if "logps/chosen" in entry and "logps/rejected" in entry]
    if len(windows) < 2:
        return {}, []
    first, last = windows[0], windows[-1]
    out = {
        f"logps_{side}_{when}": entry[f"logps/{side}"]
        for side in ("chosen", "rejected")
        for when, entry in (("first", first), ("last", last))
    }
    moved = max(abs(last[f"logps/{s}"] - first[f"logps/{s}"]) for s in ("chosen", "rejected"))
    out["relative_movement"] = moved / max(abs(first["logps/chosen"]), 1e-9)
    warnings = []
    if out["relative_movement"] < MIN_MOVEMENT:
        warnings.append(
            f"the policy barely moved: its mean log-probs changed by {moved:.3g} nats "
            f"({out['relative_movement']:.1%} of the start) between the first and last logging windows"
        )
    return out, warnings


def reward_length_tracking(trace: dict[str, np.ndarray]) -> tuple[dict, list[str]]:
    """Student vs oracle margins over the traced pairs: their means, their correlation, and each
    one's correlation with the length gap (response tokens, chosen − rejected)."""
    student, oracle, length = (trace.get(k) for k in ("student_margin", "oracle_margin", "length_gap"))
    if student is None or oracle is None or length is None or len(student) == 0:
        return {}, []
    out = {
        "pairs_traced": len(student),
        "student_margin_mean": float(student.mean()),
        "student_margin_rms": float(np.sqrt((student**2).mean())),
        "oracle_margin_mean": float(oracle.mean()),
        "oracle_margin_rms": float(np.sqrt((oracle**2).mean())),
        "corr_student_oracle": correlation(student, oracle),
        "corr_student_length": correlation(student, length),
        "corr_oracle_length": correlation(oracle, length),
    }
    warnings = []
    student_length, oracle_length = out["corr_student_length"], out["corr_oracle_length"] or 0.0
    if student_length is not None and abs(student_length) > max(LENGTH_TRACKING, abs(oracle_length) + LENGTH_EXCESS):
        warnings.append(
            f"the student's reward gap tracks length: corr(Δr̂, Δlength) = {student_length:+.2f} "
            f"(the oracle's: {oracle_length:+.2f})"
        )
    return out, warnings
