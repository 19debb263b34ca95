"""Fetch a file shared on Google Drive (e.g. a trained-model archive) with gdown."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from spiralarms import atomic
from spiralarms.acquire.errors import ChecksumError, GDriveError
from spiralarms.acquire.http import (
    already_downloaded,
    manifest_entry,
    manifest_path_for,
    read_manifest,
    sha256_of,
)

logger = logging.getLogger(__name__)

SPEC_PREFIX = "gdrive:"
FILE_ID = re.compile(r"[A-Za-z0-9_-]{10,}")
DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def gdrive_file_id(id_or_url: str) -> str:
    """The file id in a bare id, `gdrive:<id>`, `.../file/d/<id>/view` or `...?id=<id>` link."""
    text = id_or_url.strip()
    text = text.removeprefix(SPEC_PREFIX)
    if FILE_ID.fullmatch(text):
        return text
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname in DRIVE_HOSTS:
        in_path = re.search(r"/d/([A-Za-z0-9_-]{10,})(?:/|$)", parts.path)
        if in_path:
            return in_path.group(1)
        in_query = parse_qs(parts.query).get("id", [""])[0]
        if FILE_ID.fullmatch(in_query):
            return in_query
    raise GDriveError(
        f"{id_or_url!r} is not a Google Drive file id or link; give the id itself, "
        "https://drive.google.com/file/d/<id>/view or https://drive.google.com/uc?id=<id>"
    )


def fetch_gdrive(id_or_url: str, dest: str | os.PathLike, sha256: str | None = None) -> Path:
    """Download a Drive file to `dest` and return its path; skip it when already downloaded.

    If `dest` is an existing folder or ends with '/', the file keeps its Drive name inside it.
    A manifest (url, size, sha256, downloaded_at) is written as for HTTP downloads.
    """
    file_id = gdrive_file_id(id_or_url)
    url = f"https://drive.google.com/uc?id={file_id}"
    into_folder = str(dest).endswith(("/", os.sep)) or Path(dest).is_dir()
    dest = Path(dest)
    manifest = dest / f"gdrive-{file_id}.manifest.json" if into_folder else manifest_path_for(dest)
    previous = _previous_file(dest, manifest, into_folder)
    if previous and already_downloaded(url, previous, manifest, sha256):
        logger.info("Google Drive file %s already downloaded to %s", file_id, previous)
        return previous
    target = _gdown(file_id, dest, into_folder)
    actual = sha256_of(target)
    if sha256 is not None and actual != sha256.lower():
        target.unlink()
        raise ChecksumError(
            f"{target} from {url} has SHA-256 {actual}, but the expected checksum is "
            f"{sha256.lower()}; the file was deleted. Check the Drive id (or set the new checksum "
            "if the file legitimately changed)."
        )
    atomic.write_json(manifest, manifest_entry(url, target, actual))
    return target


def _previous_file(dest: Path, manifest: Path, into_folder: bool) -> Path | None:
    if not into_folder:
        return dest
    name = (read_manifest(manifest) or {}).get("file")
    return dest / name if name else None


def _gdown(file_id: str, dest: Path, into_folder: bool) -> Path:
    import gdown  # imported here: only this rarely used path needs it

    (dest if into_folder else dest.parent).mkdir(parents=True, exist_ok=True)
    output = str(dest) + os.sep if into_folder else str(dest)
    logger.info("downloading Google Drive file %s to %s", file_id, dest)
    try:
        result = gdown.download(id=file_id, output=output, quiet=False, resume=True, retries=3)
    except Exception as error:
        raise GDriveError(_failure(file_id, f"{type(error).__name__}: {error}")) from error
    if result is None or not Path(result).is_file():
        raise GDriveError(_failure(file_id, "gdown returned no file"))
    return Path(result)


def _failure(file_id: str, why: str) -> str:
    return (
        f"Google Drive file {file_id}: download failed ({why}). The file must be shared as "
        "'Anyone with the link'; a popular file may have hit Drive's download quota (try later "
        "or download it by hand and give its local path instead)."
    )
