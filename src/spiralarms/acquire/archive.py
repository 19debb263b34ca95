"""Extract zip, tar(.gz) and 7z archives without letting any member escape the destination folder.

Every member is checked before a single byte is written: paths must stay inside `dest` (no `..`,
no absolute paths), links must be relative and free of `..` (a `..` in a link can climb out
through another link), and the total uncompressed size may be capped. Extraction goes to a
hidden temporary folder beside `dest` (`atomic.partial_name`) that is renamed into place at the
end, so an interrupted run never leaves a half-filled `dest`; a full disk is named with `dest`
(`atomic.output_error`). Not `atomic.replacing_dir`: it syncs every file to disk, minutes for the
243,000 images of the Kaggle set, where a rerun after a crash simply extracts again. 7z archives (py7zr) get the same checks; py7zr also caps
the bytes it actually decompresses at `max_total_bytes`, so a header that understates sizes
cannot fill the disk.
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

from spiralarms import atomic
from spiralarms.acquire.errors import AcquireError, UnsafeArchiveError

logger = logging.getLogger(__name__)

SEVENZIP_SIGNATURE = b"7z\xbc\xaf\x27\x1c"
MAX_LINK_BYTES = 4096  # a symlink's target, stored as its content in a 7z


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
    """Extract `archive` (zip, tar, tar.gz/bz2/xz, 7z) into the new folder `dest`; return its files.

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
    staging = atomic.partial_name(dest)
    try:
        staging.mkdir()
        _extract_into(archive, staging, max_total_bytes)
        if dest.is_dir():
            dest.rmdir()  # empty, checked above
        os.replace(staging, dest)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and atomic.output_error(error, dest) is not error:
            raise atomic.output_error(error, dest) from error
        raise
    return [dest / m.path for m in files]


def read_members(archive: Path) -> list[Member]:
    if not archive.is_file():
        raise AcquireError(f"archive {archive} does not exist")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [_zip_member(zf, info) for info in zf.infolist()]
    if is_7z(archive):
        return _sevenzip_members(archive)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return [_tar_member(info) for info in tf.getmembers()]
    raise AcquireError(f"{archive} is neither a zip nor a tar nor a 7z archive (or it is truncated)")


def is_7z(path: str | os.PathLike) -> bool:
    """True when `path` starts with the 7z signature (whatever its name says)."""
    with open(path, "rb") as stream:
        return stream.read(len(SEVENZIP_SIGNATURE)) == SEVENZIP_SIGNATURE


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


def _sevenzip_members(archive: Path) -> list[Member]:
    import py7zr

    encrypted = AcquireError(f"{archive} is an encrypted 7z archive; that is not supported")
    try:
        with py7zr.SevenZipFile(archive) as sz:
            if sz.needs_password():
                raise encrypted
            infos = sz.list()
    except py7zr.PasswordRequired:
        raise encrypted from None
    except py7zr.exceptions.ArchiveError as error:
        raise AcquireError(f"{archive}: damaged 7z archive ({error})") from None
    members = [_sevenzip_member(info) for info in infos]
    # A link's target is its content; read it only for links whose own name is safe (py7zr
    # itself refuses to touch a bad name, and check_members will name it for the user).
    links = [m.name for m in members
             if m.kind == "symlink" and not _is_absolute(m.path) and not _escapes(m.path)]
    if not links:
        return members
    targets = _sevenzip_link_targets(archive, links)
    return [Member(m.name, m.kind, m.size, targets.get(m.path, "")) if m.kind == "symlink" else m
            for m in members]


def _sevenzip_member(info) -> Member:
    if info.is_directory:
        return Member(info.filename, "dir")
    if info.is_symlink:
        return Member(info.filename, "symlink")
    if info.is_file:
        return Member(info.filename, "file", size=info.uncompressed)
    return Member(info.filename, "other")  # junction, socket, device


def _sevenzip_link_targets(archive: Path, links: list[str]) -> dict[str, str]:
    import py7zr
    from py7zr.io import BytesIOFactory

    factory = BytesIOFactory(limit=MAX_LINK_BYTES)
    # An empty folder as the nominal destination: py7zr checks each name against it (with no
    # folder it would resolve names against the current directory and whatever lies there).
    with tempfile.TemporaryDirectory(prefix=".7z-links.") as empty:
        with py7zr.SevenZipFile(archive) as sz:
            sz.extract(path=empty, targets=links, factory=factory)
        targets = {}
        for name, product in factory.products.items():
            product.seek(0)
            relative = Path(name).relative_to(empty).as_posix()
            targets[relative] = product.read().decode("utf-8", "replace")
    return targets


def _parts(path: str) -> list[str]:
    return path.replace("\\", "/").split("/")


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", path) is not None


def _escapes(path: str) -> bool:
    return path in ("", "..") or path.startswith("../")


def _extract_into(archive: Path, staging: Path, max_total_bytes: int | None) -> None:
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, staging)
    elif is_7z(archive):
        _extract_sevenzip(archive, staging, max_total_bytes)
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


def _extract_sevenzip(archive: Path, staging: Path, max_total_bytes: int | None) -> None:
    import py7zr

    try:
        with py7zr.SevenZipFile(archive, max_extract_size=max_total_bytes) as sz:
            sz.extractall(path=staging)
    except py7zr.exceptions.DecompressionBombError as error:
        raise UnsafeArchiveError(f"{archive}: {error} (max_total_bytes); nothing was kept") \
            from None
    except py7zr.exceptions.ArchiveError as error:  # CRC mismatch, truncated stream, ...
        raise AcquireError(f"{archive}: damaged 7z archive ({error}); nothing was kept") from None
    _drop_special_modes(staging)


def _drop_special_modes(root: Path) -> None:
    """py7zr applies the archive's modes (Unix bits, or Windows' read-only): make files 0644
    (0755 when executable) and folders 0755, with no setuid, setgid or sticky bits."""
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & stat.S_IXUSR
                os.chmod(path, 0o755 if executable else 0o644)


def _require_free(dest: Path, archive: Path) -> None:
    if dest.is_dir() and not any(dest.iterdir()):
        return
    if dest.exists():
        raise AcquireError(f"{dest} already exists; delete it to extract {archive} into it again")


def _remove_stale_extractions(dest: Path) -> None:
    """Drop staging folders left by a killed earlier run (they can hold gigabytes)."""
    # `.extracting`: the staging name of earlier versions
    stale_names = (f".{dest.name}.partial-*", f".{dest.name}.*.extracting")
    for stale in (path for name in stale_names for path in dest.parent.glob(name)):
        logger.warning("removing %s left by an interrupted extraction", stale)
        shutil.rmtree(stale, ignore_errors=True)
