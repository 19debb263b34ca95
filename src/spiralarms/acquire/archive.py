"""Extract zip and tar(.gz) archives without letting any member escape the destination folder.

Every member is checked before a single byte is written: paths must stay inside `dest` (no `..`,
no absolute paths), links must be relative and free of `..` (a `..` in a link can climb out
through another link), and the total uncompressed size may be capped. Extraction goes to a
hidden temporary folder beside `dest` that is renamed into place at the end, so an interrupted
run never leaves a half-filled `dest`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from spiralarms.acquire.errors import AcquireError, UnsafeArchiveError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    name: str  # as stored in the archive
    kind: str  # "file", "dir", "symlink", "hardlink" or "other"
    size: int = 0
    link: str = ""

    @property
    def path(self) -> str:
        """Normalised relative POSIX path; backslashes count as separators (`..\\x` too)."""
        return posixpath.normpath(self.name.replace("\\", "/")) if self.name else ""


def safe_extract(
    archive: str | os.PathLike, dest: str | os.PathLike, max_total_bytes: int | None = None
) -> list[Path]:
    """Extract `archive` (zip, tar, tar.gz/bz2/xz) into the new folder `dest`; return its files.

    Raises UnsafeArchiveError, naming the member, if any member would land outside `dest`, and
    naming the limit if the uncompressed total exceeds `max_total_bytes`. `dest` must not exist
    yet (or be empty); nothing is written anywhere when a check fails.
    """
    archive, dest = Path(archive), Path(dest)
    _require_free(dest, archive)
    members = read_members(archive)
    check_members(archive, members, max_total_bytes)
    files = [m for m in members if m.kind == "file"]
    logger.info(
        "extracting %d files (%.1f MB) from %s to %s",
        len(files), sum(m.size for m in files) / 1e6, archive, dest,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_extractions(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extracting", dir=dest.parent))
    try:
        _extract_into(archive, staging)
        if dest.is_dir():
            dest.rmdir()  # empty, checked above
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [dest / m.path for m in files]


def read_members(archive: Path) -> list[Member]:
    if not archive.is_file():
        raise AcquireError(f"archive {archive} does not exist")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [_zip_member(zf, info) for info in zf.infolist()]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return [_tar_member(info) for info in tf.getmembers()]
    raise AcquireError(f"{archive} is neither a zip nor a tar archive (or it is truncated)")


def check_members(archive: Path, members: list[Member], max_total_bytes: int | None) -> None:
    for member in members:
        _check_member(archive, member)
    total = sum(m.size for m in members if m.kind == "file")
    if max_total_bytes is not None and total > max_total_bytes:
        raise UnsafeArchiveError(
            f"{archive}: uncompressed size {total:,} bytes exceeds the limit of "
            f"{max_total_bytes:,} bytes (max_total_bytes); nothing was extracted"
        )


def _check_member(archive: Path, member: Member) -> None:
    def refuse(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"{archive}: refusing to extract member {member.name!r}: {why}; nothing was extracted"
        )

    if _is_absolute(member.path):
        raise refuse("absolute path")
    if _escapes(member.path):
        raise refuse("path leads outside the destination folder")
    if member.kind == "other":
        raise refuse("device, fifo or other special file")
    if member.kind == "symlink" and (_is_absolute(member.link) or ".." in _parts(member.link)):
        raise refuse(f"link to {member.link!r} may point outside the destination folder")
    hardlink_target = Member(member.link, "file").path
    if member.kind == "hardlink" and (_is_absolute(hardlink_target) or _escapes(hardlink_target)):
        raise refuse(f"hard link to {member.link!r} points outside the destination folder")


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    name = info.filename
    if info.is_dir():
        return Member(name, "dir")
    if stat.S_ISLNK(info.external_attr >> 16):
        return Member(name, "symlink", link=zf.read(info).decode("utf-8", "replace"))
    return Member(name, "file", size=info.file_size)


def _tar_member(info: tarfile.TarInfo) -> Member:
    name = info.name
    if info.isreg():
        return Member(name, "file", size=info.size)
    if info.isdir():
        return Member(name, "dir")
    if info.issym():
        return Member(name, "symlink", link=info.linkname)
    if info.islnk():
        return Member(name, "hardlink", link=info.linkname)
    return Member(name, "other")


def _parts(path: str) -> list[str]:
    return path.replace("\\", "/").split("/")


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", path) is not None


def _escapes(path: str) -> bool:
    return path in ("", "..") or path.startswith("../")


def _extract_into(archive: Path, staging: Path) -> None:
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, staging)
    else:
        with tarfile.open(archive) as tf:
            # The "data" filter re-checks what we checked and drops setuid bits and owners.
            if hasattr(tarfile, "data_filter"):
                tf.extractall(staging, filter="data")
            else:
                tf.extractall(staging)


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            member = _zip_member(zf, info)
            target = staging / member.path
            if member.kind == "dir" or member.path == ".":
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.kind == "symlink":
                target.symlink_to(member.link)
                continue
            # ZipExtFile stops at the declared size, so the size check above bounds what we write.
            with zf.open(info) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)


def _require_free(dest: Path, archive: Path) -> None:
    if dest.is_dir() and not any(dest.iterdir()):
        return
    if dest.exists():
        raise AcquireError(f"{dest} already exists; delete it to extract {archive} into it again")


def _remove_stale_extractions(dest: Path) -> None:
    """Drop staging folders left by a killed earlier run (they can hold gigabytes)."""
    for stale in dest.parent.glob(f".{dest.name}.*.extracting"):
        logger.warning("removing %s left by an interrupted extraction", stale)
        shutil.rmtree(stale, ignore_errors=True)
