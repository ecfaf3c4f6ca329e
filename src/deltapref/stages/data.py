"""``deltapref data ...``: make, look at, check, convert and split preference data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deltapref.artifacts.outputs import claimed, replaced_directory, replacing_contents, write_text
from deltapref.artifacts.records import check_name
from deltapref.config.commands import SEED_RANGE, Options, OverwriteOption, option
from deltapref.data.loading import load_preferences
from deltapref.data.schema import DataError
from deltapref.data.splits import partition as split_partition
from deltapref.data.splits import split_by_difficulty
from deltapref.data.synthetic import SyntheticTaskConfig, write_task
from deltapref.data.tokenization import length_stats
from deltapref.data.writing import check_data_output, save_dataset, write_jsonl
from deltapref.models.provenance import read_meta, write_meta
from deltapref.training.distributed import say


@dataclass
class SynthConfig(OverwriteOption, SyntheticTaskConfig):
    output_dir: str = option("data/builtin", "where to write the task (JSONL splits, tokenizer/, task.json)")


@dataclass
class SourceConfig(Options):
    input: str = option(None, "a .jsonl/.json/.parquet file, a saved `datasets` directory or a hub id")
    format: str = option(
        "auto",
        "input shape: auto, pairwise, rm-static, ranked, hh, hh-chat (HH transcripts as chat messages), tldr, "
        "ultrafeedback",
    )
    split: str = option("train", "split to read from a hub id or a DatasetDict directory")
    skip_bad_rows: bool = option(False, "skip invalid rows (counted and reported) instead of stopping")
    drop_duplicates: bool = option(False, "drop repeated rows (they are always counted and reported)")

    def __post_init__(self):
        super().__post_init__()
        if not self.input:
            raise ValueError("--input is required")

    def load(self, pairs_for: str | None = None):
        return load_preferences(
            self.input,
            format=self.format,
            split=self.split,
            skip_bad_rows=self.skip_bad_rows,
            drop_duplicates=self.drop_duplicates,
            pairs_for=pairs_for,
        )


@dataclass
class InspectConfig(SourceConfig):
    rows: int = option(2, "how many normalized rows to print", ge=0)
    tokenizer: str = option(None, "tokenizer dir or id for token-length statistics (optional)")


@dataclass
class ConvertConfig(OverwriteOption, SourceConfig):
    output: str = option(None, "destination: .jsonl, .json, .parquet, or a directory (save_to_disk)")

    def __post_init__(self):
        super().__post_init__()
        if not self.output:
            raise ValueError("--output is required")
        check_data_output(self.output)


@dataclass
class SplitConfig(OverwriteOption, SourceConfig):
    output_dir: str = option(None, "where to write easy.jsonl, hard.jsonl, mixed.jsonl, split_report.json")
    confidence_field: str = option("confidence", "column holding annotator confidence")

    def __post_init__(self):
        super().__post_init__()
        if not self.output_dir:
            raise ValueError("--output_dir is required")


@dataclass
class PartitionConfig(OverwriteOption, SourceConfig):
    output_dir: str = option(None, "where to write one NAME.jsonl per part and partition.json")
    parts: str = option(
        None,
        "comma list NAME=SIZE in cut order; SIZE 'rest' takes the remaining rows "
        "(e.g. scorer=300,policy=120,judge=300,test=rest)",
    )
    seed: int = option(0, "seed of the random permutation", **SEED_RANGE)

    def __post_init__(self):
        super().__post_init__()
        if not self.output_dir or not self.parts:
            raise ValueError("--output_dir and --parts are required")
        self.sizes()

    def sizes(self) -> dict[str, int | None]:
        """Part name -> size (None: the rest); names are plain file names, sizes whole numbers >= 1."""
        try:
            pairs = [item.split("=") for item in self.parts.split(",") if item]
            sizes = {name.strip(): None if size.strip() == "rest" else int(size) for name, size in pairs}
        except ValueError:
            raise ValueError(f"--parts must look like name=300,other=rest, got {self.parts!r}") from None
        if len(sizes) != len(pairs):
            raise ValueError(f"--parts names a part twice: {self.parts!r}")
        for name, size in sizes.items():
            check_name(name, "--parts: part name")
            if size is not None and size < 1:
                raise ValueError(f"--parts: part {name!r} needs at least 1 row, got {size}")
        if list(sizes.values()).count(None) > 1:
            raise ValueError("--parts: at most one part may take the rest")
        return sizes


def synth(config: SynthConfig) -> int:
    with replaced_directory(config.output_dir, "data synth", overwrite=config.overwrite):
        summary = write_task(config, config.output_dir)
    say(f"wrote the built-in gold-reward task to {config.output_dir}")
    say(
        json.dumps(
            {
                k: summary[k]
                for k in ("sizes", "vocabulary_size", "train_label_noise", "train_mean_abs_gold_gap", "gold_reward")
            },
            indent=2,
        )
    )
    say("label noise by |gold reward gap| (train):")
    for row in summary["train_label_noise_by_gap"]:
        high = "inf" if row["gap_high"] is None else f"{row['gap_high']:.2f}"
        say(f"  [{row['gap_low']:.2f}, {high}): {row['pairs']:5d} pairs, noise {row['noise_rate']:.3f}")
    return 0


def inspect(config: InspectConfig) -> int:
    dataset, report = config.load()
    say(report.summary())
    say(f"columns: {', '.join(dataset.column_names)}")
    for row in dataset.select(range(min(config.rows, len(dataset)))):
        say(json.dumps(row, ensure_ascii=False)[:2000])
    if config.tokenizer:
        from deltapref.models.loading import load_tokenizer

        tokenizer = load_tokenizer(config.tokenizer)
        fields = ("prompt", "chosen", "rejected") if "chosen" in dataset.column_names else ("prompt",)
        say("token lengths: " + json.dumps(length_stats(tokenizer, dataset, fields), indent=2))
    return 0


def validate(config: SourceConfig) -> int:
    _, report = config.load()
    say(report.summary())
    return 0


def convert(config: ConvertConfig) -> int:
    with claimed(config.output, "data convert", inputs=[config.input], overwrite=config.overwrite):
        dataset, report = config.load()
        say(report.summary())
        meta = read_meta(config.input)
        inputs = [config.input]
        save_dataset(dataset, config.output, "data convert", overwrite=config.overwrite, meta=meta, inputs=inputs)
    say(f"wrote {len(dataset)} rows to {config.output}")
    return 0


def partition(config: PartitionConfig) -> int:
    """Disjoint random parts of the (normalized) data, e.g. for scorer, policy, judge and test."""
    claim = dict(inputs=[config.input], overwrite=config.overwrite, replaced_whole=True)
    with claimed(config.output_dir, "data partition", **claim):
        dataset, report = config.load()
        say(report.summary())
        try:
            parts = split_partition(dataset.to_list(), config.sizes(), config.seed)
        except ValueError as error:
            raise DataError(str(error), source=config.input) from None
        summary = {"input": config.input, "seed": config.seed, "rows": {n: len(r) for n, r in parts.items()}}
        write_parts(config.output_dir, "data partition", parts, config.input, ("partition.json", summary))
    say(json.dumps(summary["rows"]))
    return 0


def split(config: SplitConfig) -> int:
    claim = dict(inputs=[config.input], overwrite=config.overwrite, replaced_whole=True)
    with claimed(config.output_dir, "data split", **claim):
        dataset, report = config.load(pairs_for="data split")
        say(report.summary())
        try:
            groups, split_report = split_by_difficulty(dataset.to_list(), confidence_field=config.confidence_field)
        except ValueError as error:
            raise DataError(str(error), source=config.input) from None
        write_parts(config.output_dir, "data split", groups, config.input, ("split_report.json", split_report))
    say(json.dumps(split_report, indent=2))
    return 0


def write_parts(output_dir: str, command: str, parts: dict[str, list], source: str, report: tuple[str, dict]) -> None:
    """Replace ``output_dir`` whole (``outputs.replacing_contents``) with ``parts`` (one JSONL file
    each, with the provenance of ``source``'s columns in its sidecar, so a part is as usable as the
    whole) and ``report``."""
    meta = read_meta(source)
    with replacing_contents(output_dir, command):
        for name, rows in parts.items():
            part = write_jsonl(rows, Path(output_dir) / f"{name}.jsonl")
            write_meta(part, meta, command)
        write_text(Path(output_dir) / report[0], json.dumps(report[1], indent=2) + "\n")
