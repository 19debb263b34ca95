"""Outputs appear complete or not at all.

Every file or folder the project writes goes to a temporary name beside its final path and is renamed
into place only when complete, so a full disk, a crash or a SIGKILL never leaves something that reads
as a smaller result. The temporary name is `.<name>.partial-<pid>`: hidden from globs such as
`*.csv`, in the same folder (so the rename is atomic) and unique per process. A failure for lack of
space or permission becomes an `OutputError` whose message names the final path. Standard library
only: the light workflow steps import this without TensorFlow.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


class OutputError(OSError):
    """An output could not be written; the message names the path, the cause and what to do."""

    def __str__(self) -> str:  # the message alone, even with errno and filename set
        return str(self.args[0]) if self.args else super().__str__()


def output_error(error: OSError, path: str | Path) -> OSError:
    """`error` as an `OutputError` naming `path` when it is a lack of space or permission, else as is."""
    if isinstance(error, OutputError):
        return error
    if error.errno in _NO_SPACE:
        message = (f"cannot write {path}: no space left on device; free some space or choose "
                   "another output folder, then run again")
    elif error.errno in _NOT_WRITABLE:
        message = (f"cannot write {path}: the folder is not writable ({error.strerror}); "
                   "choose an output folder you can write to")
    else:
        return error
    converted = OutputError(message)
    converted.errno, converted.filename = error.errno, str(path)
    return converted


def partial_name(path: str | Path, suffix: str = "") -> Path:
    """The temporary sibling `path` is written to before it is renamed into place. `suffix` ends
    it for writers that insist on one (Keras: `.keras`, `.weights.h5`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{os.getpid()}{suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk; best effort (not all
    # filesystems allow opening a folder).
    with contextlib.suppress(OSError):
        _fsync(folder)


def _raise_as_output_error(error: BaseException, path: Path) -> None:
    """Raise an OSError about a scratch name again as one about `path` (full disk, read-only)."""
    if isinstance(error, OSError):
        converted = output_error(error, path)
        if converted is not error:
            raise converted from error


@contextlib.contextmanager
def replacing(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; it replaces `path` on normal exit.

    On an exception the temporary file is removed and an existing `path` is left untouched.
    `suffix`: see `partial_name`.
    """
    path = Path(path)
    partial = partial_name(path, suffix)
    try:
        yield partial
        _fsync(partial)
        os.replace(partial, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        _raise_as_output_error(error, path)
        raise
    _fsync_folder(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as partial:
        partial.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as partial:
        partial.write_text(text)


def write_json(path: str | Path, obj: object, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextlib.contextmanager
def replacing_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; it replaces the folder `path` on normal exit.

    An existing folder at `path` is moved aside and removed only after the new one is in place, so
    at any moment `path` is either the old complete folder or the new complete one (for the instant
    between the two renames, absent, never partial).
    """
    path = Path(path)
    partial = partial_name(path)
    retired = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        yield partial
        for file in partial.rglob("*"):
            if file.is_file():
                _fsync(file)
        if path.exists():
            os.replace(path, retired)
        os.replace(partial, path)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if retired.exists() and not path.exists():
            os.replace(retired, path)
        _raise_as_output_error(error, path)
        raise
    _fsync_folder(path.parent)
    shutil.rmtree(retired, ignore_errors=True)


def check_writable(folder: str | Path) -> Path:
    """Create `folder` if missing and prove a file can be written in it, before any work starts."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file, not a folder; choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_name(folder / "write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except (FileExistsError, NotADirectoryError) as error:
        raise OutputError(f"cannot create output folder {folder}: {error.filename} is a file, "
                          "not a folder; choose another output folder") from error
    except OSError as error:
        converted = output_error(error, folder)
        if converted is error:
            raise OutputError(f"cannot write to output folder {folder}: {error.strerror}") from error
        raise converted from error
    return folder
