"""A real threaded HTTP/1.1 server on 127.0.0.1 for download tests.

Serves bytes by path from a dict (or the files of a folder), honours Range / If-Range with 206,
and can be told to misbehave: cut the connection after N bytes, answer a status code instead of
the file, or ignore Range requests. As an HTTPS proxy it refuses every tunnel (403), which keeps a
client offline while showing where it tried to go. Every request is recorded.

    with FileServer({"cat.csv": data}) as server:
        server.cut_after("cat.csv", 1000)        # the next GET dies after 1000 body bytes
        download(server.url("cat.csv"), dest)
        assert server.requests[1].headers["Range"] == "bytes=1000-"
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # Clients hanging up (our own cut connections, dropped keep-alives) are expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha1(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FileServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_CONNECT(self) -> None:
        # Used as HTTPS_PROXY, the server records where a client tried to go and refuses the tunnel.
        self.owner._record(RecordedRequest("CONNECT", self.path, dict(self.headers.items())))
        self._send_plain(403)

    def _respond(self, send_body: bool) -> None:
        name = urlsplit(self.path).path.lstrip("/")
        self.owner._record(RecordedRequest(self.command, name, dict(self.headers.items())))
        status, headers = self.owner._pop(self.owner._statuses, name) or (None, {})
        data = self.owner.files.get(name)
        if status is not None or data is None:
            self._send_plain(status or 404, headers)
            return
        start, status = self._range_start(data)
        if status == 416:
            self._send_plain(416, {"Content-Range": f"bytes */{len(data)}"})
            return
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag_of(data))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if send_body:
            self._send_body(name, body)

    def _range_start(self, data: bytes) -> tuple[int, int]:
        """(first byte, status): 206 for a usable Range, 200 when ignored, 416 past the end."""
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match is None or self.owner.ignore_range:
            return 0, 200
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != etag_of(data):
            return 0, 200  # the client's partial copy is of an older version: send it all
        start = int(match.group(1))
        return (start, 206) if start < len(data) else (0, 416)

    def _send_body(self, name: str, body: bytes) -> None:
        cut = self.owner._pop(self.owner._cuts, name)
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)  # the client sees a dropped connection

    def _send_plain(self, status: int, headers: dict[str, str] | None = None) -> None:
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LocalServer:
    """A threading HTTP server on a free port of 127.0.0.1 for the length of a `with` block.
    Subclasses give `handler` (a BaseHTTPRequestHandler whose `owner` is the server object) and
    may give another `server_class`."""

    handler: type
    server_class: type = _QuietServer

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        handler = type("Handler", (self.handler,), {"owner": self})
        self._httpd = self.server_class(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class FileServer(LocalServer):
    handler = _Handler

    def __init__(self, files: dict[str, bytes] | Path | None = None):
        if isinstance(files, Path):
            files = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}
        self.files: dict[str, bytes] = dict(files or {})
        self.requests: list[RecordedRequest] = []
        self.ignore_range = False
        self._cuts: dict[str, list[int]] = {}
        self._statuses: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._httpd: _QuietServer | None = None

    # --- fault injection -------------------------------------------------------------------
    def cut_after(self, name: str, nbytes: int, times: int = 1) -> None:
        """The next `times` GETs of `name` close the connection after `nbytes` body bytes."""
        self._cuts.setdefault(name, []).extend([nbytes] * times)

    def answer_status(self, name: str, status: int, times: int = 1,
                      headers: dict[str, str] | None = None) -> None:
        """The next `times` requests for `name` get `status` (e.g. 503) instead of the file,
        with `headers` (e.g. {"Retry-After": "1"})."""
        self._statuses.setdefault(name, []).extend([(status, headers or {})] * times)

    def count(self, name: str, method: str = "GET") -> int:
        """How many `method` requests for `name` the server received."""
        return sum(r.path == name and r.method == method for r in self.requests)

    # --- lifecycle -------------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"{self.address}/{name}"

    # --- used by the handler ---------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _pop(self, queue: dict[str, list], name: str):
        with self._lock:
            pending = queue.get(name)
            return pending.pop(0) if pending else None
