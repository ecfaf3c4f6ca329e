"""Command configs: dataclasses parsed from the command line and/or a YAML file.

Every field has a default and a ``help`` string; validation lives in each dataclass's
``__post_init__``. ``--config FILE.yaml`` supplies values; flags on the command line win.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml
from transformers import HfArgumentParser


def option(default, help: str, **kwargs):
    """A dataclass field with a default and the help text shown by ``--help``."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclass
class ModelDataOptions:
    """What every training command reads: a model, its tokenizer, data and token budgets."""

    model: str = option(None, "model to start from: a HF id or directory, or tiny[:HIDDEN:LAYERS] (fresh small Llama)")
    tokenizer: str = option(None, "tokenizer id or directory (default: the model's)")
    train_data: str = option(None, "training data (any format `deltapref data` reads)")
    format: str = option("auto", "data format (see `deltapref data convert --help`)")
    skip_bad_rows: bool = option(False, "skip invalid rows (counted and reported)")
    max_length: int = option(512, "longest input in tokens")
    max_prompt_length: int = option(256, "longest prompt part in tokens (prompts lose their start first)")
    dtype: str = option("float32", "weights dtype: float32 (CPU), bfloat16 or float16 (GPU)")
    trust_remote_code: bool = option(False, "allow model repos to run their own code")

    def __post_init__(self):
        from .data.tokenization import TokenizationConfig

        if not self.model or not self.train_data:
            raise ValueError("--model and --train_data are required")
        if self.model.split(":")[0] == "tiny" and not self.tokenizer:
            raise ValueError("a tiny model needs --tokenizer (e.g. the built-in task's tokenizer/)")
        self.tokenization = TokenizationConfig(self.max_length, self.max_prompt_length)


def load_yaml_options(path: str, dataclass_types) -> dict:
    """Read a YAML mapping of options and reject keys that no config knows (typos)."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: must hold a mapping of option names to values")
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return values


def parse_config(dataclass_types, argv: list[str], prog: str, description: str, defaults: dict | None = None):
    """Parse ``argv`` into one instance of each dataclass type (a tuple); ``defaults`` replace
    the dataclasses' own defaults (YAML and flags still win)."""
    dataclass_types = list(dataclass_types)
    parser = HfArgumentParser(dataclass_types, prog=prog, description=description,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
