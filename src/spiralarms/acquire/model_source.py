"""Trained models from elsewhere: the https:// URL of an exported model's zip, or `hf_hub:<owner>/<repo>`
(a Hugging Face model repository as `spiralarms export-model` writes it), fetched once into a cache.

`fetch_model(spec)` returns the local `model.keras` (its `model.json` beside it). Downloads go
through `acquire.http.download` (resume, retries of what a retry can fix, a `.manifest.json` with the
sha256 of every file), so a second call finds the files and fetches nothing. A zip is extracted by
`safe_extract` (no member outside the folder, no links out, a size cap). Loading is the caller's:
prediction and import load with Keras' safe_mode=True, which refuses models carrying Python code.

The cache is `$SPIRALARMS_MODEL_CACHE`, else `$XDG_CACHE_HOME/spiralarms/models` (~/.cache/...):
- `url/<first 16 hex of sha256(url)>/<file>.zip` and its extraction `.../model/`;
- `hf_hub/<owner>--<repo>/<revision>/model.keras`, `model.json` (and README.md when there is one).
A `source.json` beside the model records the spec, the URLs and each file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from spiralarms import atomic
from spiralarms.acquire.archive import safe_extract
from spiralarms.acquire.errors import AcquireError, DownloadError
from spiralarms.acquire.http import download
from spiralarms.acquire.sources import download_name

HF_HUB = "hf_hub:"
HF_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
# An exported model folder on the hub: the model and its card are needed, the README is for people.
HF_FILES = ("model.keras", "model.json")
MAX_MODEL_BYTES = 4 * 10**9  # a V2M with optimizer state is ~0.6 GB; far more is no model of ours
SOURCE_RECORD = "source.json"


class ModelSourceError(AcquireError):
    """A model spec that names nothing this module can fetch, or a fetched folder without a model."""


def is_remote_model(spec) -> bool:
    """An https:// (or http://) URL or hf_hub:<owner>/<repo>[@revision]: fetched, not a local path."""
    return str(spec).startswith(("https://", "http://", HF_HUB))


def cache_dir() -> Path:
    if os.environ.get("SPIRALARMS_MODEL_CACHE"):
        return Path(os.environ["SPIRALARMS_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spiralarms" / "models"


def fetch_model(spec: str, cache: str | os.PathLike | None = None,
                key: str = "--model") -> Path:
    """The local model.keras of `spec` (a zip URL or hf_hub:<owner>/<repo>[@revision]), fetched
    into `cache` (default `cache_dir()`) unless it is there already. `key` names who asked (a
    CLI flag or config key) in errors."""
    spec = str(spec)
    cache = Path(cache) if cache is not None else cache_dir()
    if spec.startswith(HF_HUB):
        return _fetch_hf_hub(spec, cache, key)
    if spec.startswith(("https://", "http://")):
        return _fetch_zip(spec, cache, key)
    raise ModelSourceError(f"{key} {spec!r}: not a URL or hf_hub:<owner>/<repo>")


def fetch_model_archive(url: str, cache: str | os.PathLike | None = None,
                        key: str = "--model") -> Path:
    """Only the download of a zip URL (for import-model, which extracts it itself): the zip."""
    cache = Path(cache) if cache is not None else cache_dir()
    return _download_zip(url, _url_folder(url, cache), key)


def _url_folder(url: str, cache: Path) -> Path:
    return cache / "url" / hashlib.sha256(url.encode()).hexdigest()[:16]


def _download_zip(url: str, folder: Path, key: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / download_name(url)
    download(url, archive, key=key, progress=True)
    return archive


def _fetch_zip(url: str, cache: Path, key: str) -> Path:
    folder = _url_folder(url, cache)
    extracted = folder / "model"
    archive = _download_zip(url, folder, key)
    manifest = archive.with_name(archive.name + ".manifest.json")
    record = extracted / SOURCE_RECORD
    sha256 = _read_json(manifest).get("sha256")
    if not (extracted.is_dir() and _read_json(record).get("sha256") == sha256):
        if extracted.exists():  # an extraction of an older zip at this URL
            shutil.rmtree(extracted)
        safe_extract(archive, extracted, max_total_bytes=MAX_MODEL_BYTES)
        atomic.write_json(record, {"source": url, "url": url, "file": archive.name,
                                   "sha256": sha256, "fetched_at": _now()}, indent=1)
    return _one_model(extracted, url)


def _fetch_hf_hub(spec: str, cache: Path, key: str) -> Path:
    repo, _, revision = spec.removeprefix(HF_HUB).partition("@")
    revision = revision or "main"
    if not HF_REPO.fullmatch(repo) or not re.fullmatch(r"[A-Za-z0-9_.-]+", revision):
        raise ModelSourceError(f"{key} {spec!r}: write a Hugging Face model as "
                               "hf_hub:<owner>/<repo> (or hf_hub:<owner>/<repo>@<revision>)")
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    folder = cache / "hf_hub" / repo.replace("/", "--") / revision
    files = {}
    for name in HF_FILES:
        url = f"{host}/{repo}/resolve/{revision}/{name}"
        try:
            files[name] = download(url, folder / name, key=key, progress=name.endswith(".keras"))
        except DownloadError as error:
            raise ModelSourceError(
                f"{key} {spec}: cannot fetch {name} ({error}). An exported model's repository "
                f"holds {', '.join(HF_FILES)} (spiralarms export-model writes them); check the "
                "repository name and that it is public") from None
    atomic.write_json(folder / SOURCE_RECORD, {
        "source": spec, "repo": repo, "revision": revision,
        "files": {n: {"url": e["url"], "sha256": e["sha256"], "size": e["size"]}
                  for n, e in files.items()},
        "sha256": files["model.keras"]["sha256"], "fetched_at": _now()}, indent=1)
    return folder / "model.keras"


def _one_model(folder: Path, source: str) -> Path:
    """The one model.keras (any *.keras) in an extracted folder, skipping macOS droppings."""
    found = sorted(p for p in folder.rglob("*.keras") if p.is_file()
                   and "__MACOSX" not in p.parts and not p.name.startswith("._"))
    if len(found) != 1:
        what = (f"{len(found)} .keras files ({', '.join(p.name for p in found)})" if found
                else "no .keras file")
        raise ModelSourceError(f"{source}: the zip holds {what}; give the zip of one exported "
                               "model folder (spiralarms export-model: model.keras, model.json)")
    return found[0]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
