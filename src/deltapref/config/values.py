"""Option values from every door (a parsed command line, a ``--config`` file, a recipe stage,
Python keywords) checked against their fields' types in one place, and the config dataclasses
built from them. A path may be ``str`` or ``Path``; an integer fits a float field; a list of
plain values fits a text field as a comma list (as on the command line); values read from files
(``strings_parse``) may be text that converts as the command line converts it (``"1e-3"``,
``"true"``). Anything else is one ``ValueError`` naming the option. Imports nothing from deltapref."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from typing import Literal

SIMPLE_TYPES = {bool: "true or false", int: "an integer", float: "a number", str: "text (a path or a name)"}


def _simple_types(hint) -> tuple[set, bool] | None:
    """(the plain types a field accepts, whether it accepts None) for hints made only of bool,
    int, float, str, Literal and None; None for any richer hint (left to its own checks)."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    accepted, nullable = set(), False
    for arg in args:
        if arg is type(None):
            nullable = True
        elif typing.get_origin(arg) is Literal:
            accepted |= {type(choice) for choice in typing.get_args(arg)}
        elif arg in SIMPLE_TYPES:
            accepted.add(arg)
        else:
            return None
    return accepted, nullable


TRUE, FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")  # as HfArgumentParser reads booleans


def _from_text(name: str, text: str, accepted: set):
    """``text`` converted to the field's type as the command line converts a flag's value."""
    if bool in accepted and text.strip().lower() in TRUE + FALSE:
        return text.strip().lower() in TRUE
    for kind in (int, float):
        if kind in accepted:
            try:
                return kind(text)
            except ValueError:
                pass
    wanted = " or ".join(SIMPLE_TYPES[t] for t in SIMPLE_TYPES if t in accepted)
    raise ValueError(f"--{name} must be {wanted}, got {text!r}")


def typed_value(name: str, hint, default, value, strings_parse: bool = False, numbers: bool = False):
    """``value`` for option ``name`` if its type fits the field (a path object becomes text, an
    integer a float where a number is asked, a list of plain values a comma list); else a
    ``ValueError`` naming the option. None fits a field whose default is None. With
    ``strings_parse`` (values from a file) text converts as on the command line; with ``numbers``
    (a text field that takes a number or a name, ``option(numbers=True)``) a number becomes its text."""
    simple = _simple_types(hint)
    if simple is None:
        return value
    accepted, nullable = simple
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"--{name} must be a finite number, got {value}")
        return str(value)
    if isinstance(value, str) and strings_parse and str not in accepted:
        return _from_text(name, value, accepted)
    if isinstance(value, list) and str in accepted and all(isinstance(v, (str, int, float)) for v in value):
        return ",".join(map(str, value))
    if value is None:
        if nullable or default is None:
            return None
    elif isinstance(value, bool):
        if bool in accepted:
            return value
    elif isinstance(value, int) and int in accepted:
        return value
    elif isinstance(value, (int, float)) and float in accepted:
        if not math.isfinite(value):
            raise ValueError(f"--{name} must be a finite number, got {value}")
        return float(value)
    elif isinstance(value, os.PathLike) and str in accepted:
        return os.fspath(value)
    elif isinstance(value, str) and str in accepted:
        return value
    wanted = " or ".join(SIMPLE_TYPES[t] for t in SIMPLE_TYPES if t in accepted) or "one of its choices"
    raise ValueError(f"--{name} must be {wanted}, got {value!r} ({type(value).__name__})")


def field_hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a hint that does not resolve here: its field's own checks apply
        return {}


def typed_values(dataclass_types, values: dict, strings_parse: bool = False, defaults: dict | None = None) -> dict:
    """``values`` (option name -> value, for fields of ``dataclass_types``) through
    :func:`typed_value`: the one type check for options from YAML files and from Python."""
    fields = {}
    for cls in dataclass_types:
        hints = field_hints(cls)
        for field in dataclasses.fields(cls):
            default = (defaults or {}).get(field.name, field.default)
            fields.setdefault(field.name, (hints.get(field.name), default, field.metadata.get("numbers", False)))
    return {
        name: typed_value(name, hint, default, value, strings_parse, numbers) if name in fields else value
        for name, value in values.items()
        for hint, default, numbers in [fields.get(name, (None, None, False))]
    }


def named_values(
    dataclass_types, values: dict, where: str = "", error: type[Exception] = ValueError, hint: str = ""
) -> dict:
    """``values`` under their options' current names (a field's ``renamed_from``; both names at
    once: a ValueError), each name checked against the fields of ``dataclass_types``: an unknown
    one is ``error`` naming the closest known option (prefixed by ``where``, e.g. the file;
    ``hint`` after it). The one name check of every door: flags, ``--config`` files, recipe
    stages and Python keywords."""
    prefix = f"{where}: " if where else ""
    renamed = {
        old: field.name
        for cls in dataclass_types
        for field in dataclasses.fields(cls)
        for old in field.metadata.get("renamed_from", ())
    }
    out = {}
    for name, value in values.items():
        current = renamed.get(name, name)
        if current in out:
            raise ValueError(f"{prefix}--{current} is given twice (once as --{name}, its former name)")
        out[current] = value
    known = [field.name for cls in dataclass_types for field in dataclasses.fields(cls)]
    unknown = sorted(map(str, set(out) - set(known)))
    if unknown:
        raise error(f"{prefix}unknown option(s) {', '.join(unknown)}{did_you_mean(unknown, known)}{hint}")
    return out


def did_you_mean(unknown: list[str], known: list[str]) -> str:
    """``; did you mean X?`` for the first unknown name close to a known one, else nothing."""
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]}?"
    return ""


def build_configs(dataclass_types, values: dict, strings_parse: bool = False, defaults: dict | None = None) -> tuple:
    """One instance of each dataclass type from ``defaults`` (deltapref's, where they differ from
    the dataclasses') updated by ``values`` (option name -> value): names no type has are
    refused, every value goes through :func:`typed_value`, then each dataclass is built (its own
    checks run). With ``strings_parse`` (values from a file) a ``None`` means "not given" and
    the option keeps its default. Options under a former name are taken under the current one.
    Every door to a run builds its configs here."""
    dataclass_types = list(dataclass_types)
    values = named_values(dataclass_types, values)
    if strings_parse:
        values = {name: value for name, value in values.items() if value is not None}
    values = {**(defaults or {}), **typed_values(dataclass_types, values, strings_parse, defaults)}
    built = []
    for cls in dataclass_types:
        fields = {field.name for field in dataclasses.fields(cls) if field.init}
        try:
            built.append(cls(**{name: value for name, value in values.items() if name in fields}))
        except (TypeError, OverflowError, ZeroDivisionError, KeyError) as error:  # a library's own checks
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"{cls.__name__}: {reason}") from None
    return tuple(built)
