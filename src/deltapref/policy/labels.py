"""What a policy run does with labels it may not trust, before any model loads: pairs a scorer
confidently doubts flipped or dropped (``--label_correction``), then each pair's ε for rDPO/cDPO
(``label_epsilon``) and offset for ODPO (``odpo_offset``) as columns the objectives read. Δ always
means the source's reward difference for the pair as labelled (positive: the scorer agrees)."""

from __future__ import annotations

import logging
import math

import numpy as np
from datasets import Dataset, Features

from deltapref.coefficients import deltas
from deltapref.columns import COEF, DIFF, LABEL_EPSILON, ODPO_OFFSET
from deltapref.data.schema import DataError
from deltapref.models.provenance import read_meta
from deltapref.objectives.label_options import NOISY_LABEL_LOSSES, delta_source, per_pair_epsilon
from deltapref.objectives.options import PolicyLossOptions
from deltapref.scorer_kinds import SCORER_KINDS

logger = logging.getLogger(__name__)
ODPO_LOG_FLOOR = 0.01  # log scale: a Δ below this (a pair the scorer doubts) is read as this


def partner(column: str) -> str | None:
    """The column a flipped pair swaps ``column`` with (``*_chosen`` and ``*_rejected``,
    ``chosen_*`` and ``rejected_*``, the responses themselves), or None."""
    for a, b in (("chosen", "rejected"), ("rejected", "chosen")):
        if column == a:
            return b
        if column.endswith("_" + a):
            return column[: -len(a)] + b
        if column.startswith(a + "_"):
            return b + column[len(a) :]
    return None


def flipped(data: Dataset, flip: np.ndarray) -> Dataset:
    """``data`` with the rows in ``flip`` relabelled: chosen and rejected swapped with every
    column that belongs to one of them, a difference model's d negated (d(x, y_l, y_w) = −d(x,
    y_w, y_l) under its balanced order), and ``coef`` columns (weights of the pair as labelled)
    left out."""
    columns = data.to_dict()
    swapped = set()
    for name in list(columns):
        other = partner(name)
        if other in columns and name not in swapped:
            for i in np.flatnonzero(flip):
                columns[name][i], columns[other][i] = columns[other][i], columns[name][i]
            swapped |= {name, other}
    if DIFF in columns:
        columns[DIFF] = [-v if f else v for v, f in zip(columns[DIFF], flip)]
    for name in [name for name in columns if name == COEF or name.startswith(COEF + "_")]:
        del columns[name]
    return Dataset.from_dict(columns, features=Features({k: v for k, v in data.features.items() if k in columns}))


def corrected(data: Dataset, options: PolicyLossOptions, source: str) -> tuple[Dataset, dict | None]:
    """``--label_correction``: the pairs whose ``--correct_with`` Δ is below −margin flipped or
    dropped; returns the data and what was done (None when off)."""
    if options.label_correction == "none":
        return data, None
    doubted = deltas(delta_source(options.correct_with), data).numpy() < -options.correction_margin
    done = {
        "mode": options.label_correction,
        "source": options.correct_with,
        "margin": options.correction_margin,
        "pairs": len(data),
        "flipped" if options.label_correction == "flip" else "dropped": int(doubted.sum()),
    }
    if options.label_correction == "drop":
        if doubted.all():
            raise DataError(
                f"--label_correction drop: every pair's {options.correct_with} Δ is below "
                f"−{options.correction_margin}, so nothing would be left to train on",
                source=source,
            )
        data = data.select(np.flatnonzero(~doubted))
    else:
        data = flipped(data, doubted)
    logger.info(
        "label correction: %d of %d pairs %s (%s Δ < −%g)",
        int(doubted.sum()),
        done["pairs"],
        "flipped" if options.label_correction == "flip" else "dropped",
        options.correct_with,
        options.correction_margin,
    )
    return data, done


def with_label_columns(data: Dataset, options: PolicyLossOptions, source: str) -> tuple[Dataset, dict]:
    """``data`` with the per-pair columns the objective reads (``label_epsilon`` for rdpo/cdpo,
    ``odpo_offset`` for odpo) and what they hold, for the summary."""
    if options.loss in NOISY_LABEL_LOSSES:
        values, said = epsilons(data, options, source)
        return _put(data, LABEL_EPSILON, values), said
    if options.loss == "odpo":
        values, said = offsets(data, options, source)
        return _put(data, ODPO_OFFSET, values), said
    return data, {}


def epsilons(data: Dataset, options: PolicyLossOptions, source: str) -> tuple[np.ndarray, dict]:
    """ε per pair: one number, the estimate ``score`` recorded (``auto``), σ(−Δ/T) from a Δ
    source (either capped at ``epsilon_max`` for rdpo), or a column's values, checked."""
    closed = options.loss == "cdpo"  # a soft label may be 0 (ε = 1); rDPO needs ε < 0.5
    if options.epsilon == "auto":
        value, origin = recorded_noise(source)
        if options.loss == "rdpo" and value > options.epsilon_max:
            logger.info("--epsilon auto: %.4f capped at --epsilon_max %g (rDPO)", value, options.epsilon_max)
            value, origin = options.epsilon_max, f"{origin}, capped at --epsilon_max"
        return np.full(len(data), value), {"epsilon": value, "epsilon_from": origin}
    if not per_pair_epsilon(options):
        return np.full(len(data), options.epsilon_value()), {"epsilon": options.epsilon_value()}
    delta = delta_source(options.epsilon)
    if delta is None:
        values = checked_column(data, options.epsilon, source, 0.0, 1.0 if closed else 0.5, closed)
    else:
        values = 1 / (1 + np.exp(deltas(delta, data).numpy() / options.label_temperature))  # σ(−Δ/T)
        if options.loss == "rdpo":
            values = np.minimum(values, options.epsilon_max)
    said = {"epsilon_from": options.epsilon, "epsilon_mean": float(values.mean())}
    return values, said


def offsets(data: Dataset, options: PolicyLossOptions, source: str) -> tuple[np.ndarray, dict]:
    """ODPO's offset per pair: α·f(Δ) from a Δ source (f: log with a floor, or linear), or a
    column's values, checked."""
    delta = delta_source(options.odpo_offset)
    if delta is None:
        values = checked_column(data, options.odpo_offset, source, -math.inf, math.inf)
    else:
        gaps = deltas(delta, data).numpy()
        scaled = np.log(np.maximum(gaps, ODPO_LOG_FLOOR)) if options.odpo_scale == "log" else gaps
        values = options.odpo_alpha * scaled
    return values, {"offset_from": options.odpo_offset, "offset_mean": float(values.mean())}


def checked_column(
    data: Dataset, column: str, source: str, low: float, high: float, closed: bool = False
) -> np.ndarray:
    """A per-pair number column: present, a finite number in every row, in [low, high) (or
    [low, high] when ``closed``)."""
    if column not in data.column_names:
        raise DataError(f"has no column {column!r} (the per-pair values the options name)", source=source)
    for row, value in enumerate(data[column], start=1):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"is {value!r}: one finite number per pair is needed", source=source, row=row, field=column)
        if not (low <= value <= high if closed else low <= value < high):
            interval = f"[{low:g}, {high:g}{']' if closed else ')'}"
            raise DataError(f"is {value}: must be in {interval}", source=source, row=row, field=column)
    return np.asarray(data[column], dtype=np.float64)


def recorded_noise(source: str) -> tuple[float, str]:
    """The share of wrong labels ``score`` estimated for ``source`` (the first scorer kind, in
    ``score``'s order, whose held-out scores gave one), and where it came from."""
    recorded = read_meta(source).get("noise") or {}
    for kind in SCORER_KINDS:
        if kind in recorded:
            estimate = float(recorded[kind]["estimate"])
            if not 0 <= estimate < 0.5:
                raise DataError(
                    f"--epsilon auto: the share of wrong labels estimated from the {kind} scores is {estimate}, "
                    "so the labels say nothing a scorer can check; give --epsilon a number",
                    source=source,
                )
            logger.info("--epsilon auto: %.4f, the share of wrong labels estimated from the %s scores", estimate, kind)
            return estimate, f"auto ({kind})"
    raise DataError(
        "--epsilon auto needs the share of wrong labels `deltapref score` estimates from a cross-fitted scorer "
        "(train-scorer --cross_fit K, then score with it); none is recorded for this data: score it so, or give "
        "--epsilon a number",
        source=source,
    )


def _put(data: Dataset, column: str, values: np.ndarray) -> Dataset:
    if column in data.column_names:
        data = data.remove_columns(column)
    return data.add_column(column, values.tolist())
