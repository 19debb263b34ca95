"""Download and unpack a Kaggle dataset (the GZ2 images) without ever exposing the credentials.

The `kaggle` package authenticates when it is imported, prints to stdout and calls exit(1) when
it finds no credentials. So we look for credentials ourselves first (one clear error if there
are none), import it lazily, turn its SystemExit into our own error, route its prints into the
log, and blank out every credential value in anything we log or raise.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from spiralarms.acquire.archive import safe_extract
from spiralarms.acquire.errors import AcquireError, KaggleCredentialsError, KaggleDownloadError
from spiralarms.acquire.images import check_image_count, find_image_folder, jpg_names

logger = logging.getLogger(__name__)

SPEC_PREFIX = "kaggle:"
TOKEN_PAGE = "https://www.kaggle.com/settings/api"
DATASET_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
REDACTED = "***"


def parse_kaggle_spec(spec: str) -> str:
    """`kaggle:owner/dataset` (or bare `owner/dataset`) -> `owner/dataset`."""
    slug = spec.removeprefix(SPEC_PREFIX)
    if not DATASET_SLUG.fullmatch(slug):
        raise AcquireError(
            f"{spec!r} is not a Kaggle dataset; write it as kaggle:<owner>/<dataset>, "
            "e.g. kaggle:jaimetrickz/galaxy-zoo-2-images"
        )
    return slug


def fetch_kaggle(
    dataset: str,
    dest_dir: str | os.PathLike,
    expected_images: int | None = None,
    keep_archive: bool = False,
) -> Path:
    """Download `kaggle:<owner>/<dataset>` into `dest_dir`, extract it safely and return the folder
    holding the .jpg images (`<dest_dir>/<dataset>/images_gz2/images` for the GZ2 images).

    An already extracted `<dest_dir>/<dataset>` (or a finished `<dataset>.zip`) is reused without
    contacting Kaggle. The zip is deleted after extraction unless `keep_archive`. Raises AcquireError when fewer than
    `expected_images` images arrived.
    """
    slug = parse_kaggle_spec(dataset)
    dest_dir = Path(dest_dir)
    name = slug.split("/")[1]
    extracted, archive = dest_dir / name, dest_dir / f"{name}.zip"
    if extracted.is_dir():
        logger.info("kaggle:%s already extracted in %s", slug, extracted)
    else:
        if not _finished_zip(archive):
            _download_zip(slug, dest_dir, archive)
        safe_extract(archive, extracted)
        if not keep_archive:
            archive.unlink()  # 3 GB for the GZ2 images; the extracted folder is what we keep
    images = find_image_folder(extracted)
    _check_count(slug, images, extracted, expected_images)
    return images


def fetch_kaggle_images(
    dataset: str,
    images_dir: str | os.PathLike,
    expected_images: int | None = None,
    work_dir: str | os.PathLike | None = None,
) -> Path:
    """Like `fetch_kaggle`, but leave the images directly in `images_dir` (`<asset_id>.jpg`).

    Made for a Snakemake `directory()` output: the zip and the extraction live in `work_dir`
    (default: hidden `.<images_dir name>.kaggle` beside it), which Snakemake does not wipe before a
    rerun, and the finished image folder is renamed into place in one step.
    """
    images_dir = Path(images_dir)
    if images_dir.is_dir() and jpg_names(images_dir):
        logger.info("%s already holds the images", images_dir)
        return images_dir
    work_dir = Path(work_dir) if work_dir else images_dir.with_name(f".{images_dir.name}.kaggle")
    found = fetch_kaggle(dataset, work_dir, expected_images)
    if images_dir.is_dir():
        images_dir.rmdir()  # empty (checked above); a non-empty folder makes this fail loudly
    images_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(found, images_dir)
    shutil.rmtree(work_dir / parse_kaggle_spec(dataset).split("/")[1])  # what else the zip held
    with contextlib.suppress(OSError):
        work_dir.rmdir()  # empty now: the zip went after extraction
    return images_dir


def run_fetch_images(dataset: str, images_dir: str | os.PathLike,
                     mapping_csv: str | os.PathLike) -> dict:
    """The `fetch_images` rule: fetch_kaggle_images, then check_image_count against the mapping
    (missing images are counted again by the labels stage; here the log says it early)."""
    return check_image_count(fetch_kaggle_images(dataset, images_dir), mapping_csv)


def _check_count(slug: str, images: Path, extracted: Path, expected_images: int | None) -> None:
    count = len(jpg_names(images))
    logger.info("kaggle:%s: %d images in %s", slug, count, images)
    if expected_images is not None and count < expected_images:
        raise AcquireError(
            f"kaggle:{slug}: found {count} images in {images}, expected at least "
            f"{expected_images}; delete {extracted} to download it again"
        )


def _finished_zip(archive: Path) -> bool:
    """A complete zip from an earlier run (one whose extraction failed) needs no new download."""
    partial_marker = archive.with_name(archive.name + ".kaggle-partial")  # kaggle's resume marker
    return archive.is_file() and not partial_marker.exists() and zipfile.is_zipfile(archive)


def _download_zip(slug: str, dest_dir: Path, archive: Path) -> None:
    source = find_kaggle_credentials()
    if source is None:
        raise KaggleCredentialsError(missing_credentials_message(slug))
    secrets = credential_values()
    api = _authenticated_api(source, secrets)
    dest_dir.mkdir(parents=True, exist_ok=True)
    logger.info("kaggle:%s: downloading to %s (credentials from %s)", slug, dest_dir, source)
    try:
        with _stdout_to_log(secrets):
            api.dataset_download_files(slug, path=str(dest_dir), unzip=False, quiet=False)
    # The kaggle package raises anything from requests errors to exit(1): all mean "failed".
    except (Exception, SystemExit) as error:  # noqa: BLE001
        with contextlib.suppress(OSError):
            dest_dir.rmdir()  # only if the request failed before any byte arrived
        # `from None`: the original traceback could carry a credential.
        raise _download_failure(slug, source, error, secrets) from None
    if not archive.is_file():
        raise KaggleDownloadError(f"kaggle:{slug}: the Kaggle API reported success but {archive} "
                                  "is missing")


def _download_failure(slug: str, source: str, error: BaseException,
                      secrets: list[str]) -> KaggleCredentialsError | KaggleDownloadError:
    """One error that says what the HTTP status (if any) means for this dataset."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    page = f"https://www.kaggle.com/datasets/{slug}"
    what = f"kaggle:{slug}: download failed ({_describe(error)}"
    what += f", HTTP {status})." if status and str(status) not in str(error) else ")."
    if status == 401:
        return KaggleCredentialsError(redact(
            f"{what} Kaggle rejected the credentials from {source}: create a new API token at "
            f"{TOKEN_PAGE} and update {source}.", secrets))
    if status == 403:
        hint = (f"Your account may not access it: open {page} while logged in and accept the "
                "dataset's terms (or rules), then rerun.")
    elif status == 404:
        hint = (f"No such dataset: check the name (config data.images, kaggle:<owner>/<dataset>) "
                f"against {page}; a private dataset also answers 404 to other accounts.")
    elif status == 429 or (status or 0) >= 500:
        hint = "Kaggle is busy or failing; wait a while and rerun (a partial download resumes)."
    else:
        hint = (f"Check that {page} exists, that your account accepted its terms, and the network "
                "connection; a rerun resumes a partial download.")
    return KaggleDownloadError(redact(f"{what} {hint}", secrets))


def _authenticated_api(source: str, secrets: list[str]):
    try:
        with _stdout_to_log(secrets):
            from kaggle.api.kaggle_api_extended import KaggleApi  # authenticates on import

            api = KaggleApi()
            # KaggleApi fixes its kaggle.json path when the module is first imported; use the
            # one found now, so that a process whose environment changed since reads the file
            # find_kaggle_credentials() named.
            api.config_dir = str(kaggle_config_dir())
            api.config = str(kaggle_config_dir() / "kaggle.json")
            api.authenticate()
    except (Exception, SystemExit) as error:  # noqa: BLE001 - exit(1) when it finds no login
        raise KaggleCredentialsError(redact(
            f"Kaggle login with the credentials from {source} failed ({_describe(error)}). "
            f"Check the network; if it is fine, create a new API token at {TOKEN_PAGE} and "
            f"update {source}.",
            secrets,
        )) from None
    return api


def find_kaggle_credentials() -> str | None:
    """Where the kaggle package will find credentials (a description, never the value), or None."""
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return "the environment variable KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "the environment variables KAGGLE_USERNAME and KAGGLE_KEY"
    if env.get("KAGGLE_KERNEL_RUN_TYPE") and env.get("KAGGLE_API_V1_TOKEN"):
        return "the Kaggle notebook's token (KAGGLE_API_V1_TOKEN)"
    for path in _credential_files():
        if path.is_file():
            return str(path)
    return None


def missing_credentials_message(slug: str) -> str:
    half_set = [v for v in ("KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(v)]
    note = (f"\n(Only {half_set[0]} is set: KAGGLE_USERNAME and KAGGLE_KEY are needed together.)"
            if len(half_set) == 1 else "")
    return (
        f"No Kaggle credentials found, so kaggle:{slug} cannot be downloaded.\n"
        f"Create an API token on {TOKEN_PAGE} (section 'API'), then do ONE of:\n"
        "  export KAGGLE_API_TOKEN=<token>\n"
        "  export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>\n"
        f"  save kaggle.json as {kaggle_config_dir() / 'kaggle.json'} and chmod 600 it "
        "(KAGGLE_CONFIG_DIR=<folder> to keep it elsewhere)\n"
        "Or download the dataset yourself and set data.images to the folder holding "
        f"<asset_id>.jpg.{note}"
    )


def kaggle_config_dir() -> Path:
    """The folder the kaggle package reads kaggle.json from (same rule as kaggle 2.x)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"


def _credential_files() -> list[Path]:
    home_kaggle = Path.home() / ".kaggle"  # kagglesdk looks for tokens here whatever the config dir
    return [
        kaggle_config_dir() / "kaggle.json",
        home_kaggle / "access_token",
        home_kaggle / "access_token.txt",
        home_kaggle / "credentials.json",  # written by `kaggle auth login`
    ]


def credential_values() -> list[str]:
    """Every secret the kaggle package may use, so that we can blank them out of messages."""
    values = [os.environ.get(v, "") for v in ("KAGGLE_KEY", "KAGGLE_API_TOKEN")]
    files = _credential_files()
    if os.environ.get("KAGGLE_API_TOKEN"):
        files.append(Path(os.environ["KAGGLE_API_TOKEN"]))  # kagglesdk accepts a path here too
    for path in files:
        values += _secrets_in_file(path)
    return [v for v in values if len(v) >= 4]


def _secrets_in_file(path: Path) -> list[str]:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return []
    try:
        payload = json.loads(text)
    except ValueError:
        return [text]  # a bare token file
    if not isinstance(payload, dict):
        return [text]
    return [str(v) for k, v in payload.items() if k != "username" and isinstance(v, str)]


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"the kaggle package exited with status {error.code}"
    return f"{type(error).__name__}: {error}"


class _LogLines(io.TextIOBase):
    """A text stream that logs each complete line (redacted) as it is written."""

    def __init__(self, secrets: list[str]):
        self.secrets, self.pending = secrets, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = re.split(r"[\r\n]", self.pending)
        for line in lines:
            self._log(line)
        return len(text)

    def finish(self) -> None:
        self._log(self.pending)
        self.pending = ""

    def _log(self, line: str) -> None:
        if line.strip():
            logger.info("kaggle: %s", redact(line.strip(), self.secrets))


@contextlib.contextmanager
def _stdout_to_log(secrets: list[str]):
    """Send what the kaggle package prints into the log (redacted) instead of stdout."""
    stream = _LogLines(secrets)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.finish()
