"""Scoring for ``deltapref score``: annotate preference pairs with scorer outputs and coefficients.

Adds ``reward_chosen``/``reward_rejected`` (reward model, or the mean of an ensemble whose
members' rewards go to ``ensemble_reward_*`` lists), ``diff`` (difference model d(x, y_w, y_l)),
``oracle_reward_*`` (DRDO oracle) and ``coef`` = σ(Δ)^α. Work is done in chunks written
atomically to ``<output>.parts/``; a rerun with the same settings skips finished chunks, so an
interrupted run resumes and ends with exactly the rows and values of an uninterrupted one.
Which model produced each column is recorded in ``<output>.deltapref.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from . import distributed
from .coefficients import Weighting, coefficients_of_rows
from .columns import ENSEMBLE_REWARD, REF_LOGP, REFERENCE_BLOCKS, REWARD, ref_logp
from .data.loading import load_preferences, read_records, save_dataset, write_jsonl
from .data.schema import DataError
from .data.splits import fold_of
from .models import check_role, load_causal_lm, load_scorer, load_tokenizer, scorer_members
from .objectives import SCORER_OBJECTIVES
from .outputs import claim_output, exclusive, mark_directory, write_text
from .policy.reference import pair_reference_logps
from .provenance import describe, read_meta, reference_identity
from .scorers.inference import balanced_differences, pair_differences, pointwise_rewards, routed

logger = logging.getLogger(__name__)


def scorer_models(config) -> dict[str, str]:
    """Scorer kind -> the trained model directory this run scores with (each kind's own option)."""
    named = {kind: getattr(config, o.score_option) for kind, o in SCORER_OBJECTIVES.items()}
    return {kind: path for kind, path in named.items() if path}


def produced_columns(config) -> dict[str, dict]:
    """Column name -> provenance for everything this run adds."""
    columns: dict[str, dict] = {}
    for kind, path in scorer_models(config).items():
        objective = SCORER_OBJECTIVES[kind]
        origin = {"model": describe(path), **({"order": config.difference_order} if objective.pairwise else {})}
        columns.update({c: origin for c in objective.columns})
    members = config.ensemble_members()
    if members:
        ensemble = {"ensemble": [describe(m) for m in members]}
        columns.update({c: ensemble for c in ENSEMBLE_REWARD})
        if not config.reward_model:
            columns.update({c: dict(ensemble, reduce="mean") for c in REWARD})
    if config.reference_model:
        reference = {
            "reference": reference_identity(config.reference_model, config.reference_model, config.tokenization)
        }
        columns.update({column: reference for column in REF_LOGP})
    source = config.resolved_coef_source()
    if source:
        columns[config.coef_column] = {"source": source, "alpha": config.alpha, "formula": "sigmoid(delta)^alpha"}
    return columns


def _score_chunk(rows: list[dict], config, models: dict[str, list], following: dict) -> list[dict]:
    """Scores of one chunk; ``models`` maps a key to its members, (model, tokenizer) pairs (a
    cross-fitted scorer has one per fold and each row goes to the fold model that never saw it)."""
    prompts = [r["prompt"] for r in rows]
    chosen = [r["chosen"] for r in rows]
    rejected = [r["rejected"] for r in rows]
    out = [{} for _ in rows]
    tok = config.tokenization

    def put(name, values):
        for target, value in zip(out, values):
            target[name] = value

    def scored(key, score, *columns):
        members = models[key]
        folds = [fold_of(row, len(members)) for row in rows]
        return routed(score, members, folds, *columns, config=tok, batch_size=config.batch_size, progress=False)

    def rewards(key):
        return scored(key, pointwise_rewards, prompts, chosen), scored(key, pointwise_rewards, prompts, rejected)

    score_pairs = balanced_differences if config.difference_order == "balanced" else pair_differences
    for kind, objective in SCORER_OBJECTIVES.items():
        if kind in models:
            if objective.pairwise:
                (column,) = objective.columns
                put(column, scored(kind, score_pairs, prompts, chosen, rejected))
            else:
                for name, values in zip(objective.columns, rewards(kind)):
                    put(name, values)
    members = sorted(k for k in models if k.startswith("member"))
    if members:
        both = [rewards(k) for k in members]
        for side, name in enumerate(ENSEMBLE_REWARD):
            put(name, [list(v) for v in zip(*(s[side] for s in both))])
        if not config.reward_model:
            for mean, member_values in zip(REWARD, ENSEMBLE_REWARD):
                put(mean, [sum(v) / len(v) for v in (o[member_values] for o in out)])
    if "reference" in models:
        ((model, tokenizer),) = models["reference"]
        values = pair_reference_logps(model, tokenizer, rows, following, tok, config.batch_size)
        for j, block in enumerate(REFERENCE_BLOCKS):
            put(ref_logp(block), [v[j] for v in values])
    source = config.resolved_coef_source()
    if source:
        put(config.coef_column, coefficients_of_rows(source, out, Weighting(alpha=config.alpha)))
    return out


def _model_specs(config) -> list[tuple[str, str, str]]:
    """(key, directory, role) of every model a scoring run uses."""
    specs = [(kind, path, kind) for kind, path in scorer_models(config).items()]
    specs += [(f"member{i:03d}", m, "reward") for i, m in enumerate(config.ensemble_members())]
    specs.append(("reference", config.reference_model, "policy"))
    return [spec for spec in specs if spec[1]]


def _load_models(config) -> dict[str, list]:
    models = {}
    for key, path, role in _model_specs(config):
        if role == "policy":
            models[key] = [(load_causal_lm(path), load_tokenizer(path))]
        else:
            models[key] = [load_scorer(member) for member in scorer_members(path)]
    return models


def _fingerprint(config, rows: int, produced: dict) -> dict:
    path = Path(config.input)
    stat = path.stat() if path.exists() else None
    settings = {k: v for k, v in asdict(config).items() if k not in ("output", "overwrite", "batch_size")}
    return {
        "input": str(path.resolve()) if stat else config.input,
        "rows": rows,
        "input_bytes": stat.st_size if stat else None,
        "input_mtime": int(stat.st_mtime) if stat else None,
        "settings": settings,
        "columns": produced,
    }


def run_scoring(config) -> None:
    """Score ``config.input`` into ``config.output`` in resumable chunks (``config``: a ``ScoreConfig``)."""
    distributed.init_if_launched()
    for _, path, role in _model_specs(config):
        for member in scorer_members(path):
            check_role(member, role)
    inputs = [config.input] + [path for _, path, _ in _model_specs(config)]
    claim_output(config.output, "score", inputs=inputs, overwrite=config.overwrite)
    with exclusive(config.output) if distributed.is_main() else contextlib.nullcontext():
        _run_scoring(config)


def _run_scoring(config) -> None:
    dataset, report = load_preferences(config.input, format=config.format, skip_bad_rows=config.skip_bad_rows)
    if distributed.is_main():
        logger.info(report.summary())
    produced = produced_columns(config)
    clash = sorted(set(produced) & set(dataset.column_names))
    if clash and not config.overwrite:
        known = read_meta(config.input)["columns"]
        origin = "; ".join(
            f"{c} from {json.dumps(known[c])[:200]}" if c in known else f"{c} (origin unknown)" for c in clash
        )
        raise DataError(
            f"already has column(s) {', '.join(clash)} ({origin}); refusing to mix scores "
            "from different models: pass --overwrite to replace them",
            source=config.input,
        )
    parts_dir = Path(config.output).with_name(Path(config.output).name + ".parts")
    manifest = _fingerprint(config, len(dataset), produced)
    if distributed.is_main():
        if not (parts_dir / "manifest.json").exists():  # no partial work of a scoring run: must be free
            claim_output(parts_dir, "score", flag=None)
        if (parts_dir / "manifest.json").exists():
            if json.loads((parts_dir / "manifest.json").read_text()) != json.loads(json.dumps(manifest)):
                if not config.overwrite:
                    raise DataError(
                        f"{parts_dir} holds partial work of a run with other inputs or settings; "
                        "remove it or pass --overwrite",
                        source=config.output,
                    )
                shutil.rmtree(parts_dir)
        mark_directory(parts_dir, "score")
        write_text(parts_dir / "manifest.json", json.dumps(manifest, indent=2))
    distributed.barrier()
    chunks = list(range(0, len(dataset), config.chunk_size))
    part = lambda i: parts_dir / f"part-{i:05d}.jsonl"  # noqa: E731
    missing = [i for i in range(len(chunks)) if not part(i).exists()]
    if len(missing) < len(chunks) and distributed.is_main():
        logger.info("resuming: %d of %d chunks already scored", len(chunks) - len(missing), len(chunks))
    todo = [i for i in missing if i % distributed.world_size() == distributed.rank()]
    if todo:
        models = _load_models(config)
        for i in tqdm(todo, desc="scoring chunks", unit="chunk", disable=not distributed.is_main()):
            end = min(chunks[i] + config.chunk_size, len(dataset))
            rows = dataset.select(range(chunks[i], end)).to_list()
            write_jsonl(_score_chunk(rows, config, models, dataset[end % len(dataset)]), part(i))
    distributed.barrier()
    if distributed.is_main():
        _assemble(config, dataset, produced, parts_dir, len(chunks))
    distributed.barrier()


def _assemble(config, dataset, produced: dict, parts_dir: Path, n_chunks: int) -> None:
    scored = []
    for i in range(n_chunks):
        scored.extend(row for _, row in read_records(str(parts_dir / f"part-{i:05d}.jsonl")))
    if len(scored) != len(dataset):
        raise DataError(f"partial work holds {len(scored)} rows, the input {len(dataset)}", source=str(parts_dir))
    for name in produced:
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
        dataset = dataset.add_column(name, [row[name] for row in scored])
    meta = read_meta(config.input)
    meta["columns"].update(produced)
    save_dataset(dataset, config.output, "score", overwrite=config.overwrite, meta=meta)
    shutil.rmtree(parts_dir)
    print(f"scored {len(dataset)} rows into {config.output} (columns: {', '.join(produced)})")
