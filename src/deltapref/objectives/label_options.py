"""The rules of the options for labels a run may not trust — ``--epsilon`` (rDPO, cDPO),
``--odpo_offset`` (ODPO) and ``--label_correction`` — checked with the options, before any data
or model loads: each value in its range, each option read by the objective it is given with, and
an option that would change nothing refused."""

from __future__ import annotations

import math

from deltapref.coefficients import Source
from deltapref.scorer_kinds import columns_needed, source_names, weight_source

NOISY_LABEL_LOSSES = ("rdpo", "cdpo")  # the objectives that take --epsilon
EPSILON_DEFAULT = "0.1"


def number_or_none(text: str) -> float | None:
    """``text`` as a number, or None when it is a name (``auto``, a scorer kind, a column)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def delta_source(name: str | None) -> Source | None:
    """The Δ source ``name`` stands for (a scorer kind or gold), or None for a column name."""
    source = weight_source(name) if name else None
    return source if isinstance(source, Source) else None


def per_pair_epsilon(options) -> bool:
    """Whether ``--epsilon`` gives each pair its own ε (a Δ source or a column)."""
    return options.loss in NOISY_LABEL_LOSSES and options.epsilon != "auto" and options.epsilon_value() is None


def label_columns(options) -> list[str]:
    """The data columns the label options read: a per-pair ``--epsilon``'s, ``--odpo_offset``'s
    and ``--correct_with``'s (a Δ source's columns, or the named column)."""
    names = []
    if per_pair_epsilon(options):
        names += columns_needed(options.epsilon)
    if options.loss == "odpo" and options.odpo_offset:
        names += columns_needed(options.odpo_offset)
    if options.label_correction != "none" and options.correct_with:
        names += columns_needed(options.correct_with)
    return list(names)


def check_label_options(options) -> None:
    """Refuse label options out of range, given to an objective that does not read them, or set
    where they would change nothing; one ValueError naming the option."""
    _check_epsilon(options)
    sources = "|".join(source_names())
    if options.loss == "odpo" and not (options.odpo_offset or "").strip():
        raise ValueError(f"--loss odpo needs --odpo_offset: a scorer kind or gold ({sources}), or a column of offsets")
    if options.loss != "odpo" and options.odpo_offset:
        raise ValueError(f"--odpo_offset is read by --loss odpo only, not {options.loss}")
    if options.label_correction != "none":
        if delta_source(options.correct_with) is None:
            raise ValueError(
                f"--label_correction {options.label_correction} needs --correct_with, the Δ that says which labels "
                f"to doubt: {sources}"
            )
        if options.loss in ("rrhf", "sft"):
            raise ValueError(f"--label_correction works on pairs; --loss {options.loss} does not read a pair's label")
        if options.label_correction == "flip" and options.coef and options.precomputed_weights():
            raise ValueError(
                f"--label_correction flip with --coef {options.coef}, a column of weights computed for each pair as "
                "labelled: a flipped pair would keep its old weight; weigh with a scorer kind (recomputed after the "
                "flip) or drop the doubted pairs instead"
            )
    elif options.correct_with:
        raise ValueError("--correct_with is read only with --label_correction flip or drop")
    _check_unread(options)


def _check_epsilon(options) -> None:
    if options.loss not in NOISY_LABEL_LOSSES:
        if options.epsilon != EPSILON_DEFAULT:
            raise ValueError(f"--epsilon is read by --loss rdpo or cdpo only, not {options.loss}")
        return
    value = options.epsilon_value()
    if value is not None and not (math.isfinite(value) and 0 <= value < 0.5):
        raise ValueError(f"--epsilon must be a share of wrong labels in [0, 0.5), got {options.epsilon}")
    if value is None and not options.epsilon.strip():
        raise ValueError(
            "--epsilon is empty: give a number in [0, 0.5), auto, a scorer kind or gold, or a column of ε_i"
        )


def _check_unread(options) -> None:
    """Options that only matter beside another one, set where that one is not."""
    offset_scaled = options.loss == "odpo" and delta_source(options.odpo_offset) is not None
    unread = {
        "epsilon_max": (0.4, options.loss == "rdpo" and per_pair_epsilon(options), "a per-pair --epsilon of rdpo"),
        "label_temperature": (
            1.0,
            per_pair_epsilon(options) and delta_source(options.epsilon) is not None,
            "an --epsilon read from a scorer kind or gold",
        ),
        "odpo_alpha": (1.0, offset_scaled, "--odpo_offset from a scorer kind or gold"),
        "odpo_scale": ("log", offset_scaled, "--odpo_offset from a scorer kind or gold"),
        "correction_margin": (0.0, options.label_correction != "none", "--label_correction flip or drop"),
    }
    for name, (default, read, needs) in unread.items():
        if getattr(options, name) != default and not read:
            raise ValueError(f"--{name} changes nothing here: it is read only with {needs}")
