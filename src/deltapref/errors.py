"""Errors a user can cause. Every command turns them into one line on stderr and exit code 1
(bad options: exit code 2), never a traceback."""

from __future__ import annotations


class DeltaprefError(ValueError):
    """Something the user can fix: the message says what and where."""


class OutputError(DeltaprefError):
    """An output that cannot or must not be written (not ours, locked, unwritable)."""


class ModelRoleError(DeltaprefError):
    """A model directory passed in a role it cannot play (e.g. a reward model as the policy)."""


class ModelLoadError(DeltaprefError):
    """A model or tokenizer that does not load (missing files, corrupt weights, unknown type)."""


class TrainingError(DeltaprefError):
    """Training went wrong in a way the user must see (e.g. a non-finite loss)."""


class OptionError(DeltaprefError):
    """An option that is valid alone but cannot work in this run (found after parsing)."""


class RecordError(DeltaprefError):
    """A record deltapref wrote beside its outputs (a sidecar, ``cross_fit.json``,
    ``ensemble.json``) that is unreadable or malformed."""
