"""Writing outputs without harm: an existing output is replaced only if deltapref wrote it (or the
user passes ``--overwrite``), writability is checked before any heavy work, one run at a time
writes an output (a lock), and written files keep the user's umask.

deltapref marks what it writes: a data file or dataset directory by its provenance sidecar
``<output>.deltapref.json``, an output directory (a model, a task, splits) by a ``.deltapref``
file inside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError

MARKER = ".deltapref"
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


def remove_output(path: str | Path) -> None:
    """Remove an output being replaced: a directory with its contents, a file, or a symbolic
    link itself (never what it points to)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def meta_path(output: str | Path) -> Path:
    """The provenance sidecar of a data output: ``<output>.deltapref.json``."""
    output = Path(output)
    return output.with_name(output.name + ".deltapref.json")


def written_by_deltapref(path: str | Path) -> bool:
    path = Path(path)
    return meta_path(path).exists() or (path.is_dir() and (path / MARKER).exists())


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


def check_output(path: str | Path, overwrite: bool = False, flag: str = "--overwrite") -> None:
    """Refuse a non-empty output that deltapref did not write (unless ``overwrite``) and an
    output that cannot be written."""
    path = Path(path)
    if path.exists() and not overwrite and not written_by_deltapref(path):
        if path.is_dir() and any(path.iterdir()):
            raise OutputError(
                f"{path} is a non-empty directory that deltapref did not write; refusing to replace "
                f"it (choose another output, or pass {flag} to replace it)"
            )
        if not path.is_dir():
            raise OutputError(
                f"{path} exists and deltapref did not write it; refusing to replace it (choose "
                f"another output, or pass {flag} to replace it)"
            )
    check_writable(path)


def mark_directory(path: str | Path) -> None:
    """Mark an output directory as deltapref's."""
    Path(path).mkdir(parents=True, exist_ok=True)
    (Path(path) / MARKER).touch()


@contextlib.contextmanager
def exclusive(path: str | Path):
    """Hold the write lock of ``path`` (a hidden ``.NAME.lock`` beside it, removed when the run
    ends, whether it succeeded or failed); refuse at once if another run holds it."""
    path = Path(path)
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
