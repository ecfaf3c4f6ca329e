"""Scoring for ``deltapref score``: annotate preference pairs with scorer outputs and coefficients.

Adds each given scorer kind's columns (``deltapref.scorer_kinds``: ``reward_*``, ``diff``,
``oracle_reward_*``, ``ensemble_reward_*``, ``external_reward_*``), the reference policy's
log-probs and ``coef`` = σ(Δ)^α from the ``--coef_source`` kind. Work is done in chunks written
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

from deltapref.artifacts.fingerprint import content_sha256
from deltapref.artifacts.outputs import claim_output, claimed, mark_directory, write_text
from deltapref.coefficients import GOLD, Weighting, coefficients_of_rows, deltas
from deltapref.columns import REF_LOGP, REFERENCE_BLOCKS, ref_logp
from deltapref.data.loading import load_preferences, read_records
from deltapref.data.schema import DataError
from deltapref.data.writing import save_dataset, write_jsonl
from deltapref.evaluation.label_noise import estimate_label_noise
from deltapref.models.loading import check_policy, load_causal_lm, load_tokenizer
from deltapref.models.provenance import read_meta, reference_identity
from deltapref.policy.reference import pair_reference_logps
from deltapref.scorer_kinds import ScorerKind, given_kinds, weight_source
from deltapref.training import distributed

logger = logging.getLogger(__name__)


REFERENCE = "reference"  # the key of the reference policy among the loaded models


def planned_columns(config) -> dict[ScorerKind, tuple[str, ...]]:
    """Kind -> the columns it writes in this run: its source's, and what it fills that no other
    kind given writes (an ensemble's mean rewards when no reward model is given)."""
    kinds = given_kinds(config)
    written = {column for kind in kinds for column in kind.source.columns}
    return {kind: kind.source.columns + tuple(c for c in kind.fills if c not in written) for kind in kinds}


def produced_columns(config) -> dict[str, dict]:
    """Column name -> provenance for everything this run adds."""
    columns: dict[str, dict] = {}
    for kind, names in planned_columns(config).items():
        value = getattr(config, kind.option)
        columns.update({name: kind.provenance(value, config, name) for name in names})
    if config.reference_model:
        reference = {
            "reference": reference_identity(config.reference_model, config.reference_model, config.tokenization)
        }
        columns.update({column: reference for column in REF_LOGP})
    source = config.resolved_coef_source()
    if source:
        columns[config.coef_column] = {"source": source, "alpha": config.alpha, "formula": "sigmoid(delta)^alpha"}
    return columns


def _score_chunk(rows: list[dict], config, models: dict, following: dict) -> list[dict]:
    """Scores of one chunk: every given kind's columns (``models``: kind -> what it loaded; the
    reference policy under ``REFERENCE``), then the coefficient."""
    out = [{} for _ in rows]

    def put(name, values):
        for target, value in zip(out, values):
            target[name] = value

    for kind, names in planned_columns(config).items():
        scores = kind.score(models[kind], rows, config)
        for name in names:
            put(name, scores[name])
    if REFERENCE in models:
        model, tokenizer = models[REFERENCE]
        values = pair_reference_logps(model, tokenizer, rows, following, config.tokenization, config.batch_size)
        for j, block in enumerate(REFERENCE_BLOCKS):
            put(ref_logp(block), [v[j] for v in values])
    source = config.resolved_coef_source()
    if source:
        put(config.coef_column, coefficients_of_rows(weight_source(source), out, Weighting(alpha=config.alpha)))
    return out


def _load_models(config) -> dict:
    models = {kind: kind.load(value, config) for kind, value in given_kinds(config).items()}
    if config.reference_model:
        models[REFERENCE] = (load_causal_lm(config.reference_model), load_tokenizer(config.reference_model))
    return models


def _model_paths(config) -> list[str]:
    paths = [path for kind, value in given_kinds(config).items() for path in kind.paths(value)]
    return paths + ([config.reference_model] if config.reference_model else [])


def _fingerprint(config, rows: int, produced: dict) -> dict:
    path = Path(config.input)
    settings = {k: v for k, v in asdict(config).items() if k not in ("output", "overwrite", "batch_size")}
    return {
        "input": str(path.resolve()) if path.exists() else config.input,
        "rows": rows,
        "input_sha256": content_sha256(path, {}) if path.exists() else None,  # an edit keeping size and mtime too
        "settings": settings,
        "columns": produced,
    }


def run_scoring(config) -> None:
    """Score ``config.input`` into ``config.output`` in resumable chunks (``config``: a ``ScoreConfig``)."""
    distributed.init_if_launched()
    for kind, value in given_kinds(config).items():
        kind.check(value)
    if config.reference_model:
        check_policy(config.reference_model)
    inputs = [config.input] + _model_paths(config)
    claim = dict(inputs=inputs, overwrite=config.overwrite)
    with claimed(config.output, "score", **claim) if distributed.is_main() else contextlib.nullcontext():
        _run_scoring(config)


def _run_scoring(config) -> None:
    read_meta(config.input)  # a broken sidecar is refused now, not after the work
    dataset, report = load_preferences(
        config.input, format=config.format, skip_bad_rows=config.skip_bad_rows, pairs_for="score"
    )
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
    scores = {name: [] for name in produced}  # only the new columns: the input's text is in ``dataset``
    for i in range(n_chunks):
        for _, row in read_records(str(parts_dir / f"part-{i:05d}.jsonl")):
            for name, values in scores.items():
                values.append(row[name])
    held = len(next(iter(scores.values()), []))
    if held != len(dataset):
        raise DataError(f"partial work holds {held} rows, the input {len(dataset)}", source=str(parts_dir))
    for name, values in scores.items():
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
        dataset = dataset.add_column(name, values)
    meta = read_meta(config.input)
    meta["columns"].update(produced)
    noise, lines = label_noise(config, dataset, produced)
    meta["noise"] = {k: v for k, v in (meta.get("noise") or {}).items() if k not in {kind.name for kind in noise}}
    meta["noise"].update({kind.name: estimate for kind, estimate in noise.items() if estimate})
    save_dataset(dataset, config.output, "score", overwrite=config.overwrite, meta=meta)
    shutil.rmtree(parts_dir)
    distributed.say(f"scored {len(dataset)} rows into {config.output} (columns: {', '.join(produced)})" + lines)


def label_noise(config, dataset, produced: dict) -> tuple[dict, str]:
    """For each kind scored here: the share of wrong labels estimated from its Δ when its scores
    are held-out (a cross-fitted model's), else None; and the summary's lines (with the true share
    where the data holds the built-in task's gold rewards)."""
    estimates, lines = {}, ""
    gold = all(c in dataset.column_names for c in GOLD.columns)
    true_share = float((deltas(GOLD, dataset) < 0).double().mean()) if gold else None
    for kind in given_kinds(config):
        if "cross_fit" not in produced[kind.source.columns[0]].get("model", {}):
            estimates[kind] = None
            logger.info(
                "no share of wrong labels from the %s scores: not held-out (train-scorer --cross_fit K)", kind.name
            )
            continue
        estimate = estimate_label_noise(deltas(kind.source, dataset).numpy())
        if true_share is not None:
            estimate["gold_wrong_share"] = true_share
        estimates[kind] = estimate
        lines += (
            f"\nlabels: an estimated {estimate['estimate']:.1%} [{estimate['low']:.1%}, {estimate['high']:.1%}] are "
            f"wrong ({kind.name} scores, held-out, calibrated; the scorer agrees with {estimate['scorer_agrees']:.1%} "
            "of the labels, and its own errors count as wrong labels: an upper bound unless it separates the truth)"
            + (f"; true share (gold): {true_share:.1%}" if true_share is not None else "")
        )
    return estimates, lines
