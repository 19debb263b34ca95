"""Resumable HTTP(S) downloads that leave either a complete, verified file or no file at all.

Bytes stream into `<dest>.part`; a cut connection or a rerun resumes it with a Range request
(guarded by If-Range, so a file that changed on the server restarts instead of being spliced).
Only a complete file whose size and SHA-256 check out is renamed to `dest`, and a manifest JSON
(url, size, sha256, downloaded_at) is written next to it (spiralarms.atomic) so a rerun can skip
the download. The `.part` file is the one output not named by `atomic.partial_name`: a rerun (a
new process) must find it again to resume, so its name cannot carry the process id; it gets the
same care otherwise (renamed only when complete, a full disk or a read-only folder named with
`dest` by `atomic.output_error`).

Only what a retry can fix is retried (timeouts, dropped connections, 429 after its Retry-After,
5xx); a 404, 403, a refused TLS certificate or a checksum mismatch ends at once with one message
naming the URL, the config key that asked for it, the status and what to change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
import urllib3

from spiralarms import atomic
from spiralarms.acquire.errors import ChecksumError, DownloadError

logger = logging.getLogger(__name__)

# Statuses worth retrying: the server or a proxy is briefly unhappy, the URL itself is fine.
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
RETRY_BASE_WAIT_S = 1.0  # doubled after each attempt that brought no bytes
MAX_RETRY_WAIT_S = 30
MAX_RETRY_AFTER_S = 300  # a server asking for a longer pause gets a rerun later instead
# What a permanent status means, for the message (any other 4xx: the server refused the request).
PERMANENT_MEANINGS = {
    401: "the server wants a login for this URL",
    403: "the server refuses access to this URL (private, or a link that expired)",
    404: "the server has no file at this URL",
    410: "the server says the file was removed for good",
}
USER_AGENT = f"spiralarms-acquire python-requests/{requests.__version__}"

# Connection-level failures after which resuming can succeed.
CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
)


class _TransientFailure(Exception):
    """An attempt that may succeed if repeated (transient status or a short body).

    `retry_after`: seconds the server asked us to wait (Retry-After), if it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def describe_source(url: str, key: str | None) -> str:
    """How messages name a download: the config key that asked for it, then the URL."""
    return f"{key} ({url})" if key else url


def _fix_hint(key: str | None, what: str = "URL") -> str:
    return f"correct {key} in your config" if key else f"check the {what}"


def manifest_path_for(dest: str | os.PathLike) -> Path:
    """Default manifest location: `<dest>.manifest.json`."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".manifest.json")


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (`algorithm`: any hashlib name, e.g. md5)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest at `path`, or None when it is missing or unreadable (then we re-download)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def manifest_entry(url: str, dest: Path, sha256: str) -> dict:
    return {
        "url": url,
        "file": dest.name,
        "size": dest.stat().st_size,
        "sha256": sha256,
        "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def already_downloaded(url: str, dest: Path, manifest: Path, sha256: str | None) -> dict | None:
    """The manifest entry when `dest` is a finished download of `url` that still checks out."""
    entry = read_manifest(manifest)
    if not dest.is_file() or entry is None or entry.get("url") != url:
        return None
    if sha256 is not None and entry.get("sha256") != sha256.lower():
        return None
    if entry.get("sha256") != sha256_of(dest):
        logger.warning("%s changed since it was downloaded; downloading it again", dest)
        return None
    return entry


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    expected_size: int | None = None,
    chunk: int = 1 << 20,
    timeout: float = 60,
    retries: int = 3,
    progress: bool = True,
    manifest: str | os.PathLike | None = None,
    key: str | None = None,
) -> dict:
    """Download `url` to `dest` and return its manifest entry (url, file, size, sha256, downloaded_at).

    Skips the transfer when `dest` and its manifest already match. `retries` counts consecutive
    attempts that brought no new bytes; an attempt that made progress resets the count, so a long
    download over a flaky line keeps resuming. On failure `dest` is left untouched (absent on a
    first download); the `.part` file is kept only when a rerun can resume it. `key` is the config
    key that asked for the file (`data.catalog`, `models.b0.weights`): every error names it.
    """
    dest = Path(dest)
    manifest = Path(manifest) if manifest is not None else manifest_path_for(dest)
    if (entry := already_downloaded(url, dest, manifest, sha256)) is not None:
        logger.info("%s: already downloaded to %s (sha256 %s)", url, dest, entry["sha256"])
        return entry
    atomic.check_writable(dest.parent)  # a read-only folder is named before any byte is fetched
    part = dest.with_name(dest.name + ".part")
    logger.info("%s: downloading to %s", url, dest)
    try:
        _download_with_retries(url, key, part, chunk, timeout, retries, progress)
        actual_sha256 = _verify(url, key, dest, part, sha256, expected_size)
        os.replace(part, dest)
    except DownloadError as error:
        if not error.resumable:
            _discard_partial(part)
        raise
    except OSError as error:  # writing the partial file: a full disk resumes once space is freed
        if atomic.output_error(error, dest) is error:
            raise
        raise atomic.output_error(error, dest) from error
    _part_info_path(part).unlink(missing_ok=True)
    entry = manifest_entry(url, dest, actual_sha256)
    atomic.write_json(manifest, entry)
    logger.info("%s: saved %s (%d bytes, sha256 %s)", url, dest, entry["size"], actual_sha256)
    return entry


def _download_with_retries(
    url: str, key: str | None, part: Path, chunk: int, timeout: float, retries: int,
    progress: bool,
) -> None:
    failures = 0
    with requests.Session() as session:
        session.headers["User-Agent"] = USER_AGENT
        while True:
            before = _size(part)
            try:
                _transfer_once(session, url, key, part, chunk, timeout, progress)
                return
            except requests.exceptions.SSLError as error:  # a ConnectionError, but never transient
                raise DownloadError(
                    f"Cannot download {describe_source(url, key)}: the TLS connection was refused "
                    f"({_describe(error)}); retrying will not help. Check the system's CA "
                    f"certificates (or REQUESTS_CA_BUNDLE behind a proxy), or {_fix_hint(key)}."
                ) from None
            except (*CONNECTION_ERRORS, _TransientFailure) as error:
                progressed = _size(part) > before
                failures = 0 if progressed else failures + 1
                wait = 0 if progressed else _backoff(failures, error)
                if failures > retries or wait > MAX_RETRY_AFTER_S:
                    raise _gave_up(url, key, part, retries, error, wait) from None
                logger.warning(
                    "%s: %s (%s); %s in %.0f s", url,
                    f"transfer interrupted at {_size(part) / 1e6:.1f} MB" if _size(part)
                    else "no response", _describe(error),
                    "resuming" if _size(part) else "trying again", wait,
                )
                time.sleep(wait)
            except requests.RequestException as error:  # bad URL, redirect loop: retrying won't help
                raise DownloadError(
                    f"Cannot download {describe_source(url, key)}: {_describe(error)}; "
                    f"retrying will not help: {_fix_hint(key)}."
                ) from None


def _backoff(failures: int, error: Exception) -> float:
    return retry_wait(failures, getattr(error, "retry_after", None))


def retry_wait(failures: int, retry_after: float | None = None,
               base: float | None = None) -> float:
    """Seconds before attempt `failures` + 1: what the server asked for (429/503 Retry-After),
    and at least the backoff doubling from `base` (default RETRY_BASE_WAIT_S) up to
    MAX_RETRY_WAIT_S. The one retry policy of acquire/: the cut-out fetcher uses it too. A wait
    above MAX_RETRY_AFTER_S is the caller's cue to give up and leave it to a rerun."""
    base = RETRY_BASE_WAIT_S if base is None else base
    backoff = min(base * 2 ** (failures - 1), MAX_RETRY_WAIT_S)
    return backoff if retry_after is None else max(retry_after, backoff)


def is_transient(status: int) -> bool:
    """A status worth retrying (the server or a proxy is briefly unhappy)."""
    return status in TRANSIENT_STATUSES or status >= 500


def _gave_up(url: str, key: str | None, part: Path, retries: int, error: Exception,
             wait: float) -> DownloadError:
    kept = f"; the {_size(part)} bytes in {part} are kept and a rerun resumes" if _size(part) else ""
    if wait > MAX_RETRY_AFTER_S:
        why = f"the server asks to wait {wait:.0f} s before the next request ({_describe(error)})"
    else:
        why = f"download failed after {retries} retries without progress: {_describe(error)}"
    if _unreachable(error):
        fix = ("This machine reaches no server there (offline, a wrong host name, or a compute "
               "node without internet: downloads run where Snakemake starts): check the "
               f"network, or download the file elsewhere and give its local path in "
               f"{key or 'the config'}")
    else:
        fix = "The server or the network is failing for now: rerun later"
    return DownloadError(f"Cannot download {describe_source(url, key)}: {why}. {fix}{kept}.",
                         resumable=bool(kept))


def _unreachable(error: BaseException) -> bool:
    """No connection was made at all (name resolution or connect failed), as opposed to a
    server that answered badly or a transfer that was cut."""
    return isinstance(_root_cause(error), urllib3.exceptions.NewConnectionError)


def _root_cause(error: BaseException) -> BaseException:
    """The urllib3 reason inside requests' ConnectionError(MaxRetryError(reason))."""
    inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
    reason = getattr(inner, "reason", None)
    return reason if isinstance(reason, BaseException) else error


def _transfer_once(
    session: requests.Session, url: str, key: str | None, part: Path, chunk: int,
    timeout: float, progress: bool,
) -> None:
    """One GET: append to (206) or restart (200) the partial file; raise if the body came short."""
    offset = _resumable_offset(url, part)
    # identity: we want the server's bytes as stored, so sizes, ranges and checksums agree.
    headers = {"Accept-Encoding": "identity"}
    validator = _part_info(part).get("validator")
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and offset:
            if _total_from_content_range(response.headers.get("Content-Range")) == offset:
                return  # the previous run had already received every byte
            logger.warning("%s: server refused to resume at byte %d; restarting", url, offset)
            _discard_partial(part)
            return _transfer_once(session, url, key, part, chunk, timeout, progress)
        total = _check_status(url, key, response, offset)
        if response.status_code == 200:
            if offset:
                logger.info("%s: server ignored the Range request; restarting from byte 0", url)
            offset = 0
            _write_part_info(part, url, response)
        _stream_body(response, part, offset, total, chunk, _Progress(url, offset, total, progress))


def _check_status(url: str, key: str | None, response: requests.Response, offset: int) -> int | None:
    """Total size of the file behind a usable response; raise for statuses we cannot use."""
    status = response.status_code
    if status == 206:
        start, total = _parse_content_range(url, response.headers.get("Content-Range"))
        if start != offset:
            raise DownloadError(f"Cannot download {describe_source(url, key)}: asked to resume "
                                f"at byte {offset}, the server sent {start}")
        return total
    if status == 200:
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None
    reason = f"HTTP {status} {response.reason or ''}".strip()
    if is_transient(status):
        raise _TransientFailure(reason, parse_retry_after(response.headers.get("Retry-After")))
    meaning = PERMANENT_MEANINGS.get(status, "the server refused the request")
    raise DownloadError(
        f"Cannot download {describe_source(url, key)}: {reason}: {meaning}. Retrying will not "
        f"help: {_fix_hint(key)} (or download the file yourself and give its local path)."
    )


def parse_retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date), None if absent."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _stream_body(
    response: requests.Response, part: Path, offset: int, total: int | None, chunk: int,
    progress: _Progress,
) -> None:
    with open(part, "r+b" if part.exists() else "wb") as stream:
        stream.seek(offset)
        stream.truncate()
        for block in response.raw.stream(chunk, decode_content=False):
            stream.write(block)
            progress.advance(len(block))
    received = _size(part)
    if total is not None and received < total:
        raise _TransientFailure(f"connection closed at byte {received} of {total}")
    progress.finish()


def _verify(url: str, key: str | None, dest: Path, part: Path, sha256: str | None,
            expected_size: int | None) -> str:
    size = _size(part)
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"Cannot download {describe_source(url, key)}: received {size} bytes, "
                            f"expected {expected_size}; rerun to download it again")
    actual = sha256_of(part)
    if sha256 is not None and actual != sha256.lower():
        setting = f"{key}_sha256" if key else "the expected checksum"
        raise ChecksumError(
            f"{dest} downloaded from {describe_source(url, key)} has SHA-256 {actual}, but "
            f"{setting} expects {sha256.lower()}; the file was deleted and is not downloaded "
            f"again. If the source legitimately changed, set {setting} to the new value; "
            "otherwise the URL serves another file than the one expected."
        )
    return actual


def _resumable_offset(url: str, part: Path) -> int:
    """Bytes of `part` we may append to: only bytes fetched earlier from this same URL count."""
    if not part.exists():
        return 0
    if _part_info(part).get("url") != url:
        logger.info("%s: discarding %s left by a download from another URL", url, part)
        _discard_partial(part)
        return 0
    return _size(part)


def _part_info_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _part_info(part: Path) -> dict:
    return read_manifest(_part_info_path(part)) or {}


def _write_part_info(part: Path, url: str, response: requests.Response) -> None:
    # The ETag (or Last-Modified) goes back in If-Range, so a changed file is resent whole.
    validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
    if validator and validator.startswith("W/"):
        validator = None  # weak ETags are not allowed in If-Range
    # Scratch beside `.part`, written in place: a torn file reads as no info, so the partial
    # download restarts (never splices); a full disk is then reported with `dest` by download().
    _part_info_path(part).write_text(json.dumps({"url": url, "validator": validator}))


def _discard_partial(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_info_path(part).unlink(missing_ok=True)


def _parse_content_range(url: str, header: str | None) -> tuple[int, int | None]:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (header or "").strip())
    if match is None:
        raise DownloadError(f"{url}: 206 response with unusable Content-Range {header!r}")
    total = match.group(2)
    return int(match.group(1)), None if total == "*" else int(total)


def _total_from_content_range(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", (header or "").strip())
    return int(match.group(1)) if match else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _describe(error: BaseException) -> str:
    """`Type: message`; for a connection that never opened, urllib3's reason alone (the host
    name and why), not requests' three nested wrappers."""
    # NameResolutionError: urllib3 >= 2 (requests >= 2.31 allows 1.26, which has no such class)
    if isinstance(_root_cause(error), getattr(urllib3.exceptions, "NameResolutionError", ())):
        return f"cannot resolve the host name ({_root_cause(error).__context__})"
    if isinstance(_root_cause(error), urllib3.exceptions.NewConnectionError):
        cause = _root_cause(error).__context__ or _root_cause(error)
        return f"cannot connect ({cause})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class _Progress:
    """Logs about every 5 % of the file (or every 50 MB when the size is unknown) with the rate."""

    def __init__(self, url: str, offset: int, total: int | None, enabled: bool):
        self.url, self.done, self.total, self.enabled = url, offset, total, enabled
        self.start_bytes, self.start_time = offset, time.monotonic()
        self.step = max(total // 20, 1) if total else 50_000_000
        self.logged_at = offset

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        if self.enabled and self.done - self.logged_at >= self.step:
            self._log()

    def finish(self) -> None:
        if self.enabled and self.done != self.logged_at:
            self._log()

    def _log(self) -> None:
        self.logged_at = self.done
        elapsed = max(time.monotonic() - self.start_time, 1e-6)
        rate = (self.done - self.start_bytes) / 1e6 / elapsed
        if self.total:
            logger.info(
                "%s: %.1f / %.1f MB (%.0f %%) at %.1f MB/s",
                self.url, self.done / 1e6, self.total / 1e6, 100 * self.done / self.total, rate,
            )
        else:
            logger.info("%s: %.1f MB at %.1f MB/s", self.url, self.done / 1e6, rate)
