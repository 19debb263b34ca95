"""The stellar-mass and SFR table, as the original repository ships it: a CSV inside a 7z.

`stellar mass_SFR.7z` (github.com/mmmmmmwei/galaxy-spiralarm-classifier, branch main) holds
`stellar mass_SFR.csv` with columns specObjID, LGM_TOT_P50, sfr_tot_p50. `physical_csv` takes that
archive (or a zip/tar, or the plain .csv/.csv.gz) and leaves the CSV where the labels stage reads it.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from spiralarms import atomic
from spiralarms.acquire.archive import is_7z, read_members, safe_extract
from spiralarms.acquire.errors import AcquireError

logger = logging.getLogger(__name__)

PHYSICAL_MEMBER = "stellar mass_SFR.csv"  # the name inside the original archive
MAX_PHYSICAL_BYTES = 4_000_000_000  # the MPA-JHU table is tens of MB; refuse archive bombs


def is_archive(path: str | os.PathLike) -> bool:
    """Whether `path` is a zip, 7z or tar archive (by content, not by name)."""
    path = Path(path)
    return path.is_file() and (zipfile.is_zipfile(path) or is_7z(path) or tarfile.is_tarfile(path))


def physical_csv(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """The physical-properties CSV for `source`.

    A plain .csv/.csv.gz is returned as it is. From an archive, the one CSV it holds (or
    `stellar mass_SFR.csv` when it holds several) is extracted with `safe_extract`'s checks,
    read once (gz2.catalog.read_physical) and moved to `dest`, which is returned; nothing else
    from the archive is kept. A table that does not read is refused here, naming the archive and
    its member: later stages only see `dest`, a name the user never gave.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise AcquireError(f"{source} does not exist (config key data.physical)")
    if not is_archive(source):
        return source
    member = _csv_member(source)
    atomic.check_writable(dest.parent)
    try:
        # Scratch for the whole archive beside dest (same filesystem: the final rename is atomic).
        with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", dir=dest.parent) as work:
            safe_extract(source, Path(work) / "archive", max_total_bytes=MAX_PHYSICAL_BYTES)
            extracted = Path(work) / "archive" / member
            _check_table(extracted, f"{member!r} in {source}")
            with atomic.replacing(dest) as partial:
                os.replace(extracted, partial)
    except OSError as error:  # a full disk while extracting: name dest, not the scratch folder
        named = atomic.output_error(OSError(error.errno, os.strerror(error.errno or 0)), dest)
        if not isinstance(named, atomic.OutputError):
            raise
        raise named from error
    logger.info("physical-properties table %r from %s -> %s (%.1f MB)", member, source, dest,
                dest.stat().st_size / 1e6)
    return dest


def _check_table(extracted: Path, shown_as: str) -> None:
    from spiralarms.gz2.catalog import read_physical  # pandas and pyarrow: only when extracting

    read_physical(extracted, shown_as=f"{shown_as} (config key data.physical)")


def _csv_member(archive: Path) -> str:
    files = [m.path for m in read_members(archive) if m.kind == "file"]
    tables = [name for name in files if name.lower().endswith(".csv")
              and not PurePosixPath(name).name.startswith("._")  # macOS resource forks
              and not name.startswith("__MACOSX/")]
    if len(tables) > 1:
        tables = [name for name in tables if PurePosixPath(name).name == PHYSICAL_MEMBER]
    if len(tables) != 1:
        raise AcquireError(
            f"{archive}: expected one CSV table ({PHYSICAL_MEMBER!r}: specObjID, LGM_TOT_P50, "
            f"sfr_tot_p50) in the archive, found {len(tables)} among {files[:10]}"
        )
    return tables[0]
