"""Command configs: dataclasses parsed from the command line and/or a YAML file.

Every field has a default and a ``help`` string. Allowed values live on the field: a ``Literal``
type gives the choices (argparse shows and checks them), and ``gt``/``ge``/``lt``/``le`` give a
numeric range that :class:`Options` checks (with finiteness) whenever a config is built, before
any model loads. Cross-field rules stay in each dataclass's ``__post_init__``. ``--config
FILE.yaml`` supplies values; flags on the command line win. This module imports nothing else
from deltapref, so every layer may use it.
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
from pathlib import Path
from typing import Literal

import yaml
from transformers import HfArgumentParser

RANGE_CHECKS = {
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, ">="),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
}


def option(default, help: str, **kwargs):
    """A dataclass field with a default, the help text shown by ``--help`` and, in ``kwargs``,
    an optional range (``gt``, ``ge``, ``lt``, ``le``)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def check_fields(instance) -> None:
    """Refuse non-finite floats, values outside a field's range, and values outside a
    ``Literal`` field's choices (configs built in code skip argparse's own check)."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
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
        if self.model.split(":")[0] == "tiny" and not self.tokenizer:
            raise ValueError("a tiny model needs --tokenizer (e.g. the built-in task's tokenizer/)")


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


YAML_MAX_BYTES = 1 << 20  # recipes and option files are small; anything larger is refused unread
YAML_MAX_VALUES = 100_000  # values after alias expansion (a nested-anchor "bomb" expands to billions)


def read_yaml(path: str | Path):
    """A YAML document of plain values (safe loader: no custom tags), refused in one line
    (``ValueError`` naming the file and line) when it is not valid YAML, larger than
    ``YAML_MAX_BYTES`` or expands to more than ``YAML_MAX_VALUES`` values through aliases."""
    path = Path(path)
    try:
        if path.stat().st_size > YAML_MAX_BYTES:
            raise ValueError(f"{path}: larger than {YAML_MAX_BYTES} bytes; a recipe or option file is far smaller")
        loader = yaml.SafeLoader(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > YAML_MAX_VALUES:
            raise ValueError(
                f"{path}: its aliases expand to more than {YAML_MAX_VALUES} values ({expanded}); refusing to build it"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not a plain YAML document ({_yaml_reason(error)})") from None
    finally:
        loader.dispose()


def _expanded_size(node, sizes: dict) -> int:
    """How many values ``node`` holds once every alias is expanded (aliases share their node,
    so each node's size is computed once)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a node that contains itself counts once
    children = node.value if isinstance(node, yaml.SequenceNode) else []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(node)] = min(size, YAML_MAX_VALUES + 1)
    return sizes[id(node)]


def _yaml_reason(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}{problem}"


def load_yaml_options(path: str, dataclass_types) -> dict:
    """Read a YAML mapping of options and reject keys that no config knows (typos)."""
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: must hold a mapping of option names to values")
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return values


class _Parser(HfArgumentParser):
    """HfArgumentParser that keeps deltapref's range keys out of argparse and shows them in
    ``--help``, and reports a bad option as one line (a ValueError) instead of the full usage."""

    def error(self, message):
        raise ValueError(f"{message} (see --help)")

    @staticmethod
    def _parse_dataclass_field(parser, field):
        field = copy.copy(field)
        metadata = {k: v for k, v in field.metadata.items() if k not in RANGE_CHECKS}
        bounds = [f"{RANGE_CHECKS[k][1]} {v}" for k, v in field.metadata.items() if k in RANGE_CHECKS]
        if bounds:
            metadata["help"] = f"{metadata.get('help', '')} ({' and '.join(bounds)})"
        field.metadata = types.MappingProxyType(metadata)
        HfArgumentParser._parse_dataclass_field(parser, field)


def parse_config(dataclass_types, argv: list[str], prog: str, description: str, defaults: dict | None = None):
    """Parse ``argv`` into one instance of each dataclass type (a tuple); ``defaults`` replace
    the dataclasses' own defaults (YAML and flags still win)."""
    dataclass_types = list(dataclass_types)
    parser = _Parser(
        dataclass_types, prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    if defaults:
        parser.set_defaults(**defaults)
    parser.add_argument("--config", default=None, help="YAML file of options; command-line flags win")
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config", default=None)
    known, _ = early.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**load_yaml_options(known.config, dataclass_types))
    parsed = parser.parse_args_into_dataclasses(args=argv)
    return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))
