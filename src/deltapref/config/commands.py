"""Command configs: dataclasses parsed from the command line and/or a YAML file.

Every field has a default and a ``help`` string. Allowed values live on the field: a ``Literal``
type gives the choices (argparse shows and checks them), and ``gt``/``ge``/``lt``/``le`` give a
numeric range that :class:`Options` checks (with finiteness) whenever a config is built, before
any model loads. Cross-field rules stay in each dataclass's ``__post_init__``. ``--config
FILE.yaml`` supplies values; flags on the command line win. This module imports only ``safe_yaml``
and ``option_values`` from deltapref (neither imports anything of it), so every layer may use it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import operator
import types
import typing
from dataclasses import dataclass
from typing import Literal

from transformers import HfArgumentParser

from deltapref.config.safe_yaml import read_yaml
from deltapref.config.values import build_configs, did_you_mean, field_hints, named_values, typed_value, typed_values

INT_CEILING = 2**31 - 1  # an integer option with no declared upper bound: beyond any count a run takes
SEED_RANGE = {"ge": 0, "le": 2**32 - 1}  # what numpy, torch and Python's random all take

RANGE_CHECKS = {
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, ">="),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
}


def option(default, help: str, **kwargs):
    """A dataclass field with a default, the help text shown by ``--help`` and, in ``kwargs``,
    an optional range (``gt``, ``ge``, ``lt``, ``le``), ``renamed_from``: the option's former
    names, still accepted at every door (flags, YAML, recipes, Python keywords), and ``numbers``: a
    text option that also takes a number (as its text)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def check_fields(instance) -> None:
    """Refuse values of the wrong type (a path object becomes text), non-finite floats, values
    outside a field's range, and values outside a ``Literal`` field's choices (configs built in
    code skip argparse's own check)."""
    hints = field_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        checked = typed_value(
            field.name, hints.get(field.name), field.default, value, numbers=field.metadata.get("numbers", False)
        )
        if checked is not value:
            setattr(instance, field.name, checked)
            value = checked
        if value is None or isinstance(value, bool):
            continue
        choices = _literal_choices(hints.get(field.name))
        if choices and value not in choices:
            raise ValueError(f"--{field.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{field.name} must be a finite number, got {value}")
        for key, (compare, symbol) in RANGE_CHECKS.items():
            if key in field.metadata and not compare(value, field.metadata[key]):
                raise ValueError(f"--{field.name} must be {symbol} {field.metadata[key]}, got {value}")
        if isinstance(value, int) and value > INT_CEILING and not {"lt", "le"} & set(field.metadata):
            raise ValueError(f"--{field.name} must be <= {INT_CEILING}, got {value}")


def _literal_choices(hint) -> tuple:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    for arg in typing.get_args(hint):  # Optional[Literal[...]]
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return ()


@dataclass
class Options:
    """Base of every config: checks each field's declared range and choices."""

    def __post_init__(self):
        check_fields(self)


@dataclass
class TokenizationConfig(Options):
    """Lengths and truncation policy shared by every stage that tokenizes."""

    max_length: int = option(512, "longest input in tokens", gt=1)
    max_prompt_length: int = option(256, "longest prompt part in tokens (prompts lose their start first)", ge=0)
    prompt_truncation: Literal["keep_end", "keep_start"] = option(
        "keep_end", "which end of a too-long prompt to keep (keep_end drops its oldest tokens)"
    )

    def __post_init__(self):
        super().__post_init__()
        if self.max_prompt_length >= self.max_length:
            raise ValueError("--max_prompt_length must be smaller than --max_length")

    @property
    def tokenization(self) -> TokenizationConfig:
        """Just the tokenization settings (for configs that mix this block in)."""
        return TokenizationConfig(self.max_length, self.max_prompt_length, self.prompt_truncation)


@dataclass
class OverwriteOption(Options):
    overwrite: bool = option(
        False, "replace an existing output that deltapref did not write (its own outputs are replaced without asking)"
    )


@dataclass
class ModelDataOptions(TokenizationConfig):
    """What every training command reads: a model, its tokenizer, data and token budgets."""

    model: str = option(
        None, "model to start from: a HF id or directory, minilm, or tiny[:HIDDEN:LAYERS] (fresh small Llama)"
    )
    tokenizer: str = option(None, "tokenizer id or directory (default: the model's)")
    train_data: str = option(None, "training data (any format `deltapref data` reads)")
    format: str = option("auto", "data format (see `deltapref data convert --help`)")
    skip_bad_rows: bool = option(False, "skip invalid rows (counted and reported)")
    dtype: Literal["float32", "bfloat16", "float16"] = option(
        "float32", "weights dtype: float32 (CPU), bfloat16 or float16 (GPU)"
    )
    trust_remote_code: bool = option(False, "allow model repos to run their own code")
    disable_dropout: bool = option(False, "train with every dropout probability set to 0 (TRL's default)")
    overwrite_output_dir: bool = option(False, "train into a non-empty --output_dir that deltapref did not write")

    def __post_init__(self):
        super().__post_init__()
        if not self.model or not self.train_data:
            raise ValueError("--model and --train_data are required")
        if self.model.split(":")[0] == "tiny":
            tiny_shape(self.model)
            if not self.tokenizer:
                raise ValueError("a tiny model needs --tokenizer (e.g. the built-in task's tokenizer/)")


def tiny_shape(spec: str) -> tuple[int, int]:
    """(hidden size, layers) of a ``tiny`` or ``tiny:HIDDEN:LAYERS`` model spec (default 64, 2);
    one line naming the spec when it is not one."""
    parts = spec.split(":")
    try:
        hidden, layers = (int(parts[1]) if len(parts) > 1 else 64), (int(parts[2]) if len(parts) > 2 else 2)
    except ValueError:
        hidden = layers = 0
    if len(parts) > 3 or not (2 <= hidden <= 8192 and hidden % 2 == 0 and 1 <= layers <= 128):
        raise ValueError(
            f"--model {spec!r}: a tiny model is tiny or tiny:HIDDEN:LAYERS with an even HIDDEN in 2..8192 and "
            "LAYERS in 1..128 (e.g. tiny:64:2)"
        )
    return hidden, layers


def seed_list(text: str, flag: str = "--seeds") -> list[int]:
    """Seeds from a count N (seeds 0..N-1) or a comma list of integers (e.g. ``5,6,7``)."""
    try:
        if "," not in text and int(text) > 0:
            return list(range(int(text)))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{flag} must be a count or a comma list of distinct integers, got {text!r}")
    return seeds


def changed_options(config, skip: tuple[str, ...] = ()) -> dict:
    """The options of ``config`` that differ from their defaults (``skip``: options such as output
    paths that do not change what is computed)."""
    changed = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if field.name not in skip and value != default:
            changed[field.name] = value
    return changed


def command_line(prog: str, config, skip: tuple[str, ...] = ()) -> str:
    """``prog`` with the options of ``config`` that differ from their defaults, so a generated
    report names the command that made it without reading ``sys.argv`` or naming this machine's
    paths."""
    return " ".join([prog] + [f"--{name} {value}" for name, value in changed_options(config, skip).items()])


def load_yaml_options(path: str, dataclass_types) -> dict:
    """Read a YAML mapping of options: keys no config knows (typos) and values of the wrong type
    refused, a ``null`` value taken as not given (the option's default applies)."""
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: must hold a mapping of option names to values")
    values = named_values(dataclass_types, values, where=path)
    values = {name: value for name, value in values.items() if value is not None}  # null: not given
    try:
        return typed_values(dataclass_types, values, strings_parse=True)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


class _Parser(HfArgumentParser):
    """HfArgumentParser that keeps deltapref's range keys out of argparse and shows them in
    ``--help``, and reports a bad option as one line (a ValueError) instead of the full usage."""

    def error(self, message):
        raise ValueError(f"{message}{self._suggestion(message)} (see --help)")

    def _suggestion(self, message: str) -> str:
        """``; did you mean --X?`` for an unknown flag close to a known one."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        known = [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]
        return did_you_mean(
            [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("--")], known
        )

    @staticmethod
    def _parse_dataclass_field(parser, field):
        field = copy.copy(field)
        metadata = {k: v for k, v in field.metadata.items() if k not in {*RANGE_CHECKS, "renamed_from", "numbers"}}
        former = field.metadata.get("renamed_from", ())
        if former:
            metadata["aliases"] = [f"--{name}" for name in former]
            metadata["help"] = f"{metadata.get('help', '')} (formerly --{', --'.join(former)})"
        bounds = [f"{RANGE_CHECKS[k][1]} {v}" for k, v in field.metadata.items() if k in RANGE_CHECKS]
        if bounds:
            metadata["help"] = f"{metadata.get('help', '')} ({' and '.join(bounds)})"
        field.metadata = types.MappingProxyType(metadata)
        HfArgumentParser._parse_dataclass_field(parser, field)


def _grouped(cls, prog: str):
    """``cls`` as ``--help`` shows it: deltapref's options under the command's name, a library's
    (``transformers.TrainingArguments``) under its own, after them."""
    library = cls.__module__.split(".")[0]
    title = f"{prog} options" if library == "deltapref" else f"{library}.{cls.__name__} options"
    return type(cls.__name__, (cls,), {"_argument_group_name": title})


def parse_config(dataclass_types, argv: list[str], prog: str, description: str, defaults: dict | None = None):
    """Parse ``argv`` into one instance of each dataclass type (a tuple), built by
    ``option_values.build_configs`` as every other door builds them; ``defaults`` replace the
    dataclasses' own defaults (YAML and flags still win)."""
    dataclass_types = list(dataclass_types)
    parser = _Parser(
        [_grouped(cls, prog) for cls in dataclass_types],
        prog=prog,
        usage=f"{prog} [--OPTION VALUE ...] [--config FILE.yaml]",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    if defaults:
        parser.set_defaults(**defaults)
    parser.add_argument("--config", default=None, help="YAML file of options; command-line flags win")
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config", default=None)
    known, _ = early.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**load_yaml_options(known.config, dataclass_types))
    values = {name: value for name, value in vars(parser.parse_args(argv)).items() if name != "config"}
    return build_configs(dataclass_types, values, defaults=defaults)
