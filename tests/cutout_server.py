"""A real threaded HTTP server on 127.0.0.1 that imitates the cut-out services' URL formats.

    /SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=      (SDSS SkyServer)
    /viewer/cutout.jpg?ra=&dec=&layer=&pixscale=&size=                 (Legacy Surveys)
    /viewer/cutout.fits?ra=&dec=&layer=&pixscale=&size=&bands=grz

Every answer is a small image drawn from the position (a galaxy-like blob on noise, the same for
the same URL), except: positions with dec < BLANK_BELOW_DEC are outside the "footprint" and get a
blank image (black JPEG, all-zero FITS), as the real services answer there; and faults queued for
one ra (`fail(ra, ...)`) are served first, one per request: a status with headers (429 with
Retry-After, 500), a connection dropped mid-body, an answer slower than the client's timeout, an
HTML page with 200. `latency` adds a delay to every answer (the benchmark's 200 ms). Every
request is recorded (path and query).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
from httpserver import LocalServer
from PIL import Image

BLANK_BELOW_DEC = -80.0
PATHS = {"/SkyServerWS/ImgCutout/getjpeg": "sdss", "/viewer/cutout.jpg": "legacy",
         "/viewer/cutout.fits": "legacy-fits"}
HTML_ERROR = (b"<!DOCTYPE html><html><head><title>SkyServer: server too busy</title></head>"
              b"<body><p>Please try again later.</p></body></html>")


def render(ra: float, dec: float, size: int, fits_cube: bool = False) -> bytes:
    """The cut-out of a position: JPEG (or a 3-band FITS cube), blank outside the footprint."""
    if dec < BLANK_BELOW_DEC:
        pixels = np.zeros((size, size, 3), np.uint8)
    else:
        rng = np.random.default_rng(int(abs(ra * 1e5) + abs(dec * 1e3)))
        y, x = np.mgrid[:size, :size] - (size - 1) / 2
        blob = 200 * np.exp(-(x**2 + y**2) / (2 * (size / 6) ** 2))
        grey = np.clip(20 + blob + rng.normal(0, 8, (size, size)), 0, 255)
        pixels = np.stack([grey, grey * 0.9, grey * 0.8], -1).astype(np.uint8)
    if fits_cube:
        from astropy.io import fits

        buffer = io.BytesIO()
        fits.PrimaryHDU(np.moveaxis(pixels, -1, 0).astype(np.float32) / 255).writeto(buffer)
        return buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up (timeouts, dropped keep-alives) are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: CutoutServer

    def log_message(self, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms), a delay the real services do not add
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.owner._lock:
            self.owner.requests.append((parts.path, query))
            self.owner.times.append(time.monotonic())
        if self.owner.latency:
            time.sleep(self.owner.latency)
        kind = PATHS.get(parts.path)
        try:
            ra, dec = float(query["ra"]), float(query["dec"])
            size = int(query["width"] if kind == "sdss" else query["size"])
        except (KeyError, ValueError, TypeError):
            return self._send(404 if kind is None else 400, b"bad request", "text/plain")
        fault = self.owner._next_fault(query["ra"])
        body = self.owner._render(ra, dec, size, kind == "legacy-fits")
        content_type = "application/fits" if kind == "legacy-fits" else "image/jpeg"
        if fault is None:
            return self._send(200, body, content_type)
        if fault[0] == "status":
            return self._send(fault[1], b"busy", "text/plain", fault[2] if len(fault) > 2 else {})
        if fault[0] == "html":
            return self._send(200, HTML_ERROR, "text/html; charset=utf-8")
        if fault[0] == "slow":
            time.sleep(fault[1])
            return self._send(200, body, content_type)
        if fault[0] == "cut":  # promise the whole body, send part of it, hang up
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:fault[1]])
            self.wfile.flush()
            self.close_connection = True
            return None
        raise ValueError(f"unknown fault {fault}")

    def _send(self, status: int, body: bytes, content_type: str, headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout)


class CutoutServer(LocalServer):
    handler, server_class = _Handler, _QuietServer

    def __init__(self, latency: float = 0.0, distinct: int = 0):
        """`distinct` > 0: serve that many different images, rendered once (the benchmark:
        the server's drawing and JPEG encoding must not be what is measured)."""
        self.latency, self.distinct = latency, distinct
        self._rendered: dict[tuple, bytes] = {}
        self.requests: list[tuple[str, dict]] = []
        self.times: list[float] = []  # time.monotonic() of each request, in order
        self._faults: dict[str, list[tuple]] = {}
        self._lock = threading.Lock()
        self._httpd = None

    def fail(self, ra: float, *fault) -> None:
        """Queue a fault for the next request at this ra: ("status", 429, {"Retry-After": "1"}),
        ("cut", nbytes), ("slow", seconds), ("html",)."""
        self._faults.setdefault(f"{ra:.6f}", []).append(fault)

    def count(self, ra: float) -> int:
        return sum(query.get("ra") == f"{ra:.6f}" for _, query in self.requests)

    def request_times(self, ra: float) -> list[float]:
        return [t for (_, query), t in zip(self.requests, self.times)
                if query.get("ra") == f"{ra:.6f}"]

    @property
    def base_url(self) -> str:
        return self.address

    def _render(self, ra: float, dec: float, size: int, fits_cube: bool) -> bytes:
        if not self.distinct or dec < BLANK_BELOW_DEC:
            return render(ra, dec, size, fits_cube)
        key = (int(ra * 1e6) % self.distinct, size, fits_cube)
        if key not in self._rendered:
            self._rendered[key] = render(1.0 + key[0], 10.0, size, fits_cube)
        return self._rendered[key]

    def _next_fault(self, ra: str):
        with self._lock:
            queue = self._faults.get(ra)
            return queue.pop(0) if queue else None
