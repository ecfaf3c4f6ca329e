"""Writing outputs without harm: an existing output is replaced only if deltapref wrote it (or the
user passes ``--overwrite``), and then whole; writability is checked before any heavy work; one run
at a time writes an output (a lock, taken before ownership is decided); written files keep the
user's umask. What marks an output as deltapref's is in ``records``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from deltapref.artifacts.records import LEGACY, MARKER, SIDECAR_SUFFIX, maker
from deltapref.errors import OutputError

ASIDE = ".previous-run"  # inside an output directory: the earlier run, kept until the new one completes


def remove_output(path: str | Path) -> None:
    """Remove an output being replaced: a directory with its contents, a file, or a symbolic
    link itself (never what it points to)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | Path) -> None:
    """Refuse an output whose directory cannot be created or written, before any work."""
    path = Path(path).absolute()
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise OutputError(f"{path}: cannot write there, {base} is a file, not a directory")
    if not os.access(base, os.W_OK):
        raise OutputError(f"{path}: cannot write there, {base} is not writable")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{path}: cannot create {path.parent} ({error.strerror})") from None


def _local(path: str | Path | None) -> Path | None:
    """``path`` made absolute (links resolved) when it names something on this machine."""
    if not path or not isinstance(path, (str, os.PathLike)):
        return None
    candidate = Path(path)
    return candidate.resolve() if candidate.exists() or candidate.is_symlink() else None


def _check_not_an_input(path: Path, inputs, replaced_whole: bool) -> None:
    """Refuse an output that is one of the command's inputs or lies inside one, and one that is
    replaced whole (a file, a dataset directory) while it holds an input."""
    output = Path(path).absolute().resolve()
    for given in inputs:
        source = _local(given)
        if source is None:
            continue
        holds = source.is_relative_to(output) and replaced_whole
        if output == source or holds or output.is_relative_to(source):
            where = "is" if output == source else "holds" if source.is_relative_to(output) else "lies inside"
            what = "one of this run's inputs" if output == source else f"{given}, an input of this run"
            raise OutputError(
                f"{path} {where} {what}; a command never writes over what it reads: choose another output"
            )


def claim_output(
    path: str | Path,
    command: str,
    *,
    inputs=(),
    overwrite: bool = False,
    flag: str | None = "--overwrite",
    replaced_whole: bool = False,
) -> None:
    """The one rule for every output, checked before any heavy work: ``command`` may write
    ``path`` if it is absent, an empty directory, or made by the same command; never if it is
    one of the run's ``inputs`` or lies inside one (nor, when it is ``replaced_whole``, holds
    one: a dataset directory, a folder of parts a part could write over); a non-empty path
    deltapref did not make, or that another command made, only with ``overwrite`` (``flag``
    names that option; None where there is none).
    The path must also be writable."""
    path = Path(path)
    named(path)
    if path.name.endswith(SIDECAR_SUFFIX):
        raise OutputError(
            f"{path}: names ending in {SIDECAR_SUFFIX} are deltapref's provenance records; choose another"
        )
    _check_not_an_input(path, inputs, replaced_whole or not path.is_dir())
    made_by = maker(path)
    remedy = f"choose another output, or pass {flag} to replace it" if flag else "choose another output"
    occupied = path.is_symlink() or path.is_file() or (path.is_dir() and any(path.iterdir()))
    if occupied and not overwrite:
        if made_by is None:
            directory = path.is_dir() and not path.is_symlink()
            what = (
                "is a non-empty directory that deltapref did not write"
                if directory
                else "exists and deltapref did not write it"
            )
            raise OutputError(f"{path} {what}; refusing to replace it ({remedy})")
        if made_by not in (command, LEGACY):
            raise OutputError(
                f"{path} was written by `deltapref {made_by}`, not by `deltapref {command}`; refusing to replace "
                f"another command's output ({remedy})"
            )
    check_writable(path)


def named(path: str | Path) -> Path:
    """``path`` made absolute; the file-system root, which has no name to write by, refused."""
    absolute = Path(path).expanduser().absolute()
    if not absolute.name:
        raise OutputError(f"{path}: the file-system root cannot be an output; name a folder or file in it")
    return absolute


@contextlib.contextmanager
def claimed(path: str | Path, command: str, **claim):
    """Hold ``path``'s lock, then claim it for ``command`` (``claim_output`` with ``claim``): in
    this order, of two runs started together on one new output only one proceeds."""
    with exclusive(path):
        claim_output(path, command, **claim)
        yield Path(path)


@contextlib.contextmanager
def replaced_directory(path: str | Path, command: str, **claim):
    """Lock, claim and mark the output directory ``path`` for ``command``, its earlier contents
    replaced whole (:func:`replacing_contents`): the one way a data command writes a directory."""
    with claimed(path, command, replaced_whole=True, **claim), replacing_contents(path, command):
        yield Path(path)


@contextlib.contextmanager
def replacing_contents(path: str | Path, command: str):
    """Within ``path``'s lock: its earlier contents replaced whole (:func:`replacing`) and the
    directory marked as ``command``'s."""
    with replacing(path):
        mark_directory(path, command)
        yield Path(path)


@contextlib.contextmanager
def replacing(path: str | Path, keep: bool = False, resumable=lambda path: False):
    """The one way an output directory's earlier run gives way to a new one (within its lock):
    unless ``keep`` (the new run continues it), the earlier contents go aside (``ASIDE``; a link
    given as the output is replaced itself, never what it points to). When the block fails or is
    interrupted, and ``resumable(path)`` finds nothing of the new run to resume, what it wrote goes
    and the earlier contents come back; when the block ends, they are removed. Nothing of an
    earlier run is ever left beside the new one."""
    path = Path(path)
    if not keep and path.is_symlink():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    if not keep:
        set_aside(path)
    try:
        yield path
    except BaseException:
        if (path / ASIDE).exists() and not resumable(path):
            put_back(path)
        raise
    remove_output(path / ASIDE)


def set_aside(output: Path) -> bool:
    """Move the earlier run in ``output`` into ``output/ASIDE`` (whole, whatever its files);
    where an attempt that failed or was interrupted already set one aside, that one stays (it
    is still the last complete run) and the attempt's leftovers go. True when something is aside."""
    aside = output / ASIDE
    entries = [entry for entry in output.iterdir() if entry.name != ASIDE] if output.is_dir() else []
    if aside.exists():
        for entry in entries:
            remove_output(entry)
        return True
    if not entries:
        return False
    aside.mkdir()
    for entry in entries:
        os.replace(entry, aside / entry.name)
    return True


def put_back(output: Path) -> None:
    """Remove what this run wrote in ``output`` and move the earlier run back from ``ASIDE``."""
    aside = output / ASIDE
    for entry in output.iterdir():
        if entry.name != ASIDE:
            remove_output(entry)
    for entry in aside.iterdir():
        os.replace(entry, output / entry.name)
    aside.rmdir()


def mark_directory(path: str | Path, command: str, **record) -> None:
    """Mark an output directory as made by the deltapref ``command`` (with what else its run
    records: ``state``, ``identity``)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    write_text(Path(path) / MARKER, json.dumps({"made_by": command, **record}) + "\n")


@contextlib.contextmanager
def exclusive(path: str | Path):
    """Hold the write lock of ``path`` (a hidden ``.NAME.lock`` beside it, removed when the run
    ends, whether it succeeded or failed); refuse at once if another run holds it."""
    path = named(path)
    lock_path = path.with_name(f".{path.name}.lock")
    check_writable(lock_path)
    handle = _locked(lock_path, path)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # while still held: a waiting run then locks a fresh file
        os.close(handle)


def _locked(lock_path: Path, path: Path) -> int:
    """An open, exclusively locked handle on the file now at ``lock_path`` (if the holder
    removed the file between our open and our lock, lock the new one)."""
    while True:
        handle = os.open(lock_path, os.O_CREAT | os.O_RDWR, file_mode())
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise OutputError(
                f"{path} is being written by another deltapref run (lock {lock_path}); wait for it "
                "to finish or choose another output"
            ) from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(handle).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_file(destination: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` then move the result into place, so readers never see a
    half-written file; the file gets the mode of any new file under the user's umask."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return destination


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_file(path, lambda tmp: Path(tmp).write_text(text))


def finite_or_null(value):
    """``value`` with every NaN or infinity replaced by None (JSON null): a summary holds valid
    JSON, and a number that could not be computed reads as missing, not as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
