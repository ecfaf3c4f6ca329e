"""A Hugging Face model card (``README.md``) in every model directory deltapref saves: metadata
the Hub reads (base model, datasets, license, library, pipeline tag, tags) and a body with the
command that made the model, its training summary and the held-out metrics deltapref measured."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from deltapref import __version__
from deltapref.artifacts.outputs import write_text
from deltapref.config.commands import changed_options
from deltapref.data.loading import parse_hub_id
from deltapref.models.names import HUB_IDS
from deltapref.models.provenance import read_meta

CARD = "README.md"
PIPELINE_TAGS = {"policy": "text-generation", "reward": "text-classification"}
TRAINING_FLAGS = (  # the TrainingArguments a card names (the rest are deltapref's defaults or bookkeeping)
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "seed",
)
NOT_IN_COMMAND = ("overwrite_output_dir", "disable_tqdm")
SUMMARY_KEYS = ("train_rows", "skipped_rows", "duplicate_rows", "steps", "train_loss", "train_seconds", "wall_seconds")


def read_card_metadata(model_dir: str | Path) -> dict:
    """The YAML metadata of a model directory's card ({} when it has none)."""
    path = Path(model_dir) / CARD
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---\n"):
        return {}
    head, _, _ = text[4:].partition("\n---")
    try:
        metadata = yaml.safe_load(head)
    except yaml.YAMLError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def lineage(model: str) -> dict:
    """Base model and license for ``model``: an alias's Hub id and license, a deltapref model's own
    card's (so an aligned model names the Hub model its SFT parent came from), a Hub id as given;
    {} for a local directory without a card or a model built from scratch."""
    if model in HUB_IDS:
        hub_id, license_id = HUB_IDS[model]
        return {"base_model": hub_id, "license": license_id}
    metadata = read_card_metadata(model)
    if metadata:
        return {k: metadata[k] for k in ("base_model", "license") if k in metadata}
    if not Path(model).exists() and parse_hub_id(model):
        return {"base_model": model}
    return {}


def card_metadata(kind: str, model: str, train_data: str, method: str) -> dict:
    metadata = {**lineage(model), "library_name": "transformers"}
    if kind in PIPELINE_TAGS:
        metadata["pipeline_tag"] = PIPELINE_TAGS[kind]
    hub = parse_hub_id(train_data) if train_data else None
    if hub:
        metadata["datasets"] = [hub[0]]
    tags = ["deltapref", kind, method.split("+")[0]] + (["reward-difference-coefficients"] if "+rc" in method else [])
    metadata["tags"] = list(dict.fromkeys(tags))
    return metadata


def _command(stage: str, options: dict, training: dict) -> str:
    parts = [f"deltapref {stage}"]
    for name, value in {**options, **training}.items():
        value = getattr(value, "value", value)  # enums (e.g. the scheduler type) by their value
        if name not in NOT_IN_COMMAND and value is not None and value is not False and value != "":
            parts.append(f"--{name} {value}")
    return " \\\n    ".join(parts)


def _table(rows: dict) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def _flat_metrics(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flat_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            flat[prefix + key] = value
    return flat


def causal_lm_loading(name: str) -> str:
    """How to use a saved policy: it loads as any causal LM."""
    return (
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'model = AutoModelForCausalLM.from_pretrained("{name}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")\n```'
    )


def write_model_card(
    output_dir: str | Path,
    *,
    kind: str,
    stage: str,
    method: str,
    model: str,
    train_data: str,
    options: dict,
    training: dict,
    summary: dict,
    metrics: dict | None = None,
    every_option: dict | None = None,
    scores: dict | None = None,
    loading: Callable[[str], str] = causal_lm_loading,
) -> Path:
    """Write ``output_dir/README.md``: ``options`` are the stage's (non-default) options and
    ``training`` its training arguments, as the command line that made the model; ``summary``
    the training summary; ``metrics`` held-out measurements (e.g. a scorer's test accuracy);
    ``every_option`` every option's value, defaults included; ``scores`` the provenance of the
    score columns the run read (which scorer or oracle made them); ``loading`` the card's "how to
    load it" snippet for the folder's name (a scorer's comes from its kind)."""
    metadata = card_metadata(kind, model, train_data, method)
    trained = {k: summary[k] for k in SUMMARY_KEYS if summary.get(k) is not None}
    sections = [
        "---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---",
        f"# {Path(output_dir).name}",
        f"{kind.capitalize()} trained with deltapref {__version__} ({method}) from `{model}` on `{train_data}`.",
        "## Command\n\n```bash\n" + _command(stage, options, training) + "\n```",
        "## Training\n\n" + _table(trained),
    ]
    if scores:
        lines = [f"- `{column}`: {_origin(origin)}" for column, origin in scores.items()]
        sections.append("## Scores it trained on\n\n" + "\n".join(lines))
    if summary.get("labels"):
        sections.append("## Labels it did not take as given\n\n" + _table(_flat_metrics(summary["labels"])))
    if summary.get("diagnostics"):
        sections.append("## Diagnostics\n\n" + _table(_flat_metrics(summary["diagnostics"])))
    if summary.get("warnings"):
        sections.append("## Warnings\n\n" + "\n".join(f"- {w}" for w in summary["warnings"]))
    if metrics:
        sections.append("## Held-out metrics (measured by deltapref)\n\n" + _table(_flat_metrics(metrics)))
    sections.append("## Loading\n\n" + loading(Path(output_dir).name))
    shown = every_option if every_option is not None else options
    title = "every value, defaults included" if every_option is not None else "those that differ from the defaults"
    sections.append(f"## Options ({title})\n\n```json\n" + json.dumps(shown, indent=2, default=str) + "\n```")
    path = Path(output_dir) / CARD
    write_text(path, "\n\n".join(sections) + "\n")
    return path


def _origin(origin: dict) -> str:
    """One column's provenance as a line: the model (its path) that made it, and how."""
    model = origin.get("model") or origin.get("reference") or {}
    where = f"`{model['path']}`" if isinstance(model, dict) and "path" in model else ""
    rest = {k: v for k, v in origin.items() if k not in ("model", "reference")}
    return " ".join(part for part in (where, json.dumps(rest, default=str) if rest else "") if part) or "unrecorded"


def _absolute(options: dict) -> dict:
    """Option values that name existing files or directories, as absolute paths (a card read
    elsewhere still names them unambiguously)."""
    return {
        name: str(Path(value).resolve()) if isinstance(value, str) and value and Path(value).exists() else value
        for name, value in options.items()
    }


def write_run_card(
    config,
    args,
    *,
    kind: str,
    stage: str,
    method: str,
    summary: dict,
    metrics: dict | None = None,
    read_columns: tuple[str, ...] = (),
    loading: Callable[[str], str] = causal_lm_loading,
):
    """The card of a run that trained ``config.model`` on ``config.train_data`` into
    ``args.output_dir`` (on the process that saves): the command with every changed option (paths
    absolute), every option's value, the score columns it read and who made them
    (``read_columns``, from the data's provenance), its diagnostics and warnings."""
    if not args.should_save:
        return None
    training = {name: getattr(args, name) for name in TRAINING_FLAGS}
    if training["max_steps"] is not None and training["max_steps"] <= 0:
        del training["max_steps"]
    return write_model_card(
        args.output_dir,
        kind=kind,
        stage=stage,
        method=method,
        model=_absolute({"model": config.model})["model"],
        train_data=_absolute({"data": config.train_data})["data"],
        options=_absolute(changed_options(config)),
        training=training,
        summary=summary,
        metrics=metrics,
        every_option=_absolute({f.name: getattr(config, f.name) for f in dataclasses.fields(config)}),
        scores={c: origin for c, origin in read_meta(config.train_data)["columns"].items() if c in read_columns},
        loading=loading,
    )
