"""Cut-outs of galaxies from their sky positions, fetched from a survey's cut-out service the way
Galaxy Zoo 2's images were made.

Services (URL templates; the base URL is configurable, so tests point it at 127.0.0.1):

    sdss    {base}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=
            base https://skyserver.sdss.org/dr17 (SkyServer's ImgCutout: how GZ2 was cut out)
    legacy  {base}/viewer/cutout.jpg?ra=&dec=&layer=&pixscale=&size=
            or cutout.fits?...&bands=grz (image_format fits: a g, r, z cube in HDU 0)
            base https://www.legacysurvey.org (the DESI Legacy Imaging Surveys viewer)

Framing: 424 x 424 px at 0.02 x R90 arcsec per pixel when the table gives each galaxy's Petrosian
R90 in arcsec (GZ2's recipe: the galaxy's R90 is 50 px of every frame, which is what the models
were trained on); without a size, a fixed FIXED_SCALE arcsec per pixel, which frames a galaxy of
R90 = 9" (typical of the GZ2 sample) the same way, larger and smaller ones less well. Another
frame size keeps the field (8.48 R90 across) and changes the pixel scale.

A polite client: `concurrency` connections (threads), at most `rate` requests per second over
all of them, a per-request `timeout` (for the whole answer, not per read), and acquire/http.py's
retry policy (timeouts, dropped connections, 429 and 5xx, doubling waits, Retry-After honoured;
a 429/503's Retry-After also holds back the other threads).

What FOLDER gets:

    <id>.jpg (or .fits)   one cut-out per fetched position (written atomically)
    journal.jsonl         one line per finished position (fetched, or skipped for good), appended
                          as it happens: a killed run loses at most the positions in flight
    manifest.csv          one row per row of the positions table, in order: id_str, ra, dec,
                          size_arcsec, scale, url, file_loc, status (fetched|skipped),
                          skip_code, skip_reason, sha256, bytes. It is also a catalogue for
                          `spiralarms predict --catalog` (Zoobot's id_str/file_loc); skipped rows
                          keep their reason there.

A rerun fetches only what is missing: a position whose journal line has the same URL and whose
file is still there (same size) is not fetched again; nor is one skipped for good (blank, a 4xx
answer) at the same URL. An image without a journal line (a run killed between writing it and
logging it) is checked and adopted. Positions that failed for now (timeouts, 5xx after every
retry, an HTML page instead of an image) are fetched again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from spiralarms import atomic
from spiralarms.acquire.errors import AcquireError
from spiralarms.acquire.http import (
    CONNECTION_ERRORS,
    MAX_RETRY_AFTER_S,
    RETRY_BASE_WAIT_S,
    USER_AGENT,
    _describe,
    _unreachable,
    is_transient,
    parse_retry_after,
    retry_wait,
)
from spiralarms.acquire.positions import POSITION_SKIPS, read_positions

log = logging.getLogger(__name__)

GZ2_FRAME_PX = 424
GZ2_SCALE_PER_R90 = 0.02  # arcsec per pixel per arcsec of R90: R90 is 50 px of the frame
FIXED_SCALE = 0.18  # arcsec per pixel without a size: 0.02 x a typical GZ2 R90 of 9"

SERVICES = {
    "sdss": {
        "base_url": "https://skyserver.sdss.org/dr17",
        "template": "{base}/SkyServerWS/ImgCutout/getjpeg?ra={ra}&dec={dec}&scale={scale}"
                    "&width={size}&height={size}",
        "formats": ("jpeg",),
    },
    "legacy": {
        "base_url": "https://www.legacysurvey.org",
        "template": "{base}/viewer/cutout.{ext}?ra={ra}&dec={dec}&layer={layer}"
                    "&pixscale={scale}&size={size}{bands}",
        "formats": ("jpeg", "fits"),
    },
}
EXTENSIONS = {"jpeg": "jpg", "fits": "fits"}

CUTOUT_SKIPS = {
    "not_an_image": "the service answered with something that is not an image (an HTML error "
                    "page, a truncated file)",
    "no_data": "the cut-out is blank: the survey has no data at this position (outside its "
             "footprint)",
    "http_error": "the service refused the request (a 4xx answer); retrying will not help",
    "fetch_failed": "the service did not answer in time or kept failing after every retry; a "
                    "rerun tries again",
}
SKIP_MEANINGS = {**POSITION_SKIPS, **CUTOUT_SKIPS}
# Skips that a rerun does not retry at the same URL: the answer will not change.
FINAL_SKIPS = {"no_data", "http_error"}
MANIFEST_COLUMNS = ["id_str", "ra", "dec", "size_arcsec", "scale", "url", "file_loc", "status",
                    "skip_code", "skip_reason", "sha256", "bytes"]
BLANK_SHARE = 0.99  # a cut-out with this share of its pixels at one level (+-2 of 255) is blank
UNREACHABLE_ABORT = 8  # positions in a row that reach no server at all, before anything fetched


class CutoutError(AcquireError):
    """The cut-outs cannot be fetched at all (bad options, no server reachable)."""


@dataclass
class CutoutOptions:
    """How cut-outs are made and fetched; the workflow's predict.<name>.cutouts mirrors it."""

    service: str = "sdss"
    base_url: str | None = None  # None: the service's public URL
    layer: str = "ls-dr10"  # legacy only
    image_format: str = "jpeg"  # legacy: jpeg or fits
    bands: str = "grz"  # legacy FITS only
    size: int = GZ2_FRAME_PX
    fixed_scale: float = FIXED_SCALE
    concurrency: int = 4
    rate: float = 4.0  # requests per second, all connections together
    timeout: float = 30.0  # seconds for one whole answer
    retries: int = 4
    backoff: float = RETRY_BASE_WAIT_S  # first wait after a failure, doubled each time

    def __post_init__(self):
        if self.service not in SERVICES:
            raise CutoutError(f"unknown cut-out service {self.service!r}: give one of "
                              f"{', '.join(SERVICES)}")
        formats = SERVICES[self.service]["formats"]
        if self.image_format not in formats:
            raise CutoutError(f"the {self.service} service serves {', '.join(formats)}, not "
                              f"{self.image_format!r}")
        checks = [("size", self.size >= 16 and float(self.size).is_integer(), "an integer >= 16"),
                  ("fixed_scale", self.fixed_scale > 0, "> 0"),
                  ("concurrency", self.concurrency >= 1, ">= 1"),
                  ("rate", self.rate > 0, "> 0 (requests per second)"),
                  ("timeout", self.timeout > 0, "> 0 (seconds)"),
                  ("retries", self.retries >= 0, ">= 0"), ("backoff", self.backoff >= 0, ">= 0")]
        for name, ok, rule in checks:
            if not ok:
                raise CutoutError(f"cut-out option {name} must be {rule}, got "
                                  f"{getattr(self, name)!r}")
        self.size, self.concurrency = int(self.size), int(self.concurrency)

    @classmethod
    def from_dict(cls, values: dict | None) -> CutoutOptions:
        values = {k: v for k, v in (values or {}).items() if v is not None}
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise CutoutError(f"unknown cut-out options {sorted(unknown)}; known: "
                              f"{', '.join(f.name for f in fields(cls))}")
        return cls(**values)

    @property
    def base(self) -> str:
        return (self.base_url or SERVICES[self.service]["base_url"]).rstrip("/")

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.image_format]


CUTOUT_DEFAULTS = asdict(CutoutOptions())


def scale_for(size_arcsec: float, options: CutoutOptions) -> float:
    """Arcsec per pixel: GZ2's 0.02 x R90 when the size is known, else the fixed scale."""
    if np.isfinite(size_arcsec) and size_arcsec > 0:
        return GZ2_SCALE_PER_R90 * float(size_arcsec) * GZ2_FRAME_PX / options.size
    return options.fixed_scale


def cutout_url(ra: float, dec: float, scale: float, options: CutoutOptions) -> str:
    """The service's URL for one cut-out (ra, dec in degrees; scale in arcsec per pixel)."""
    bands = f"&bands={options.bands}" if options.image_format == "fits" else ""
    return SERVICES[options.service]["template"].format(
        base=options.base, ra=f"{ra:.6f}", dec=f"{dec:.6f}", scale=f"{scale:.5f}",
        size=options.size, layer=options.layer, ext=options.extension, bands=bands)


def file_name(galaxy_id: str, extension: str) -> str:
    """A safe file name for an id: the id itself when it is plain, else a cleaned id with a
    short hash (two ids must not share a file)."""
    clean = re.sub(r"[^A-Za-z0-9._+-]", "_", galaxy_id)[:100]
    if clean != galaxy_id or clean.startswith("."):
        clean = f"{clean.lstrip('.')}-{hashlib.sha1(galaxy_id.encode()).hexdigest()[:8]}"
    return f"{clean}.{extension}"


# --- what an answer holds -----------------------------------------------------------------------

def image_problem(body: bytes, content_type: str, image_format: str) -> tuple[str, str] | None:
    """(skip code, reason) when `body` is not a usable cut-out, else None."""
    start = body[:512].lstrip().lower()
    if content_type.lower().startswith("text/") or start.startswith((b"<!doctype", b"<html", b"<")):
        return "not_an_image", (f"the service answered {content_type or 'without a type'} "
                                f"instead of an image: {_snippet(body)!r}")
    if image_format == "fits":
        return _fits_problem(body)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(body)) as image:
            image.load()
            grey = np.asarray(image.convert("L"), dtype=np.int16)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # UnidentifiedImageError and truncated files are OSErrors
        return "not_an_image", (f"the answer ({len(body)} bytes, {content_type or 'no type'}) is "
                                f"not a readable image: {error}")
    at_level = np.abs(grey - np.median(grey)) <= 2
    if at_level.mean() >= BLANK_SHARE:
        return "no_data", (f"the cut-out is blank ({at_level.mean():.1%} of its pixels at one "
                         f"level): the survey has no data here (outside its footprint)")
    return None


def _fits_problem(body: bytes) -> tuple[str, str] | None:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(body), memmap=False) as hdus:
            data = next((h.data for h in hdus if getattr(h, "data", None) is not None
                         and h.data.ndim >= 2), None)
            data = None if data is None else np.asarray(data, dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError) as error:  # what astropy raises for non-FITS
        return "not_an_image", f"the answer ({len(body)} bytes) is not a readable FITS file: {error}"
    if data is None:
        return "not_an_image", "the FITS answer holds no image data"
    finite = data[np.isfinite(data)]
    if finite.size == 0 or np.ptp(finite) == 0:
        return "no_data", ("the cut-out is blank (no finite pixels or all one value): the survey has "
                         "no data here (outside its footprint)")
    return None


def _snippet(body: bytes) -> str:
    text = body[:2000].decode("utf-8", "replace")
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    text = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
    return " ".join(text.split())[:120]


# --- the polite client --------------------------------------------------------------------------

class RateLimiter:
    """At most `rate` request starts per second over all threads; `pause` holds every thread
    back (a server's Retry-After is about the client, not one connection)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.next_slot = max(self.next_slot, time.monotonic() + seconds)


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Refused(Exception):
    """A 4xx answer other than 408/425/429: the request itself is wrong."""


@dataclass
class Outcome:
    status: str  # fetched | skipped
    code: str = ""
    reason: str = ""
    sha256: str = ""
    bytes: int = 0
    unreachable: bool = False  # no connection was made at all (for the early stop)

    @property
    def final(self) -> bool:
        return self.status == "fetched" or self.code in FINAL_SKIPS


class Fetcher:
    """Fetches single cut-outs with retries, sharing one rate limit; one session per thread."""

    def __init__(self, options: CutoutOptions):
        self.options = options
        self.limiter = RateLimiter(options.rate)
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["User-Agent"] = USER_AGENT.replace("acquire", "cutouts")
        return self.local.session

    def fetch(self, url: str, dest: Path) -> Outcome:
        failures = 0
        while True:
            self.limiter.wait()
            try:
                body, content_type = self._get(url)
            except requests.exceptions.SSLError as error:  # a ConnectionError, never transient
                return Outcome("skipped", "fetch_failed", f"{url}: TLS refused ({error})")
            except (*CONNECTION_ERRORS, _Transient) as error:
                failures += 1
                retry_after = getattr(error, "retry_after", None)
                pause = retry_wait(failures, retry_after, self.options.backoff)
                if failures > self.options.retries or pause > MAX_RETRY_AFTER_S:
                    return Outcome("skipped", "fetch_failed",
                                   f"{url}: {_describe(error)} ({failures} attempts; a rerun "
                                   f"tries again)", unreachable=_unreachable(error))
                log.debug("%s: %s; trying again in %.2f s", url, _describe(error), pause)
                if retry_after is not None:
                    self.limiter.pause(pause)
                time.sleep(pause)
                continue
            except _Refused as error:
                return Outcome("skipped", "http_error", f"{url}: {error}")
            except requests.RequestException as error:  # an invalid URL: retrying won't help
                return Outcome("skipped", "fetch_failed", f"{url}: {_describe(error)}")
            problem = image_problem(body, content_type, self.options.image_format)
            if problem:
                return Outcome("skipped", *problem)
            atomic.write_bytes(dest, body)
            return Outcome("fetched", sha256=hashlib.sha256(body).hexdigest(), bytes=len(body))

    def _get(self, url: str) -> tuple[bytes, str]:
        """The whole body of a 200 answer within `timeout` seconds, and its content type."""
        timeout = self.options.timeout
        start = time.monotonic()
        with self.session().get(url, stream=True, timeout=timeout) as response:
            status = response.status_code
            if status != 200:
                reason = f"HTTP {status} {response.reason or ''}".strip()
                if is_transient(status):
                    raise _Transient(reason, parse_retry_after(response.headers.get("Retry-After")))
                raise _Refused(reason)
            body = bytearray()
            for block in response.iter_content(1 << 16):
                body += block
                if time.monotonic() - start > timeout:
                    raise requests.Timeout(f"the answer took longer than {timeout:g} s")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and len(body) < int(length):
                raise _Transient(f"connection closed at byte {len(body)} of {length}")
            return bytes(body), response.headers.get("Content-Type", "")


# --- a positions table -> a folder of cut-outs ---------------------------------------------------

def fetch_cutouts(positions_path, folder, options: CutoutOptions | None = None,
                  id_column: str = "id_str", ra_column: str = "ra", dec_column: str = "dec",
                  size_column: str | None = None, progress: bool = True) -> dict:
    """Fetch a cut-out for every position of the table into `folder`; write the manifest.
    Returns a summary: rows, fetched (now, earlier), skipped by code, manifest path."""
    options = options or CutoutOptions()
    folder = Path(folder)
    positions = read_positions(positions_path, id_column, ra_column, dec_column, size_column)
    folder.mkdir(parents=True, exist_ok=True)
    atomic.check_writable(folder)
    _remove_stale_partials(folder)
    journal_path = folder / "journal.jsonl"
    journal = read_journal(journal_path)
    outcomes: dict[int, Outcome] = {}
    urls, files, scales, todo = {}, {}, {}, []
    for row in positions.itertuples(index=False):
        if row.skip_code:
            outcomes[row.row] = Outcome("skipped", row.skip_code, row.skip_reason)
            continue
        scales[row.row] = scale_for(row.size_arcsec, options)
        urls[row.row] = cutout_url(row.ra, row.dec, scales[row.row], options)
        files[row.row] = file_name(row.id, options.extension)
        earlier = _earlier_outcome(journal.get(row.id), urls[row.row], folder / files[row.row],
                                   options)
        if earlier is not None:
            outcomes[row.row] = earlier
        else:
            todo.append(row)
    earlier_fetched = sum(o.status == "fetched" for o in outcomes.values())
    adopted = [r for r in outcomes if outcomes[r].status == "fetched" and
               journal.get(positions.at[r, "id"], {}).get("url") != urls[r]]
    with open(journal_path, "a") as journal_file:
        for row in adopted:
            _log_outcome(journal_file, positions.at[row, "id"], urls[row], files[row],
                         outcomes[row])
        _fetch_all(Fetcher(options), todo, urls, files, folder, outcomes, journal_file, progress)
    manifest = _manifest(positions, outcomes, urls, files, scales)
    with atomic.replacing(folder / "manifest.csv") as partial:
        manifest.to_csv(partial, index=False)
    fetched = int((manifest["status"] == "fetched").sum())
    skipped = manifest.loc[manifest["status"] == "skipped", "skip_code"].value_counts()
    return {"rows": len(positions), "fetched": fetched, "fetched_now": fetched - earlier_fetched,
            "fetched_earlier": earlier_fetched, "skipped": int(skipped.sum()),
            "skipped_by_code": {str(k): int(v) for k, v in skipped.items()},
            "manifest": str(folder / "manifest.csv"), "service": options.service,
            "base_url": options.base}


def _fetch_all(fetcher: Fetcher, todo, urls, files, folder, outcomes, journal_file,
               progress: bool) -> None:
    """Fetch `todo` with `concurrency` threads; log each finished position as it comes."""
    bar = Progress(len(todo), progress)
    unreachable_run, fetched_now = 0, 0
    # At most a few positions queued ahead of the threads: a million-row table stays lazy.
    pending, rows = {}, iter(todo)
    with ThreadPoolExecutor(fetcher.options.concurrency, "cutout") as pool:
        try:
            while True:
                while len(pending) < 2 * fetcher.options.concurrency:
                    row = next(rows, None)
                    if row is None:
                        break
                    future = pool.submit(fetcher.fetch, urls[row.row], folder / files[row.row])
                    pending[future] = row
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    row, outcome = pending.pop(future), future.result()
                    outcomes[row.row] = outcome
                    if outcome.final:  # only this thread writes the journal
                        _log_outcome(journal_file, row.id, urls[row.row], files[row.row], outcome)
                    fetched_now += outcome.status == "fetched"
                    unreachable_run = unreachable_run + 1 if outcome.unreachable else 0
                    bar.advance(outcome)
                if unreachable_run >= UNREACHABLE_ABORT and not fetched_now:
                    raise CutoutError(
                        f"no server answers at {fetcher.options.base} ({outcome.reason}): check "
                        f"the network and the base URL; downloads run where Snakemake starts, "
                        f"not on compute nodes without internet")
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            bar.close()


def _earlier_outcome(entry: dict | None, url: str, path: Path,
                     options: CutoutOptions) -> Outcome | None:
    """What an earlier run left for this position, when it need not be fetched again."""
    if entry is not None and entry.get("url") == url:
        if entry["status"] == "fetched" and path.is_file() and \
                path.stat().st_size == entry.get("bytes"):
            return Outcome("fetched", sha256=entry["sha256"], bytes=entry["bytes"])
        if entry["status"] == "skipped" and entry.get("code") in FINAL_SKIPS:
            return Outcome("skipped", entry["code"], entry["reason"])
    if (entry is None or entry.get("url") == url) and path.is_file():
        # written completely (atomically) by a run killed before its journal line
        body = path.read_bytes()
        if image_problem(body, "", options.image_format) is None:
            return Outcome("fetched", sha256=hashlib.sha256(body).hexdigest(), bytes=len(body))
    return None


def read_journal(path: Path) -> dict[str, dict]:
    """id -> the last journal line about it; a torn last line (a killed run) is ignored."""
    entries = {}
    if not path.exists():
        return entries
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            entries[entry["id"]] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _log_outcome(journal_file, galaxy_id: str, url: str, file: str, outcome: Outcome) -> None:
    entry = {"id": galaxy_id, "url": url, "file": file, "status": outcome.status,
             "code": outcome.code, "reason": outcome.reason, "sha256": outcome.sha256,
             "bytes": outcome.bytes}
    journal_file.write(json.dumps(entry) + "\n")
    journal_file.flush()  # the OS has it: a SIGKILL of this process cannot lose it


def _remove_stale_partials(folder: Path) -> None:
    """Scratch files of killed runs (`.<name>.partial-<pid>`) whose process is gone."""
    for path in folder.glob(".*.partial-*"):
        pid = path.name.rsplit("-", 1)[-1].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _manifest(positions, outcomes, urls, files, scales) -> pd.DataFrame:
    rows = []
    for row in positions.itertuples(index=False):
        outcome = outcomes[row.row]
        fetched = outcome.status == "fetched"
        rows.append({"id_str": row.id, "ra": row.ra, "dec": row.dec,
                     "size_arcsec": row.size_arcsec, "scale": scales.get(row.row, np.nan),
                     "url": urls.get(row.row, ""), "file_loc": files[row.row] if fetched else "",
                     "status": outcome.status, "skip_code": outcome.code,
                     "skip_reason": outcome.reason, "sha256": outcome.sha256,
                     "bytes": outcome.bytes})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


class Progress:
    """A tqdm bar (rate, time left, skips) on a terminal; elsewhere (a Snakemake log) a line
    about every 5 % or 30 s, in the project's log style."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.skipped = total, 0, 0
        self.start = self.logged = time.monotonic()
        self.bar = None
        self.enabled = enabled and total > 0
        if self.enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm comes with gdown and kaggle; log lines without it
                return
            self.bar = tqdm(total=total, unit="cut-out", smoothing=0.1, dynamic_ncols=True)

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        self.skipped += outcome.status != "fetched"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(skipped=self.skipped, refresh=False)
        elif self.enabled:
            now = time.monotonic()
            if self.done == self.total or now - self.logged >= 30 or \
                    self.done % max(1, self.total // 20) == 0:
                self.logged = now
                rate = self.done / max(now - self.start, 1e-6)
                left = (self.total - self.done) / rate
                log.info("cut-outs: %d of %d (%.0f %%), %d skipped, %.1f/s, about %s left",
                         self.done, self.total, 100 * self.done / self.total, self.skipped,
                         rate, _duration(left))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_predict_cutouts(positions, folder, entry: dict) -> dict:
    """The workflow's `predict_cutouts` rule: predict.<name> (positions, id_column, size_column,
    cutouts) -> the cut-outs and their manifest in `folder`."""
    cutouts = dict(entry.get("cutouts") or {})
    columns = {k: cutouts.pop(k) for k in ("ra_column", "dec_column") if k in cutouts}
    summary = fetch_cutouts(positions, folder, CutoutOptions.from_dict(cutouts),
                            entry.get("id_column") or "id_str", size_column=entry.get("size_column"),
                            **columns)
    print(summary_line(summary))
    if not summary["fetched"]:
        raise CutoutError(f"none of the {summary['rows']} positions of {positions} gave a cut-out; "
                          f"the reasons are in {summary['manifest']}")
    return summary


def summary_line(summary: dict) -> str:
    reasons = "; ".join(f"{count} {SKIP_MEANINGS.get(code, code)}"
                        for code, count in summary["skipped_by_code"].items())
    return (f"{summary['rows']} positions: {summary['fetched']} cut-outs "
            f"({summary['fetched_now']} fetched now, {summary['fetched_earlier']} already there)"
            f" + {summary['skipped']} skipped" + (f" ({reasons})" if reasons else "") +
            f"; manifest {summary['manifest']}")

