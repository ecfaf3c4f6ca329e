"""What deltapref records beside its outputs, and reads back through checked readers: an output
directory's marker (``.deltapref``: the command that made it; a training run's state and
identity), a data output's provenance sidecar (``<output>.deltapref.json``: the command, the
columns' origins and the output it describes, by content) and manifests listing a run's members
(``cross_fit.json``, ``ensemble.json``). Ownership is read from them (:func:`maker`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from deltapref.artifacts.fingerprint import content_sha256
from deltapref.errors import OutputError, RecordError

MARKER = ".deltapref"
SIDECAR_SUFFIX = ".deltapref.json"
CROSS_FIT = "cross_fit.json"  # a cross-fitted scorer's list of fold models
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``_ . -``, not starting with a dot),
    so joining it to an output directory stays inside it; else one line naming ``what``."""
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise OutputError(
            f"{what} {name!r} is not a plain name: use letters, digits, '_', '.' and '-' (not first), "
            "so that it names a file inside the output directory"
        )
    return name


def meta_path(output: str | Path) -> Path:
    """The provenance sidecar of a data output: ``<output>.deltapref.json``."""
    output = Path(output)
    if not output.absolute().name:  # the root: no name to add to
        return output.absolute() / SIDECAR_SUFFIX
    return output.absolute().with_name(output.absolute().name + SIDECAR_SUFFIX)


LEGACY = "deltapref"  # the maker of an output marked by a deltapref that did not record its command


def read_marker(directory: str | Path) -> dict | None:
    """What a deltapref output directory's marker records (``made_by``, and for a training run its
    ``state`` and ``identity``); ``{}`` for an unreadable marker, None for no marker."""
    marker = Path(directory) / MARKER
    if not Path(directory).is_dir() or Path(directory).is_symlink() or not marker.is_file():
        return None
    try:
        recorded = json.loads(marker.read_text() or "{}")
    except (ValueError, OSError, UnicodeDecodeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _sidecar_maker(path: Path) -> str | None:
    """The command a data output's sidecar names, when the sidecar describes the file now at
    ``path`` (its name and content: a file someone else put there, or a sidecar that only
    shares the name, makes nothing deltapref's)."""
    sidecar = meta_path(path)
    if not sidecar.is_file() or not (path.exists() or path.is_symlink()):
        return None
    try:
        recorded = json.loads(sidecar.read_text() or "{}")
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    if not isinstance(recorded, dict) or recorded.get("output") != output_identity(path):
        return None
    made_by = recorded.get("made_by")
    return made_by if isinstance(made_by, str) and made_by else None


def output_identity(path: str | Path) -> dict | None:
    """What a sidecar records of the output it describes: its name and content fingerprint."""
    path = Path(path)
    if path.is_symlink() or not path.exists():
        return None
    return {"name": path.name, "sha256": content_sha256(path, {})}


def maker(path: str | Path) -> str | None:
    """The deltapref command that made ``path`` (``"score"``, ``"align"``, ``"pipeline"``, ...),
    read from its marker: a directory's ``.deltapref`` file, or the provenance sidecar of a data
    output whose recorded content is the file's. ``LEGACY`` for a directory an older deltapref
    marked without naming the command; None for anything deltapref did not make."""
    path = Path(path)
    marker = read_marker(path)
    if marker is not None:
        made_by = marker.get("made_by")
        return made_by if isinstance(made_by, str) and made_by else LEGACY
    return _sidecar_maker(path)


def written_by_deltapref(path: str | Path) -> bool:
    return maker(path) is not None


def read_record(path: str | Path, what: str, fields: dict[str, type]) -> dict:
    """The JSON object deltapref wrote at ``path`` (``what`` names it), with each of ``fields``
    present and of its type: the one checked reader of sidecars and manifests, one line naming
    the file and the fault otherwise."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: {what} is missing") from None
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise RecordError(f"{path}: {what} is unreadable ({str(error)[:120]}); restore it or remove it") from None
    if not isinstance(record, dict):
        raise RecordError(f"{path}: {what} is not a JSON object; restore it or remove it")
    for name, kind in fields.items():
        if not isinstance(record.get(name), kind):
            raise RecordError(f"{path}: {what} has no valid '{name}' ({kind.__name__}); restore it or remove it")
    return record


def listed_members(directory: str | Path, manifest: str) -> list[str] | None:
    """The member directories a deltapref manifest in ``directory`` lists (``cross_fit.json``,
    ``ensemble.json``), each checked to be a plain name of an existing directory there; None
    when ``directory`` has no such manifest."""
    path = Path(directory) / manifest
    if not path.exists():
        return None
    members = read_record(path, f"the {manifest} manifest", {"members": list})["members"]
    if not members:
        raise RecordError(f"{path}: lists no members; retrain it")
    for member in members:
        check_name(member, f"{path}: member")
        if not (Path(directory) / member).is_dir():
            raise RecordError(f"{path}: member {member} is missing from {directory}; retrain it")
    return [str(Path(directory) / member) for member in members]
