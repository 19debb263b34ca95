"""Turn a config value (local path, URL, kaggle: or gdrive: spec) into a local path."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from spiralarms.acquire.errors import AcquireError, ChecksumError
from spiralarms.acquire.gdrive import SPEC_PREFIX as GDRIVE_PREFIX
from spiralarms.acquire.gdrive import fetch_gdrive, gdrive_file_id
from spiralarms.acquire.http import download, sha256_of
from spiralarms.acquire.kaggle import SPEC_PREFIX as KAGGLE_PREFIX
from spiralarms.acquire.kaggle import fetch_kaggle

URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def resolve(spec: str | os.PathLike, cache_dir: str | os.PathLike, sha256: str | None = None) -> Path:
    """Local path for `spec`, fetching it into `cache_dir` first when it is remote.

    - local path: returned as is (checked against `sha256` when given and it is a file);
    - http(s) URL: downloaded to `<cache_dir>/<download_name(url)>`;
    - `kaggle:<owner>/<dataset>`: fetched into `<cache_dir>/images`, returns the image folder;
    - `gdrive:<file id>`: fetched into `<cache_dir>/gdrive/<file id>/`, returns the file.
    """
    text, cache_dir = str(spec), Path(cache_dir)
    if is_remote(text):
        return _resolve_url(text, cache_dir, sha256)
    if text.startswith(KAGGLE_PREFIX):
        return fetch_kaggle(text, cache_dir / "images")
    if text.startswith(GDRIVE_PREFIX):
        folder = cache_dir / "gdrive" / gdrive_file_id(text)
        return fetch_gdrive(text, f"{folder}{os.sep}", sha256=sha256)  # keeps the Drive file name
    if URL_SCHEME.match(text):
        raise AcquireError(f"{text}: unsupported scheme; use http(s)://, kaggle:, gdrive: or a path")
    return _resolve_local(Path(text).expanduser(), sha256)


def is_remote(spec) -> bool:
    """An http(s) URL, downloaded into the cache folder (the workflow's download rule)."""
    return str(spec).startswith(("http://", "https://"))


def download_name(url: str) -> str:
    """The file name a download of `url` is saved under: the last part of the URL's path,
    %-decoded, with every character but letters, digits, '.', '_' and '-' replaced by '_'
    (`.../stellar%20mass_SFR.7z` -> `stellar_mass_SFR.7z`); also the workflow's name for it."""
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])  # an encoded '/' stays in the name
    name = UNSAFE_NAME_CHARS.sub("_", last)
    if not name.strip("._-"):
        raise AcquireError(f"{url}: the URL names no file to save (it ends with '/')")
    return name


def _resolve_url(url: str, cache_dir: Path, sha256: str | None) -> Path:
    dest = cache_dir / download_name(url)
    download(url, dest, sha256=sha256)
    return dest


def _resolve_local(path: Path, sha256: str | None) -> Path:
    if not path.exists():
        raise AcquireError(
            f"{path} does not exist; give an existing path, an http(s) URL, "
            "kaggle:<owner>/<dataset> or gdrive:<file id>"
        )
    if sha256 is not None and path.is_file() and (actual := sha256_of(path)) != sha256.lower():
        raise ChecksumError(f"{path}: SHA-256 mismatch: expected {sha256.lower()}, got {actual}")
    return path
