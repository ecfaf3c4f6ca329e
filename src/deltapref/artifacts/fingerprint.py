"""Content fingerprints of the files and directories a pipeline stage reads, so that its cache
key changes when an input's content does, not only when its path or options do.

A file's fingerprint is the SHA-256 of its bytes; a directory's covers every file under it
(relative names and contents, deltapref's own lock files left out). Hashing is skipped when a
file's size, modification time and inode match the ones recorded the last time it was hashed
(the ``memo``, kept by the caller between runs), so a rerun over unchanged inputs stays fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from deltapref import __version__

SKIPPED_PREFIXES = (".",)  # hidden files: a stage's own markers, locks and temporary files
BLOCK = 1 << 20


def _stat_key(path: Path) -> list:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def file_sha256(path: Path, memo: dict) -> str:
    """The SHA-256 of ``path``'s bytes, from ``memo`` when its size, mtime and inode are unchanged."""
    key = str(path.resolve())
    stat = _stat_key(path)
    known = memo.get(key)
    if known and known.get("stat") == stat:
        return known["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    memo[key] = {"stat": stat, "sha256": digest.hexdigest()}
    return memo[key]["sha256"]


def content_sha256(path: str | os.PathLike, memo: dict) -> str:
    """The fingerprint of a file, or of a directory's files (names and contents)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path, memo)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path)
        if any(part.startswith(SKIPPED_PREFIXES) for part in relative.parts):
            continue
        digest.update(str(relative).encode() + b"\0" + file_sha256(file, memo).encode())
    return digest.hexdigest()


def read_paths(values, skip_under: Path) -> list[Path]:
    """The existing local paths named by the string values in ``values`` (nested lists and
    mappings included), leaving out those under ``skip_under`` (what earlier stages made)."""
    found: list[Path] = []

    def visit(value):
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str) and value and "\0" not in value and len(value) < 4096:
            whole = Path(value)
            try:
                parts = [value] if whole.exists() or "," not in value else value.split(",")
            except OSError:
                parts = value.split(",")
            for part in parts:  # a comma list of paths, unless the whole value names one
                candidate = Path(part)
                try:
                    exists = candidate.exists()
                except OSError:
                    exists = False
                if exists and not candidate.resolve().is_relative_to(skip_under.resolve()):
                    found.append(candidate)

    visit(values)
    return sorted(set(found), key=str)


OUTPUT_OPTIONS = ("output", "output_dir")  # what a stage writes, not what it reads
CONTENT_MEMO = ".deltapref-content.json"  # in the run's folder: input hashes by size, mtime and inode


def input_contents(args: dict, output_dir: Path, memo: dict) -> dict[str, str]:
    """Path -> content fingerprint of every file or directory outside the run's folder that a
    stage's arguments name (what earlier stages made is covered by their keys)."""
    reads = {k: v for k, v in args.items() if k not in OUTPUT_OPTIONS}
    return {str(path): content_sha256(path, memo) for path in read_paths(reads, output_dir)}


def stage_key(stage: dict, args: dict, upstream: dict[str, str], contents: dict[str, str]) -> str:
    """The cache key of a stage run: its command, resolved arguments, launcher, the keys of the
    stages it reads, the content of every other file it reads and deltapref's version."""
    identity = {
        "command": stage["command"],
        "args": args,
        "launcher": stage.get("launcher"),
        "upstream": upstream,
        "contents": contents,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def read_memo(path: Path) -> dict:
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}
