"""deltapref: offline preference optimization that uses how much one response beats another.

The Python API (``docs/API.md``): the CLI's stages as functions — :func:`make_builtin_task`,
:func:`load_preferences`, :func:`train_scorer`, :func:`score`, :func:`sft`, :func:`align`,
:func:`generate`, :func:`evaluate` — the
coefficient function :func:`reward_difference_coefficient`, the pure losses in
:mod:`deltapref.losses`, and the TRL bridge in :mod:`deltapref.integrations.trl`. Names load on
first use, so ``import deltapref`` stays light.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "align": "deltapref.api",
    "build_configs": "deltapref.api",
    "evaluate": "deltapref.api",
    "generate": "deltapref.api",
    "load_preferences": "deltapref.api",
    "make_builtin_task": "deltapref.api",
    "options_of": "deltapref.api",
    "score": "deltapref.api",
    "sft": "deltapref.api",
    "train_scorer": "deltapref.api",
    "reward_difference_coefficient": "deltapref.coefficients",
    "DeltaprefError": "deltapref.errors",
    "DataError": "deltapref.data.schema",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deltapref' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
