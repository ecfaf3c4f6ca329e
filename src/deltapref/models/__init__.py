"""Models: building and loading them (``loading``), the names deltapref resolves without a hub
(``names``), the checks a model directory passes before any work (``preflight``), and which model
made which data column (``provenance``). ``load_causal_lm``, ``load_tokenizer`` and ``resolve``
are importable from here."""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {"load_causal_lm": "loading", "load_tokenizer": "loading", "resolve": "names"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
