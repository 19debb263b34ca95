"""A stand-in for the Kaggle API on 127.0.0.1, for the real, unpatched `kaggle` client.

Why a TLS proxy and not `KAGGLE_API_ENVIRONMENT=TEST`: kagglesdk maps TEST to
http://localhost:7777, but kaggle 2.2.4's `KaggleApi.build_kaggle_client_with_params` always passes
an explicit env (PROD unless `--staging/--admin/--local`, and `--local` only from
KAGGLE_API_ENVIRONMENT=LOCALHOST, which means port 80), and `KaggleHttpClient` uses
`env or get_env()`: the variable is never read for a dataset download. So the server is an HTTPS
proxy: `HTTPS_PROXY=http://127.0.0.1:<port>` sends the client's CONNECT to us, we answer the
tunnel with TLS under a certificate from a throw-away CA (`REQUESTS_CA_BUNDLE`), and the client
talks to "https://api.kaggle.com" and "https://storage.googleapis.com" exactly as in production.
Environment variables only, so it also works for a Snakemake job in a child process.
Plain HTTP requests in the TEST layout (`/api/v1/...`) are served too, for a bare `KaggleClient()`.

What a `dataset_download_files(owner/slug)` sends (kaggle/api/kaggle_api_extended.py,
kagglesdk/kaggle_http_client.py), and what we answer:
1. `POST https://api.kaggle.com/v1/datasets.DatasetApiService/DownloadDataset`, JSON body
   `{"ownerSlug", "datasetSlug"}`, `Authorization: Basic user:key` (KAGGLE_USERNAME/KAGGLE_KEY or
   kaggle.json) or `Bearer <token>` (KAGGLE_API_TOKEN). Wrong or missing credentials -> 401, an
   unknown dataset -> 404, both as kagglesdk's JSON error `{"code", "message"}`; else 302 to a
   signed storage URL.
2. `GET https://storage.googleapis.com/kaggle-data-sets/<id>/<version>/bundle/archive.zip?...`
   (requests follows the redirect, turns POST into GET and drops the Authorization header):
   the zip with Content-Length, ETag, Last-Modified, Accept-Ranges; Range/If-Range get 206, which
   kaggle's resume-after-a-cut path uses.
3. `POST .../security.OAuthService/IntrospectToken` (only with KAGGLE_API_TOKEN, at login).
Every request is recorded (host, method, path, headers, JSON body, status).

    with KaggleServer() as kaggle:
        kaggle.add_dataset("jaimetrickz/galaxy-zoo-2-images", images_zip(jpegs))
        kaggle.install(monkeypatch, tmp_path / "home")   # or the `kaggle_server` fixture
        fetch_kaggle_images("jaimetrickz/galaxy-zoo-2-images", out)
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from httpserver import FileServer, _Handler, _QuietServer, etag_of

TEST_PORT = 7777  # kagglesdk's KaggleEnv.TEST endpoint
API_HOST = "api.kaggle.com"
STORAGE_HOST = "storage.googleapis.com"
# The other hosts of the real run's sources, so a rehearsal can serve config/config.yaml's own
# URLs through this proxy (catalogue, mapping, stellar-mass archive, Zoobot's encoder).
SOURCE_HOSTS = ("zooniverse-data.s3.amazonaws.com", "zenodo.org", "github.com", "huggingface.co")
TLS_NAMES = (API_HOST, "www.kaggle.com", "kaggle.com", STORAGE_HOST, *SOURCE_HOSTS, "localhost")
DOWNLOAD_CALL = "datasets.DatasetApiService/DownloadDataset"
INTROSPECT_CALL = "security.OAuthService/IntrospectToken"
TEST_USERNAME = "spiralarms-test"
TEST_KEY = "0123456789abcdef0123456789abcdef"  # 32 hex digits, like a real legacy key
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)  # format kaggle's strptime expects
GZ2_IMAGE_ROOT = "images_gz2/images"


@dataclass
class KaggleRequest:
    host: str  # "api.kaggle.com" inside a tunnel, "127.0.0.1:<port>" for plain HTTP
    method: str
    path: str  # without the query string
    headers: dict[str, str]
    body: dict = field(default_factory=dict)
    status: int = 0


@dataclass(frozen=True)
class TLSFiles:
    ca: Path  # give this to the client (REQUESTS_CA_BUNDLE)
    cert: Path
    key: Path


def make_tls_files(folder: str | os.PathLike) -> TLSFiles:
    """A throw-away CA and a server certificate for the Kaggle and storage host names."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the Kaggle test server needs the openssl command for its certificate")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "server.pem", folder / "server.key", folder / "server.csr"
    ext = folder / "server.ext"
    names = ",".join([*(f"DNS:{n}" for n in TLS_NAMES), "IP:127.0.0.1"])
    ext.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "3650",
         "-subj", "/CN=spiralarms test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={API_HOST}"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "3650", "-extfile", ext],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True)
    return TLSFiles(ca, cert, key)


def images_zip(images: dict[str, bytes] | str | os.PathLike, root: str = GZ2_IMAGE_ROOT) -> bytes:
    """The Kaggle dataset's zip: `images_gz2/images/<asset_id>.jpg` for each JPEG.

    `images` is a folder of .jpg files or a dict file name -> bytes.
    """
    if not isinstance(images, dict):
        images = {p.name: p.read_bytes() for p in sorted(Path(images).glob("*.jpg"))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # JPEGs do not compress
        for name, data in sorted(images.items()):
            archive.writestr(f"{root}/{name}", data)
    return buffer.getvalue()


class KaggleServer(FileServer):
    """Datasets by slug, served the way the Kaggle API and its storage bucket serve them."""

    def __init__(self, tls: TLSFiles | None = None, username: str = TEST_USERNAME,
                 key: str = TEST_KEY, token: str | None = None, port: int = TEST_PORT):
        super().__init__()
        self.tls, self.username, self.key, self.token = tls, username, key, token
        self.preferred_port = port
        self.datasets: dict[str, str] = {}  # "owner/slug" -> storage object path
        self.refusals: dict[str, tuple[int, str]] = {}
        self.tls_errors: list[str] = []
        self._tmp: Path | None = None
        self._context: ssl.SSLContext | None = None

    # --- set-up by tests -------------------------------------------------------------------
    def add_dataset(self, slug: str, archive: bytes | str | os.PathLike) -> str:
        """Serve `archive` (zip bytes or a path to a zip) as Kaggle dataset `owner/slug`.

        Returns the storage path the download is redirected to (for `cut_after` etc.).
        """
        data = archive if isinstance(archive, bytes) else Path(archive).read_bytes()
        number = 1_000_000 + len(self.datasets)
        path = f"kaggle-data-sets/{number}/{number + 7}/bundle/archive.zip"
        self.files[path] = data
        self.datasets[slug] = path
        return path

    def refuse(self, slug: str, status: int, message: str) -> None:
        """Answer every download of `slug` with `status` (e.g. 403 for unaccepted terms)."""
        self.refusals[slug] = (status, message)

    # --- what the client is told -----------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, home: str | os.PathLike) -> dict[str, str]:
        """Environment for a client (this process or a child): proxy, CA, test login, home."""
        home = Path(home)
        return {
            "HTTPS_PROXY": self.proxy_url,
            "REQUESTS_CA_BUNDLE": str(self.tls.ca),
            "KAGGLE_API_ENVIRONMENT": "TEST",  # ignored by KaggleApi (see above); for KaggleClient()
            "KAGGLE_USERNAME": self.username,
            "KAGGLE_KEY": self.key,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
        }

    def install(self, monkeypatch, home: str | os.PathLike) -> None:
        """Point this process's environment (and so its children's) at the server."""
        for name in list(os.environ):
            if name.startswith("KAGGLE_") or name.lower() in (
                    "https_proxy", "all_proxy", "no_proxy", "curl_ca_bundle"):
                monkeypatch.delenv(name)
        Path(home).mkdir(parents=True, exist_ok=True)
        for name, value in self.env(home).items():
            monkeypatch.setenv(name, value)

    def calls(self) -> list[tuple[str, str, str]]:
        """(method, host, path) of every request so far, CONNECTs included."""
        return [(r.method, r.host, r.path) for r in self.requests]

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        if self.tls is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="kaggle-tls-"))
            self.tls = make_tls_files(self._tmp)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.tls.cert, self.tls.key)
        handler = type("KaggleHandler", (_KaggleHandler,), {"owner": self})
        self._httpd = self._bind(handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _bind(self, handler) -> _QuietServer:
        """Port 7777 (kagglesdk's TEST port) when free; another developer's run may hold it."""
        try:
            return _QuietServer(("127.0.0.1", self.preferred_port), handler)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
        return _QuietServer(("127.0.0.1", 0), handler)

    # --- used by the handler ---------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme == "Bearer":
            return self.token is not None and value == self.token
        if scheme != "Basic":
            return False
        try:
            user, _, key = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, key) == (self.username, self.key)


class _KaggleHandler(_Handler):
    owner: KaggleServer
    tunnel_host: str | None = None  # set on the handler class that serves one TLS tunnel
    timeout = 30  # an idle keep-alive connection ends instead of holding a thread forever

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0]
        self.owner._record(KaggleRequest(host, "CONNECT", self.path, dict(self.headers.items()),
                                         status=200))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            tls = self.owner._context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as error:  # e.g. the client does not trust our CA
            self.owner.tls_errors.append(f"{host}: {error}")
            return
        tunnel = type("Tunnel", (type(self),), {"tunnel_host": host})
        try:
            tunnel(tls, self.client_address, self.server)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass  # the client hung up or went idle
        finally:
            tls.close()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("latin-1")}
        request = self._request("POST", body)
        call = request.path.removeprefix("/api").removeprefix("/v1/")  # PROD /v1, TEST /api/v1
        if call == DOWNLOAD_CALL:
            self._download_dataset(request, body)
        elif call == INTROSPECT_CALL:
            self._introspect(request, body)
        else:
            self._json_error(request, 404, f"no such API call in the test server: {call}")

    def do_GET(self) -> None:
        request = self._request("GET")
        name = request.path.lstrip("/")
        if name not in self.owner.files:
            self._json_error(request, 404, "No such object")
            return
        data = self.owner.files[name]
        start, status = self._range_start(data)
        request.status = status
        if status == 416:
            self._send_plain(416, {"Content-Range": f"bytes */{len(data)}"})
            return
        body = data[start:]
        self.send_response(status)
        for key, value in {
            "Content-Type": "application/zip", "Content-Length": str(len(body)),
            "Accept-Ranges": "bytes", "ETag": etag_of(data), "Last-Modified": LAST_MODIFIED,
        }.items():
            self.send_header(key, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self._send_body(name, body)

    def do_HEAD(self) -> None:
        self._json_error(self._request("HEAD"), 405, "HEAD is not used by the kaggle client")

    # --- the API calls ---------------------------------------------------------------------
    def _download_dataset(self, request: KaggleRequest, body: dict) -> None:
        if not self.owner.authorized(self.headers.get("Authorization")):
            self._json_error(request, 401, "Unauthenticated: the API key or token is not valid")
            return
        slug = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if slug in self.owner.refusals:
            self._json_error(request, *self.owner.refusals[slug])
            return
        if slug not in self.owner.datasets:
            self._json_error(request, 404, f"Dataset {slug} not found")
            return
        path = self.owner.datasets[slug]
        signature = hashlib.sha256(path.encode()).hexdigest()
        query = f"X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=259200&X-Goog-Signature={signature}"
        if self.tunnel_host:
            location = f"https://{STORAGE_HOST}/{path}?{query}"
        else:  # the TEST layout: everything on this server
            location = f"http://{self.headers.get('Host')}/{path}?{query}"
        request.status = 302
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _introspect(self, request: KaggleRequest, body: dict) -> None:
        token = self.owner.token
        active = token is not None and body.get("token") == token
        payload = {"active": active, "username": self.owner.username if active else ""}
        self._json(request, 200, payload)

    # --- helpers ---------------------------------------------------------------------------
    def _request(self, method: str, body: dict | None = None) -> KaggleRequest:
        host = self.tunnel_host or self.headers.get("Host", "")
        request = KaggleRequest(host, method, urlsplit(self.path).path,
                                dict(self.headers.items()), body or {})
        self.owner._record(request)
        return request

    def _json_error(self, request: KaggleRequest, status: int, message: str) -> None:
        self._json(request, status, {"code": status, "message": message})

    def _json(self, request: KaggleRequest, status: int, payload: dict) -> None:
        request.status = status
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


# --- fixtures (imported by tests/conftest.py) -----------------------------------------------

@pytest.fixture(scope="session")
def kaggle_tls(tmp_path_factory) -> TLSFiles:
    """One throw-away CA and certificate for the whole test session."""
    return make_tls_files(tmp_path_factory.mktemp("kaggle-tls"))


@pytest.fixture
def kaggle_server(kaggle_tls, monkeypatch, tmp_path_factory):
    """A running KaggleServer with this process's environment pointed at it.

    The environment holds the test login (KAGGLE_USERNAME/KAGGLE_KEY = server.username/key), a
    fresh HOME without any kaggle.json, HTTPS_PROXY and REQUESTS_CA_BUNDLE; child processes
    (a Snakemake run) inherit it. Register data with `server.add_dataset(slug, zip)`.
    """
    with KaggleServer(kaggle_tls) as server:
        server.install(monkeypatch, tmp_path_factory.mktemp("kaggle-home"))
        yield server
