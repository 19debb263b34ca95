"""Where a config source (local path, http(s) URL, kaggle: spec) lands, and what a download is named."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from spiralarms.acquire.errors import AcquireError
from spiralarms.acquire.gdrive import SPEC_PREFIX as GDRIVE_PREFIX
from spiralarms.acquire.kaggle import SPEC_PREFIX as KAGGLE_PREFIX

URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
DOWNLOADED_DATA = ("catalog", "mapping", "physical", "images")  # data.* the download rule fetches
IMAGE_FOLDER = "images"  # data.images from Kaggle or a zip URL ends up in <download_dir>/images


class RemoteSource(NamedTuple):
    """An http(s) file the config asks for, and the config key that asks (for messages)."""

    url: str
    sha256: str | None
    key: str  # e.g. data.catalog; its checksum is `<key>_sha256`


def remote_sources(data: dict, download_dir: str) -> dict[str, RemoteSource]:
    """The download rule's files: name under `download_dir` -> RemoteSource, for each of
    data.catalog, data.mapping, data.physical and data.images (a zip of the images, e.g. Zenodo's
    images_gz2.zip) given as a URL. Two URLs that would be saved under one name are refused,
    naming both keys."""
    found: dict[str, RemoteSource] = {}
    for name in DOWNLOADED_DATA:
        url = data.get(name)
        if not is_remote(url or ""):
            continue
        source = RemoteSource(url, data.get(f"{name}_sha256"), f"data.{name}")
        file = planned_path(url, download_dir).rsplit("/", 1)[-1]
        if file == IMAGE_FOLDER:  # the name of the extracted image folder beside the downloads
            raise AcquireError(f"{source.key} ({url}) would be downloaded to {download_dir}/"
                               f"{file}, the image folder's name; use a URL naming the file "
                               "(e.g. .../images_gz2.zip)")
        if file in found and found[file].url != url:
            raise AcquireError(
                f"{found[file].key} ({found[file].url}) and {source.key} ({url}) would both be "
                f"downloaded to {download_dir}/{file}; download one yourself and give its path")
        found[file] = source
    return found


def planned_path(spec: str, download_dir: str) -> str:
    """Where the workflow finds config value `spec` (data.catalog, data.mapping, data.physical,
    data.images): an http(s) URL is downloaded to `<download_dir>/<download_name(url)>` and
    `kaggle:<owner>/<dataset>` to `<download_dir>/images` (by the download rules); a local path
    is used as it is. Fetching is the rules' job, so nothing is fetched here."""
    text = str(spec)
    if is_remote(text):
        return f"{download_dir}/{download_name(text)}"
    if text.startswith(KAGGLE_PREFIX):
        return f"{download_dir}/{IMAGE_FOLDER}"
    if URL_SCHEME.match(text) or text.startswith(GDRIVE_PREFIX):
        raise AcquireError(f"{text}: unsupported source; give a local path, an http(s):// URL "
                           "or (for data.images) kaggle:<owner>/<dataset>")
    return text


def image_folder(spec: str, download_dir: str) -> str:
    """The folder of `<asset_id>.jpg` the workflow reads for data.images `spec`: a local folder as
    it is; `kaggle:<owner>/<dataset>` or the http(s) URL of a zip (Zenodo's images_gz2.zip)
    extracted into `<download_dir>/images` by the fetch_images rule (the zip itself is the
    download rule's `planned_path`)."""
    if is_remote(spec):
        return f"{download_dir}/{IMAGE_FOLDER}"
    return planned_path(spec, download_dir)


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
