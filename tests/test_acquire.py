"""Downloads, archive extraction, Kaggle credentials and source resolution, all offline.

HTTP tests talk to a real server on 127.0.0.1 (tests/httpserver.py); the Kaggle tests run the real
`kaggle` package with fake credentials and an HTTPS proxy on 127.0.0.1 that refuses every tunnel.
"""

import hashlib
import importlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import py7zr
import pytest
from fixtures_gz2 import galaxies, galaxy_jpeg, write_catalog, write_mapping
from gz2_sources import (
    KAGGLE_DATASET,
    PHYSICAL_MEMBER,
    PHYSICAL_URL_PATH,
    build_gz2_sources,
    write_7z,
)
from httpserver import FileServer
from kaggle_server import API_HOST, DOWNLOAD_CALL, STORAGE_HOST, KaggleServer, images_zip

from spiralarms.acquire import (
    AcquireError,
    ChecksumError,
    DownloadError,
    GDriveError,
    KaggleCredentialsError,
    KaggleDownloadError,
    UnsafeArchiveError,
    check_image_count,
    download,
    download_name,
    extract_images,
    fetch_kaggle,
    fetch_kaggle_images,
    find_kaggle_credentials,
    gdrive_file_id,
    image_folder,
    manifest_path_for,
    parse_kaggle_spec,
    physical_csv,
    planned_path,
    read_manifest,
    remote_sources,
    run_extract_images,
    run_fetch_images,
    safe_extract,
)
from spiralarms.acquire import http as acquire_http
from spiralarms.gz2.catalog import CatalogError, read_physical
from spiralarms.gz2.selection import run_labels

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAKE_KEY = "fake-kaggle-key-7d41c9e0b2"
GDRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz_-012"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    with FileServer({"catalog.csv.gz": PAYLOAD}) as running:
        yield running


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(acquire_http, "RETRY_BASE_WAIT_S", 0.0)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- HTTP downloads -------------------------------------------------------------------------

def test_download_saves_file_and_manifest(server, tmp_path, caplog):
    dest = tmp_path / "catalog.csv.gz"
    with caplog.at_level(logging.INFO, logger="spiralarms.acquire"):
        entry = download(server.url("catalog.csv.gz"), dest, sha256=SHA.upper())

    assert dest.read_bytes() == PAYLOAD
    assert entry["size"] == len(PAYLOAD) and entry["sha256"] == SHA
    assert entry["url"] == server.url("catalog.csv.gz") and entry["downloaded_at"]
    assert read_manifest(tmp_path / "catalog.csv.gz.manifest.json") == entry
    assert leftovers(tmp_path) == ["catalog.csv.gz", "catalog.csv.gz.manifest.json"]
    assert "MB/s" in caplog.text and "(100 %)" in caplog.text


def test_download_writes_manifest_where_asked(server, tmp_path):
    manifest = tmp_path / "logs" / "catalog.json"
    manifest.parent.mkdir()
    entry = download(server.url("catalog.csv.gz"), tmp_path / "c.gz", manifest=manifest)
    assert json.loads(manifest.read_text()) == entry


def test_cut_connection_is_resumed_with_range(server, tmp_path):
    server.cut_after("catalog.csv.gz", 100_000)
    dest = tmp_path / "catalog.csv.gz"

    download(server.url("catalog.csv.gz"), dest, sha256=SHA, chunk=8192)

    first, second = server.requests
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=100000-"
    assert dest.read_bytes() == PAYLOAD


def test_rerun_resumes_partial_file_of_failed_run(server, tmp_path):
    server.cut_after("catalog.csv.gz", 120_000)
    server.cut_after("catalog.csv.gz", 0)  # and the resume attempt brings nothing: give up
    dest = tmp_path / "catalog.csv.gz"
    with pytest.raises(DownloadError, match="rerun resumes") as failure:
        download(server.url("catalog.csv.gz"), dest, retries=0)
    assert failure.value.resumable
    assert not dest.exists()
    assert (tmp_path / "catalog.csv.gz.part").stat().st_size == 120_000

    download(server.url("catalog.csv.gz"), dest, sha256=SHA)
    assert server.requests[-1].headers["Range"] == "bytes=120000-"
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["catalog.csv.gz", "catalog.csv.gz.manifest.json"]


def test_partial_file_of_older_version_is_not_spliced(server, tmp_path):
    server.cut_after("catalog.csv.gz", 120_000)
    server.cut_after("catalog.csv.gz", 0)  # and the resume attempt brings nothing: give up
    dest = tmp_path / "catalog.csv.gz"
    with pytest.raises(DownloadError):
        download(server.url("catalog.csv.gz"), dest, retries=0)
    newer = os.urandom(200_000)
    server.files["catalog.csv.gz"] = newer  # the file changed on the server before the rerun

    entry = download(server.url("catalog.csv.gz"), dest)
    assert "If-Range" in server.requests[-1].headers
    assert dest.read_bytes() == newer and entry["size"] == len(newer)


def test_server_ignoring_range_still_gives_correct_file(server, tmp_path):
    server.ignore_range = True
    server.cut_after("catalog.csv.gz", 100_000)
    dest = tmp_path / "catalog.csv.gz"

    download(server.url("catalog.csv.gz"), dest, sha256=SHA)

    assert server.requests[1].headers["Range"] == "bytes=100000-"
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_downloaded_once_and_names_file_key_and_both_sums(server, tmp_path):
    dest = tmp_path / "catalog.csv.gz"
    url = server.url("catalog.csv.gz")
    with pytest.raises(ChecksumError) as failure:
        download(url, dest, sha256="0" * 64, key="data.catalog")
    message = str(failure.value)
    assert url in message and str(dest) in message and "data.catalog_sha256" in message
    assert f"expects {'0' * 64}" in message and f"has SHA-256 {SHA}" in message
    assert server.count("catalog.csv.gz") == 1
    assert leftovers(tmp_path) == []


def test_wrong_size_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="expected 12345"):
        download(server.url("catalog.csv.gz"), tmp_path / "c.gz", expected_size=12345)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("status", "meaning"), [
    (404, "no file at this URL"), (403, "refuses access"), (410, "removed for good"),
    (400, "refused the request")])
def test_permanent_http_error_is_requested_once_and_names_url_key_and_fix(server, tmp_path,
                                                                          status, meaning):
    server.answer_status("catalog.csv.gz", status)
    url = server.url("catalog.csv.gz")
    with pytest.raises(DownloadError) as failure:
        download(url, tmp_path / "catalog.csv.gz", key="data.catalog", retries=3)
    message = str(failure.value)
    assert f"data.catalog ({url}): HTTP {status}" in message and meaning in message
    assert "Retrying will not help: correct data.catalog in your config" in message
    assert server.count("catalog.csv.gz") == 1
    assert not failure.value.resumable
    assert leftovers(tmp_path) == []


def test_missing_file_without_key_names_url_and_status(server, tmp_path):
    url = server.url("nothing-here.csv")
    with pytest.raises(DownloadError, match="HTTP 404 Not Found.*check the URL") as failure:
        download(url, tmp_path / "nothing-here.csv")
    assert url in str(failure.value)
    assert leftovers(tmp_path) == []


def test_server_error_then_success_is_retried(server, tmp_path):
    server.answer_status("catalog.csv.gz", 500)
    dest = tmp_path / "catalog.csv.gz"
    download(server.url("catalog.csv.gz"), dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD
    assert server.count("catalog.csv.gz") == 2


def test_too_many_requests_waits_as_long_as_retry_after_says(server, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(acquire_http.time, "sleep", waits.append)
    server.answer_status("catalog.csv.gz", 429, headers={"Retry-After": "7"})
    download(server.url("catalog.csv.gz"), tmp_path / "catalog.csv.gz")
    assert waits == [7.0]
    assert server.count("catalog.csv.gz") == 2


def test_retry_after_longer_than_worth_waiting_ends_at_once(server, tmp_path, monkeypatch):
    monkeypatch.setattr(acquire_http.time, "sleep", pytest.fail)
    server.answer_status("catalog.csv.gz", 503, headers={"Retry-After": "3600"})
    with pytest.raises(DownloadError, match="asks to wait 3600 s.*rerun later"):
        download(server.url("catalog.csv.gz"), tmp_path / "c.gz", key="data.catalog")
    assert server.count("catalog.csv.gz") == 1


def test_unreachable_host_is_named(tmp_path):
    with FileServer() as gone:
        url = gone.url("catalog.csv")  # a port that nobody listens on once the server stops
    with pytest.raises(DownloadError, match=r"catalog.csv\): download failed after 1 retries") \
            as failure:
        download(url, tmp_path / "catalog.csv", retries=1, key="data.catalog")
    message = str(failure.value)
    assert f"data.catalog ({url})" in message and "cannot connect" in message
    assert "Connection refused" in message and "HTTPConnectionPool" not in message
    assert "check the network, or download the file elsewhere and give its local path in " \
        "data.catalog" in message
    assert leftovers(tmp_path) == []


def test_transient_server_errors_are_retried(server, tmp_path):
    server.answer_status("catalog.csv.gz", 503, times=2)
    dest = tmp_path / "catalog.csv.gz"
    download(server.url("catalog.csv.gz"), dest, retries=2)
    assert dest.read_bytes() == PAYLOAD


def test_persistent_server_errors_give_up_naming_status(server, tmp_path):
    server.answer_status("catalog.csv.gz", 503, times=5)
    with pytest.raises(DownloadError, match="503") as failure:
        download(server.url("catalog.csv.gz"), tmp_path / "c.gz", retries=1)
    assert server.url("catalog.csv.gz") in str(failure.value)
    assert len(server.requests) == 2
    assert leftovers(tmp_path) == []


def test_download_rule_fails_permanent_errors_once_and_retries_a_server_error(tmp_path):
    """The workflow's download rules (the real snakemake, with retries as a profile may set):
    a 404 and a checksum mismatch are each requested once and end naming their config key (the
    weights' too); a 500 followed by the file succeeds."""
    import subprocess

    import yaml

    files = {"zoo2MainSpecz.csv.gz": PAYLOAD, "gz2_filename_mapping.csv": b"objid,asset_id\n",
             "physical.csv": b"specObjID,LGM_TOT_P50,sfr_tot_p50\n"}
    with FileServer(files) as web:
        web.answer_status("zoo2MainSpecz.csv.gz", 404)
        web.answer_status("physical.csv", 500)
        config = tmp_path / "remote.yaml"
        config.write_text(yaml.safe_dump({"data": {
            "catalog": web.url("zoo2MainSpecz.csv.gz"),
            "mapping": web.url("gz2_filename_mapping.csv"), "mapping_sha256": "ab" * 32,
            "physical": web.url("physical.csv"), "physical_sha256": None},
            "models": {"b0": {"weights": web.url("b0.weights.h5")}}}))  # not served: 404
        result = subprocess.run(
            [str(Path(sys.executable).with_name("snakemake")), "--keep-going", "--retries", "2",
             *(f"results/data/download/{name}" for name in files),
             "results/weights/download/b0.weights.h5", "-s",
             str(ROOT / "Snakefile"), "--cores", "1",
             "--configfile", str(ROOT / "config/config.yaml"), str(config)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        counts = {name: web.count(name) for name in [*files, "b0.weights.h5"]}
    assert result.returncode != 0
    assert counts == {"zoo2MainSpecz.csv.gz": 1, "gz2_filename_mapping.csv": 1, "physical.csv": 2,
                      "b0.weights.h5": 1}
    weights_log = (tmp_path / "results/logs/download_weights/b0.weights.h5.log").read_text()
    assert "models.b0.weights (http" in weights_log and "HTTP 404" in weights_log
    logs = tmp_path / "results/logs/download"
    assert "data.catalog (http" in (logs / "zoo2MainSpecz.csv.gz.log").read_text()
    assert "HTTP 404" in (logs / "zoo2MainSpecz.csv.gz.log").read_text()
    assert f"data.mapping_sha256 expects {'ab' * 32}" in \
        (logs / "gz2_filename_mapping.csv.log").read_text()
    download_dir = tmp_path / "results/data/download"
    assert (download_dir / "physical.csv").read_bytes() == files["physical.csv"]
    assert not (download_dir / "zoo2MainSpecz.csv.gz").exists()
    assert not (download_dir / "gz2_filename_mapping.csv").exists()


def test_full_disk_is_named_with_the_download_and_a_rerun_resumes(tmp_path):
    from disk_support import full_folder

    from spiralarms.atomic import OutputError

    data = os.urandom(150_000)
    with FileServer({"gz2_filename_mapping.csv": data}) as web, full_folder(tmp_path) as full:
        dest = full / "gz2_filename_mapping.csv"
        with pytest.raises(OutputError, match="no space left on device") as failure:
            download(web.url("gz2_filename_mapping.csv"), dest, key="data.mapping")
        assert str(dest) in str(failure.value)
        assert not dest.exists() and not manifest_path_for(dest).exists()
        (full / ".ballast").unlink()  # the user frees space and reruns
        download(web.url("gz2_filename_mapping.csv"), dest)
        assert dest.read_bytes() == data
        assert sorted(p.name for p in full.iterdir()) == [
            "gz2_filename_mapping.csv", "gz2_filename_mapping.csv.manifest.json"]


def test_read_only_download_folder_is_named_before_any_request(server, tmp_path):
    from disk_support import read_only_folder

    from spiralarms.atomic import OutputError

    folder = read_only_folder(tmp_path)
    with pytest.raises(OutputError, match="not writable") as failure:
        download(server.url("catalog.csv.gz"), folder / "catalog.csv.gz")
    assert str(folder) in str(failure.value)
    assert server.requests == []


def test_finished_download_is_skipped(server, tmp_path):
    dest = tmp_path / "catalog.csv.gz"
    first = download(server.url("catalog.csv.gz"), dest, sha256=SHA)
    again = download(server.url("catalog.csv.gz"), dest, sha256=SHA)
    assert again == first
    assert len(server.requests) == 1


def test_damaged_file_is_downloaded_again(server, tmp_path):
    dest = tmp_path / "catalog.csv.gz"
    download(server.url("catalog.csv.gz"), dest)
    dest.write_bytes(b"truncated")
    download(server.url("catalog.csv.gz"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.requests) == 2


# --- archives ---------------------------------------------------------------------------------

TREE = {"images_gz2/images/101.jpg": b"a" * 1000, "images_gz2/images/102.jpg": b"b" * 2000,
        "README.txt": b"hello"}


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def make_7z(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A 7z archive. py7zr refuses to write unsafe names and dangling links, so those checks are
    lifted while writing. With links, members go in from files on disk (py7zr matches links
    against them; it also strips a leading '/' then), else from bytes, names kept as given."""
    source = path.parent / f".{path.name}.members"
    source.mkdir()
    with mock.patch("py7zr.py7zr.check_archive_path", return_value=True), \
            mock.patch("py7zr.py7zr.readlink", os.readlink), \
            py7zr.SevenZipFile(path, "w") as archive:
        for i, (name, data) in enumerate(members.items()):
            if not links:
                archive.writestr(data, name)
                continue
            (source / str(i)).write_bytes(data)
            archive.write(source / str(i), name)
        for i, (name, target) in enumerate((links or {}).items()):
            (source / f"link{i}").symlink_to(target)
            archive.write(source / f"link{i}", name)
    shutil.rmtree(source)
    return path


@pytest.mark.parametrize("maker", [make_zip, make_tar, make_7z])
def test_archive_extracts_whole_tree(tmp_path, maker):
    archive = maker(tmp_path / "data.archive", TREE)
    dest = tmp_path / "out" / "data"

    files = safe_extract(archive, dest)

    assert sorted(files) == sorted(dest / name for name in TREE)
    for name, data in TREE.items():
        assert (dest / name).read_bytes() == data
    assert leftovers(dest.parent) == ["data"]  # no staging folder left behind


@pytest.mark.parametrize("maker", [make_zip, make_tar, make_7z])
@pytest.mark.parametrize("bad_name", ["../evil.txt", "images/../../evil.txt", "/ABS/evil.txt"])
def test_archive_member_outside_dest_is_refused(tmp_path, maker, bad_name):
    if bad_name.startswith("/ABS"):
        bad_name = str(tmp_path / "evil.txt")  # absolute path pointing at a real place
    archive = maker(tmp_path / "bad.archive", {"ok.txt": b"fine", bad_name: b"pwned"})
    dest = tmp_path / "work" / "out"

    with pytest.raises(UnsafeArchiveError, match="refusing") as failure:
        safe_extract(archive, dest)

    assert repr(bad_name) in str(failure.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "work" / "evil.txt").exists()
    assert not dest.exists()


@pytest.mark.parametrize("target", ["../../outside", "/etc", "sub/../../x"])
def test_tar_link_that_can_escape_is_refused(tmp_path, target):
    archive = make_tar(tmp_path / "links.tar.gz", {"sub/a.txt": b"a"}, links={"sub/link": target})
    with pytest.raises(UnsafeArchiveError, match="'sub/link'"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tar_link_inside_dest_is_kept(tmp_path):
    archive = make_tar(tmp_path / "links.tar.gz", {"sub/a.txt": b"a"}, links={"alias": "sub/a.txt"})
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "alias").read_bytes() == b"a"


def test_archive_over_size_limit_is_refused(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"a.bin": bytes(60_000), "b.bin": bytes(60_000)})
    with pytest.raises(UnsafeArchiveError, match="limit of 100,000 bytes"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=100_000)
    assert not (tmp_path / "out").exists()
    assert safe_extract(archive, tmp_path / "out", max_total_bytes=120_000)


def test_failed_extraction_leaves_no_half_folder(tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"a.txt": b"A" * 5000, "b.txt": b"B" * 5000})
    raw = bytearray(archive.read_bytes())
    raw[raw.rindex(b"B" * 100)] = ord("C")  # corrupt the second member: its CRC check fails
    archive.write_bytes(bytes(raw))

    with pytest.raises(zipfile.BadZipFile):
        safe_extract(archive, tmp_path / "out")
    assert leftovers(tmp_path) == ["data.zip"]


def test_extraction_refuses_to_overwrite(tmp_path):
    archive = make_zip(tmp_path / "data.zip", TREE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(AcquireError, match="already exists"):
        safe_extract(archive, tmp_path / "out")
    assert leftovers(tmp_path / "out") == ["keep.txt"]


def test_not_an_archive_is_named(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(AcquireError, match="junk.zip is neither a zip nor a tar"):
        safe_extract(junk, tmp_path / "out")


# --- 7z ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "sub/../../x"])
def test_7z_link_that_can_escape_is_refused(tmp_path, target):
    archive = make_7z(tmp_path / "links.7z", {"sub/a.txt": b"a"}, links={"sub/link": target})
    with pytest.raises(UnsafeArchiveError, match="'sub/link'.*may point outside"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_7z_link_inside_dest_is_kept(tmp_path):
    archive = make_7z(tmp_path / "links.7z", {"sub/a.txt": b"a"}, links={"alias": "sub/a.txt"})
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "alias").is_symlink()
    assert (tmp_path / "out" / "alias").read_bytes() == b"a"


def test_7z_over_size_limit_is_refused(tmp_path):
    archive = make_7z(tmp_path / "big.7z", {"a.bin": bytes(60_000), "b.bin": bytes(60_000)})
    assert archive.stat().st_size < 1000  # zeros compress: only the declared sizes tell
    with pytest.raises(UnsafeArchiveError, match="limit of 100,000 bytes"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=100_000)
    assert leftovers(tmp_path) == ["big.7z"]
    assert safe_extract(archive, tmp_path / "out", max_total_bytes=120_000)


def test_7z_is_recognised_by_content_not_name(tmp_path):
    archive = make_7z(tmp_path / "download.bin", {"t.csv": b"x"})
    assert safe_extract(archive, tmp_path / "out") == [tmp_path / "out" / "t.csv"]


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_damaged_7z_is_named_and_leaves_nothing(tmp_path, damage):
    archive = tmp_path / "cut.7z"
    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_COPY}]) as sz:
        sz.writestr(b"A" * 5000, "t.csv")
    raw = bytearray(archive.read_bytes())
    if damage == "truncated":  # a download cut short
        raw = raw[:-200]
    else:  # the CRC check catches it
        raw[raw.index(b"A" * 100) + 50] = ord("B")
    archive.write_bytes(bytes(raw))
    with pytest.raises(AcquireError, match="cut.7z"):
        safe_extract(archive, tmp_path / "out")
    assert leftovers(tmp_path) == ["cut.7z"]


# --- the physical-properties table (stellar mass_SFR.7z) --------------------------------------

PHYSICAL_HEADER = b"specObjID,LGM_TOT_P50,sfr_tot_p50\n"


def test_physical_csv_comes_out_of_the_7z(tmp_path):
    table = PHYSICAL_HEADER + b"1802675000000000001,10.5,0.25\n"
    archive = write_7z(tmp_path / "stellar mass_SFR.7z", {PHYSICAL_MEMBER: table})
    dest = tmp_path / "extracted" / "stellar_mass_SFR.csv"

    assert physical_csv(archive, dest) == dest

    assert dest.read_bytes() == table
    assert leftovers(dest.parent) == ["stellar_mass_SFR.csv"]  # nothing else, no staging
    assert dest.stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize("name", ["stellar mass_SFR.csv", "stellar_mass_sfr.csv.gz"])
def test_plain_physical_table_is_used_as_it_is(tmp_path, name):
    table = tmp_path / name
    table.write_bytes(PHYSICAL_HEADER)
    assert physical_csv(table, tmp_path / "unused.csv") == table
    assert not (tmp_path / "unused.csv").exists()


def test_physical_archive_with_several_tables_picks_the_named_one(tmp_path):
    archive = write_7z(tmp_path / "p.7z", {"notes/other.csv": b"a\n",
                                           f"data/{PHYSICAL_MEMBER}": PHYSICAL_HEADER})
    assert physical_csv(archive, tmp_path / "p.csv").read_bytes() == PHYSICAL_HEADER
    ambiguous = write_7z(tmp_path / "q.7z", {"a.csv": b"a\n", "b.csv": b"b\n"})
    with pytest.raises(AcquireError, match="expected one CSV table.*found 0"):
        physical_csv(ambiguous, tmp_path / "q.csv")
    with pytest.raises(AcquireError, match="found 0"):
        physical_csv(write_7z(tmp_path / "r.7z", {"readme.txt": b"r"}), tmp_path / "r.csv")


@pytest.mark.parametrize(("table", "problem"), [
    (b"objid,mass,sfr\n1802675000000000001,10.5,0.25\n", "missing column(s)"),
    (PHYSICAL_HEADER + b"1.802675e+18,10.5,0.25\n", "specObjID"),
])
def test_physical_archive_with_a_wrong_table_names_the_archive_and_member(tmp_path, table,
                                                                          problem):
    archive = write_7z(tmp_path / "stellar mass_SFR.7z", {f"data/{PHYSICAL_MEMBER}": table})
    dest = tmp_path / "extracted" / "stellar_mass_SFR.csv"
    with pytest.raises(CatalogError) as failure:
        physical_csv(archive, dest)
    message = str(failure.value)
    assert message.startswith(f"'data/{PHYSICAL_MEMBER}' in {archive} (config key data.physical)")
    assert problem in message and str(dest.parent) not in message  # nor the staging folder
    assert leftovers(dest.parent) == []  # no table left for the labels stage to read


def test_full_disk_while_extracting_the_physical_table_names_the_table(tmp_path):
    from disk_support import full_folder

    from spiralarms.atomic import OutputError

    table = PHYSICAL_HEADER + b"".join(b"18026750000%08d,10.5,0.25\n" % i for i in range(8000))
    archive = write_7z(tmp_path / "stellar mass_SFR.7z", {PHYSICAL_MEMBER: table})
    with full_folder(tmp_path) as full:
        dest = full / "extracted" / "stellar_mass_SFR.csv"
        dest.parent.mkdir()
        (full / ".ballast").unlink()
        (full / ".ballast").write_bytes(b"\0" * 100_000)  # leaves less room than the table needs
        with pytest.raises(OutputError, match="no space left on device") as failure:
            physical_csv(archive, dest)
        assert str(failure.value).startswith(f"cannot write {dest}:")
        assert leftovers(dest.parent) == []


def test_malicious_physical_archive_is_refused(tmp_path):
    archive = make_7z(tmp_path / "stellar mass_SFR.7z",
                      {PHYSICAL_MEMBER: PHYSICAL_HEADER, "../../evil.csv": b"pwned"})
    with pytest.raises(UnsafeArchiveError, match="'../../evil.csv'"):
        physical_csv(archive, tmp_path / "out" / "stellar_mass_SFR.csv")
    assert not (tmp_path / "out" / "stellar_mass_SFR.csv").exists()
    assert not (tmp_path.parent / "evil.csv").exists()


def test_download_names_are_decoded_and_safe():
    assert download_name("https://github.com/mmmmmmwei/galaxy-spiralarm-classifier/raw/main/"
                         "stellar%20mass_SFR.7z") == "stellar_mass_SFR.7z"
    assert download_name("https://zooniverse-data.s3.amazonaws.com/galaxy-zoo-2/"
                         "zoo2MainSpecz.csv.gz?x=1") == "zoo2MainSpecz.csv.gz"
    assert download_name("https://host/a%2F..%2Fb%3Bc.csv") == "a_.._b_c.csv"
    with pytest.raises(AcquireError, match="names no file"):
        download_name("https://host/files/")


def test_physical_join_is_exact_on_int64_ids_near_1_8e18(tmp_path, caplog):
    # ids 1 apart: all but distinct ones are one float64 (spacing 256 at 1.8e18)
    rows = galaxies([0, 1, 2, 3, 4, 5] * 3)
    spec = rows["specobjid"].to_numpy()
    assert spec.min() > 1.8e18 and float(spec[0]) == float(spec[1])
    covered = rows.iloc[[1, 2, 4, 7, 11, 16]]
    decoy = covered["specobjid"].to_numpy() + 10_000_000  # same float64 as other ids nearby
    table = tmp_path / "stellar mass_SFR.csv"
    pd.DataFrame({
        "specObjID": np.concatenate([covered["specobjid"].to_numpy(), decoy]),
        "LGM_TOT_P50": np.concatenate([covered["specobjid"].to_numpy() % 1000 / 100, [-1] * 6]),
        "sfr_tot_p50": np.concatenate([covered["asset_id"].to_numpy() / 1e3, [-1] * 6]),
    }).iloc[::-1].to_csv(table, index=False)
    assert (read_physical(table)["specObjID"].dtype == np.int64)
    catalog = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping = write_mapping(rows, tmp_path / "gz2_filename_mapping.csv", shuffle_seed=1)

    with caplog.at_level(logging.INFO, logger="spiralarms.gz2.selection"):
        labels, report = run_labels(catalog, mapping, None, {}, tmp_path / "l.parquet",
                                    tmp_path / "r.json", physical_path=table)

    assert report["physical"] == {"physical_rows": 12, "matched": 6, "unmatched": len(rows) - 6}
    assert json.loads((tmp_path / "r.json").read_text())["physical"] == report["physical"]
    has_mass = labels.dropna(subset=["log_mass"])
    assert sorted(has_mass["specobjid"]) == sorted(covered["specobjid"])
    assert np.allclose(has_mass["log_mass"], has_mass["specobjid"].to_numpy() % 1000 / 100)
    assert np.allclose(has_mass["sfr"], has_mass["asset_id"] / 1e3)
    assert labels["sfr"].isna().sum() == len(rows) - 6  # unmatched: NaN, never a neighbour's
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and f"{len(rows) - 6} labelled galaxies have no row" in warning[0]
    examples = {int(v) for v in warning[0].split("specobjid ")[1].split(", ")}
    assert examples and examples <= set(spec) - set(covered["specobjid"])


def test_physical_ids_written_as_floats_are_refused(tmp_path):
    table = tmp_path / "stellar mass_SFR.csv"
    table.write_bytes(PHYSICAL_HEADER + b"1.802675e+18,10.5,0.25\n")
    with pytest.raises(CatalogError, match="specObjID"):
        read_physical(table)


def test_physical_7z_served_like_github_is_downloaded_extracted_and_joined(tmp_path):
    sources = build_gz2_sources(tmp_path / "gz2")
    download_dir = tmp_path / "download"
    with FileServer(sources.http_files()) as web:
        data = sources.data_config(web)
        paths = {}
        for key in ("catalog", "mapping", "physical"):
            paths[key] = download_dir / download_name(data[key])
            download(data[key], paths[key], sha256=data[f"{key}_sha256"])
        assert web.requests[-1].path == PHYSICAL_URL_PATH  # "%20" as sent on the wire
    assert paths["physical"].name == "stellar_mass_SFR.7z"
    table = physical_csv(paths["physical"], download_dir / "extracted" / "stellar_mass_SFR.csv")
    assert table.read_bytes() == sources.physical_csv.read_bytes()

    labels, report = run_labels(paths["catalog"], paths["mapping"], None, {},
                                tmp_path / "l.parquet", tmp_path / "r.json", physical_path=table)

    expected = pd.read_csv(sources.physical_csv, dtype={"specObjID": "int64"})
    joined = labels.merge(expected, left_on="specobjid", right_on="specObjID", how="left",
                          validate="one_to_one")
    assert report["physical"]["matched"] == joined["specObjID"].notna().sum() > 0
    assert report["physical"]["unmatched"] == len(labels) - report["physical"]["matched"]
    assert np.array_equal(joined["log_mass"].to_numpy(), joined["LGM_TOT_P50"].to_numpy(),
                          equal_nan=True)


# --- image count ------------------------------------------------------------------------------

def test_image_count_reports_missing_images(tmp_path, caplog):
    images = tmp_path / "images"
    images.mkdir()
    for asset_id in (1, 2, 3, 99):
        (images / f"{asset_id}.jpg").write_bytes(b"jpg")
    mapping = tmp_path / "gz2_filename_mapping.csv"
    mapping.write_text("objid,sample,asset_id\n11,original,1\n12,original,2\n13,extra,3\n"
                       "14,original,4\n15,original,5\n")

    with caplog.at_level(logging.WARNING):
        counts = check_image_count(images, mapping)

    assert counts["rows"] == 5 and counts["present"] == 3 and counts["missing"] == 2
    assert counts["missing_examples"] == ["4", "5"]
    assert "2 of 5 images" in caplog.text


def test_image_count_names_missing_column(tmp_path):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("objid,filename\n1,a.jpg\n")
    with pytest.raises(AcquireError, match=r"mapping.csv has no 'asset_id' column"):
        check_image_count(tmp_path, mapping)


# --- Kaggle -----------------------------------------------------------------------------------

@pytest.fixture
def no_kaggle_login(monkeypatch, tmp_path):
    """An environment with no Kaggle credentials anywhere (and HTTPS kept on this machine)."""
    for name in list(os.environ):
        if name.startswith("KAGGLE_") or name.lower() in ("no_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    (tmp_path / "home").mkdir()


@pytest.fixture
def fake_kaggle_login(no_kaggle_login, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    with FileServer() as proxy:  # refuses every tunnel: the kaggle client stays offline
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("").rstrip("/"))
        yield proxy


def test_kaggle_spec_parsing():
    assert parse_kaggle_spec("kaggle:jaimetrickz/galaxy-zoo-2-images") == (
        "jaimetrickz/galaxy-zoo-2-images")
    with pytest.raises(AcquireError, match="kaggle:<owner>/<dataset>"):
        parse_kaggle_spec("kaggle:galaxy-zoo-2-images")


def test_missing_kaggle_credentials_give_one_clear_error(no_kaggle_login, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kaggle", None)  # importing kaggle now would fail loudly
    with pytest.raises(KaggleCredentialsError) as failure:
        fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", tmp_path / "images")
    message = str(failure.value)
    for needed in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json",
                   "https://www.kaggle.com/settings/api", "data.images"):
        assert needed in message
    assert not (tmp_path / "images").exists()


def readme_symptoms() -> list[re.Pattern]:
    """The quoted messages in the first column of README's troubleshooting table, as patterns
    ('…' stands for any text)."""
    table = (ROOT / "README.md").read_text().split("## Troubleshooting", 1)[1].split("\n## ")[0]
    quoted = [re.findall(r"`([^`]+)`", row.split("|")[1]) for row in table.splitlines()
              if row.startswith("| ")]
    return [re.compile(".*".join(map(re.escape, text.split("…"))))
            for texts in quoted for text in texts]


def documented(message: str) -> bool:
    return any(symptom.search(message) for symptom in readme_symptoms())


def test_readme_troubleshooting_quotes_the_real_download_messages(no_kaggle_login, server,
                                                                   monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kaggle", None)
    failures = []
    with pytest.raises(KaggleCredentialsError) as failure:
        fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", tmp_path / "images")
    failures.append(failure.value)
    server.answer_status("catalog.csv.gz", 404)
    for sha256 in (None, "ab" * 32):
        with pytest.raises(DownloadError) as failure:
            download(server.url("catalog.csv.gz"), tmp_path / "c.gz", sha256, key="data.catalog")
        failures.append(failure.value)
    server.answer_status("catalog.csv.gz", 503, times=4)
    with pytest.raises(DownloadError) as failure:
        download(server.url("catalog.csv.gz"), tmp_path / "c.gz", key="data.catalog")
    failures.append(failure.value)
    with FileServer() as gone:
        url = gone.url("pytorch_model.bin")  # nobody listens there once the server stops
    with pytest.raises(DownloadError) as failure:
        download(url, tmp_path / "p.bin", key="models.b0.weights", retries=0)
    failures.append(failure.value)
    assert [str(error).splitlines()[0] for error in failures if not documented(str(error))] == []


def test_half_set_kaggle_credentials_are_pointed_out(no_kaggle_login, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    with pytest.raises(KaggleCredentialsError, match="Only KAGGLE_USERNAME is set"):
        fetch_kaggle("kaggle:owner/data", tmp_path)


def test_kaggle_json_in_config_dir_is_found(no_kaggle_login, monkeypatch, tmp_path):
    config_dir = tmp_path / "secrets"
    config_dir.mkdir()
    (config_dir / "kaggle.json").write_text(json.dumps({"username": "u", "key": FAKE_KEY}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    assert find_kaggle_credentials() == str(config_dir / "kaggle.json")


def test_kaggle_failure_never_reveals_the_key(fake_kaggle_login, tmp_path, caplog, capsys):
    with caplog.at_level(logging.DEBUG), pytest.raises(KaggleDownloadError) as failure:
        fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", tmp_path / "images")

    assert "jaimetrickz/galaxy-zoo-2-images" in str(failure.value)
    assert any(r.method == "CONNECT" and "kaggle.com" in r.path for r in fake_kaggle_login.requests)
    captured = capsys.readouterr()
    for text in (str(failure.value), caplog.text, captured.out, captured.err):
        assert FAKE_KEY not in text


def test_rejected_kaggle_token_never_revealed(no_kaggle_login, monkeypatch, tmp_path, caplog,
                                              capsys):
    monkeypatch.setenv("KAGGLE_API_TOKEN", FAKE_KEY)
    with FileServer() as proxy, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("").rstrip("/"))
        with pytest.raises(KaggleCredentialsError, match="KAGGLE_API_TOKEN") as failure:
            fetch_kaggle("kaggle:owner/data", tmp_path / "images")
    captured = capsys.readouterr()
    for text in (str(failure.value), caplog.text, captured.out, captured.err):
        assert FAKE_KEY not in text


def test_key_echoed_by_kaggle_package_is_redacted(fake_kaggle_login, monkeypatch, tmp_path,
                                                  caplog, capsys):
    from kaggle.api.kaggle_api_extended import KaggleApi

    def echoing_failure(self, dataset, path=None, **kwargs):
        print(f"debug: auth=someone:{FAKE_KEY}")
        raise RuntimeError(f"401 for key {FAKE_KEY}")

    monkeypatch.setattr(KaggleApi, "dataset_download_files", echoing_failure)
    with caplog.at_level(logging.INFO), pytest.raises(KaggleDownloadError) as failure:
        fetch_kaggle("kaggle:owner/data", tmp_path / "images")

    assert "401 for key ***" in str(failure.value) and failure.value.__cause__ is None
    assert "auth=someone:***" in caplog.text
    captured = capsys.readouterr()
    for text in (str(failure.value), caplog.text, captured.out, captured.err):
        assert FAKE_KEY not in text


def test_kaggle_zip_is_extracted_and_image_folder_returned(fake_kaggle_login, monkeypatch,
                                                           tmp_path):
    from kaggle.api.kaggle_api_extended import KaggleApi

    calls = []

    def deliver_zip(self, dataset, path=None, unzip=False, quiet=True, **kwargs):
        calls.append((dataset, unzip))
        make_zip(Path(path) / f"{dataset.split('/')[1]}.zip", TREE)

    monkeypatch.setattr(KaggleApi, "dataset_download_files", deliver_zip)
    cache = tmp_path / "images"

    folder = fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", cache, expected_images=2)
    again = fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", cache, expected_images=2)

    assert folder == again == cache / "galaxy-zoo-2-images" / "images_gz2" / "images"
    assert sorted(p.name for p in folder.iterdir()) == ["101.jpg", "102.jpg"]
    assert calls == [("jaimetrickz/galaxy-zoo-2-images", False)]
    assert leftovers(cache) == ["galaxy-zoo-2-images"]  # zip removed after extraction
    with pytest.raises(AcquireError, match="found 2 images"):
        fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", cache, expected_images=3)


def test_kaggle_images_land_directly_in_output_folder(no_kaggle_login, tmp_path):
    work = tmp_path / "downloads" / ".images.kaggle"
    work.mkdir(parents=True)
    make_zip(work / "galaxy-zoo-2-images.zip", TREE)  # as the Kaggle API leaves it
    output = tmp_path / "downloads" / "images"

    assert fetch_kaggle_images("jaimetrickz/galaxy-zoo-2-images", output) == output

    assert sorted(p.name for p in output.iterdir()) == ["101.jpg", "102.jpg"]
    assert (output / "101.jpg").read_bytes() == TREE["images_gz2/images/101.jpg"]
    assert not work.exists()  # zip and extraction gone, and the emptied work folder too


def test_finished_kaggle_zip_is_reused_offline(no_kaggle_login, tmp_path):
    cache = tmp_path / "images"
    cache.mkdir()
    make_zip(cache / "galaxy-zoo-2-images.zip", TREE)  # downloaded, but extraction was cut short

    folder = fetch_kaggle("kaggle:jaimetrickz/galaxy-zoo-2-images", cache)

    assert sorted(p.name for p in folder.iterdir()) == ["101.jpg", "102.jpg"]


# --- Kaggle, end to end against the test server (tests/kaggle_server.py) ----------------------

GZ2_JPEGS = {f"{asset_id}.jpg": galaxy_jpeg(asset_id, 32) for asset_id in (3, 14, 159, 2653, 58979)}


def gz2_mapping(tmp_path: Path, asset_ids) -> Path:
    mapping = tmp_path / "gz2_filename_mapping.csv"
    mapping.write_text("objid,sample,asset_id\n" + "".join(
        f"{587722981741363294 + i},original,{a}\n" for i, a in enumerate(asset_ids)))
    return mapping


def test_fetch_images_downloads_the_kaggle_dataset_like_the_real_api(kaggle_server, tmp_path):
    storage_path = kaggle_server.add_dataset(KAGGLE_DATASET, images_zip(GZ2_JPEGS))
    output = tmp_path / "download" / "images"

    # the fetch_images rule (workflow/scripts/fetch_images.py)
    counts = run_fetch_images(KAGGLE_DATASET, output,
                              gz2_mapping(tmp_path, [3, 14, 159, 2653, 58979, 7]))

    assert counts["images_dir"] == str(output)
    assert {p.name: p.read_bytes() for p in output.iterdir()} == GZ2_JPEGS
    assert (counts["rows"], counts["present"], counts["missing_examples"]) == (6, 5, ["7"])
    assert leftovers(output.parent) == ["images"]  # no zip, no hidden work folder
    assert kaggle_server.calls() == [
        ("CONNECT", API_HOST, f"{API_HOST}:443"),
        ("POST", API_HOST, f"/v1/{DOWNLOAD_CALL}"),
        ("CONNECT", STORAGE_HOST, f"{STORAGE_HOST}:443"),
        ("GET", STORAGE_HOST, f"/{storage_path}"),
    ]
    api_call, download_call = kaggle_server.requests[1], kaggle_server.requests[3]
    assert api_call.body == {"ownerSlug": "jaimetrickz", "datasetSlug": "galaxy-zoo-2-images"}
    assert kaggle_server.authorized(api_call.headers["Authorization"])  # Basic user:key
    assert "Authorization" not in download_call.headers  # dropped on the redirect to storage
    assert [r.status for r in kaggle_server.requests] == [200, 302, 200, 200]


def test_kaggle_json_login_reaches_the_api(kaggle_server, monkeypatch, tmp_path):
    kaggle_server.add_dataset(KAGGLE_DATASET, images_zip(GZ2_JPEGS))
    config_dir = tmp_path / "secrets"
    config_dir.mkdir()
    (config_dir / "kaggle.json").write_text(json.dumps(
        {"username": kaggle_server.username, "key": kaggle_server.key}))
    (config_dir / "kaggle.json").chmod(0o600)
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))

    images = fetch_kaggle_images(KAGGLE_DATASET, tmp_path / "images")

    assert len(list(images.iterdir())) == len(GZ2_JPEGS)
    assert kaggle_server.authorized(kaggle_server.requests[1].headers["Authorization"])


def test_kaggle_api_token_login_reaches_the_api(kaggle_tls, monkeypatch, tmp_path):
    token = "KGAT_0123456789abcdef0123456789abcdef"
    with KaggleServer(kaggle_tls, token=token) as server:
        server.install(monkeypatch, tmp_path / "home")
        monkeypatch.delenv("KAGGLE_USERNAME")
        monkeypatch.delenv("KAGGLE_KEY")
        monkeypatch.setenv("KAGGLE_API_TOKEN", token)
        server.add_dataset(KAGGLE_DATASET, images_zip(GZ2_JPEGS))

        images = fetch_kaggle_images(KAGGLE_DATASET, tmp_path / "images")

    assert len(list(images.iterdir())) == len(GZ2_JPEGS)
    posts = [r for r in server.requests if r.method == "POST"]
    assert posts[-1].path.endswith(DOWNLOAD_CALL)
    assert posts[-1].headers["Authorization"] == f"Bearer {token}"
    assert any(r.path.endswith("IntrospectToken") for r in posts)


def test_wrong_kaggle_key_is_a_clear_credentials_error(kaggle_server, monkeypatch, tmp_path,
                                                       caplog, capsys):
    kaggle_server.add_dataset(KAGGLE_DATASET, images_zip(GZ2_JPEGS))
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    output = tmp_path / "download" / "images"

    with caplog.at_level(logging.DEBUG), pytest.raises(KaggleCredentialsError) as failure:
        fetch_kaggle_images(KAGGLE_DATASET, output)

    message = str(failure.value)
    assert "HTTP 401" in message and "KAGGLE_USERNAME and KAGGLE_KEY" in message
    assert "https://www.kaggle.com/settings/api" in message
    assert [r.status for r in kaggle_server.requests if r.method == "POST"] == [401]
    assert not any(r.method == "GET" for r in kaggle_server.requests)
    assert not output.exists() and leftovers(output.parent) == []
    captured = capsys.readouterr()
    for text in (message, caplog.text, captured.out, captured.err):
        assert FAKE_KEY not in text


@pytest.mark.parametrize(("status", "explained"), [
    (404, "No such dataset: check the name"),
    (403, "accept the dataset's terms"),
])
def test_unavailable_kaggle_dataset_names_it(kaggle_server, tmp_path, status, explained):
    if status == 403:
        kaggle_server.add_dataset(KAGGLE_DATASET, images_zip(GZ2_JPEGS))
        kaggle_server.refuse(KAGGLE_DATASET, 403, "You must accept this dataset's rules")
    output = tmp_path / "download" / "images"

    with pytest.raises(KaggleDownloadError) as failure:
        fetch_kaggle_images(KAGGLE_DATASET, output)

    message = str(failure.value)
    assert f"HTTP {status}" in message and explained in message
    assert f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}" in message
    assert not output.exists() and leftovers(output.parent) == []


def test_cut_kaggle_download_is_resumed_with_range(kaggle_server, monkeypatch, tmp_path):
    # `import kaggle.api.kaggle_api_extended as m` fails: kaggle's __init__ rebinds `kaggle.api`
    kaggle_api = importlib.import_module("kaggle.api.kaggle_api_extended")
    monkeypatch.setattr(kaggle_api, "random", lambda: -1.99)  # kaggle's 2 s backoff -> 10 ms
    # kaggle writes 1 MiB chunks: cut after the first one, so that there is something to resume
    jpegs = {f"{asset_id}.jpg": os.urandom(700_000) for asset_id in range(1, 5)}
    archive = images_zip(jpegs)
    storage_path = kaggle_server.add_dataset(KAGGLE_DATASET, archive)
    kaggle_server.cut_after(storage_path, 1_500_000)

    images = fetch_kaggle_images(KAGGLE_DATASET, tmp_path / "images")

    assert {p.name: p.read_bytes() for p in images.iterdir()} == jpegs
    gets = [r for r in kaggle_server.requests if r.method == "GET"]
    assert [r.status for r in gets] == [200, 206]
    assert gets[1].headers["Range"] == f"bytes={1 << 20}-"
    assert gets[1].headers["If-Range"]  # the ETag of the first answer


def test_kaggle_api_ignores_kaggle_api_environment_test(kaggle_server):
    """Why tests/kaggle_server.py is an HTTPS proxy: KaggleApi always builds a PROD client. If this
    fails, a newer kaggle honours KAGGLE_API_ENVIRONMENT=TEST and the proxy could go."""
    from kaggle.api.kaggle_api_extended import KaggleApi
    from kagglesdk import KaggleClient
    from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

    api = KaggleApi()
    api.authenticate()
    with api.build_kaggle_client() as client:
        assert client.http_client()._endpoint == "https://api.kaggle.com"
    if kaggle_server.port != 7777:
        pytest.skip("port 7777 is held by another process (a parallel test run?)")
    kaggle_server.add_dataset("owner/data", b"zip bytes")
    request = ApiDownloadDatasetRequest()
    request.owner_slug, request.dataset_slug = "owner", "data"
    with KaggleClient(username=kaggle_server.username, password=kaggle_server.key) as client:
        response = client.datasets.dataset_api_client.download_dataset(request)  # TEST: :7777
    assert response.status_code == 200 and response.content == b"zip bytes"
    assert kaggle_server.calls()[0] == ("POST", "localhost:7777", f"/api/v1/{DOWNLOAD_CALL}")


# --- Google Drive and planned paths -----------------------------------------------------------------

@pytest.mark.parametrize("given", [
    GDRIVE_ID,
    f"gdrive:{GDRIVE_ID}",
    f"https://drive.google.com/file/d/{GDRIVE_ID}/view?usp=sharing",
    f"https://drive.google.com/open?id={GDRIVE_ID}",
    f"https://drive.google.com/uc?export=download&id={GDRIVE_ID}",
])
def test_gdrive_id_parsing(given):
    assert gdrive_file_id(given) == GDRIVE_ID


@pytest.mark.parametrize("given", [
    "https://drive.google.com/uc?id=[]",  # the original repo's placeholder link
    f"https://example.com/file/d/{GDRIVE_ID}/view",
    "model.zip",
])
def test_gdrive_id_parsing_rejects_non_drive_input(given):
    with pytest.raises(GDriveError, match="not a Google Drive file id"):
        gdrive_file_id(given)


def test_remote_sources_name_the_config_key_that_asks_for_each_file():
    data = {"catalog": "https://host/a/zoo2MainSpecz.csv.gz", "catalog_sha256": "ab" * 32,
            "mapping": "local/gz2_filename_mapping.csv", "physical": "https://host/b/p%20q.7z"}
    assert remote_sources(data, "dl") == {
        "zoo2MainSpecz.csv.gz": ("https://host/a/zoo2MainSpecz.csv.gz", "ab" * 32, "data.catalog"),
        "p_q.7z": ("https://host/b/p%20q.7z", None, "data.physical"),
    }
    clash = {**data, "mapping": "https://other/zoo2MainSpecz.csv.gz"}
    with pytest.raises(AcquireError, match=r"data.catalog \(https://host/a/zoo2MainSpecz.csv.gz\) "
                       r"and data.mapping \(https://other/zoo2MainSpecz.csv.gz\) would both be "
                       r"downloaded to dl/zoo2MainSpecz.csv.gz"):
        remote_sources(clash, "dl")


def test_planned_path_names_where_each_kind_of_source_lands():
    assert planned_path("data/catalog.csv.gz", "dl") == "data/catalog.csv.gz"
    assert planned_path("https://x.org/a/zoo2MainSpecz.csv.gz?download=1", "dl") == \
        "dl/zoo2MainSpecz.csv.gz"
    assert planned_path("kaggle:jaimetrickz/galaxy-zoo-2-images", "dl") == "dl/images"


@pytest.mark.parametrize("spec", ["s3://bucket/catalog.csv", f"gdrive:{GDRIVE_ID}"])
def test_planned_path_refuses_a_source_no_rule_fetches(spec):
    with pytest.raises(AcquireError, match="unsupported source"):
        planned_path(spec, "dl")


# --- data.images as the URL of a zip (Zenodo's images_gz2.zip) ----------------------------------

ZENODO_ZIP_PATH = "record/3565489/files/images_gz2.zip"


def test_an_image_zip_url_is_a_download_whose_images_land_in_the_image_folder():
    url = f"https://zenodo.org/{ZENODO_ZIP_PATH}"
    data = {"images": url, "images_sha256": "cd" * 32, "catalog": "local/cat.csv.gz"}
    assert remote_sources(data, "dl") == {"images_gz2.zip": (url, "cd" * 32, "data.images")}
    assert planned_path(url, "dl") == "dl/images_gz2.zip"  # the download rule's file
    assert image_folder(url, "dl") == "dl/images"  # fetch_images' folder, as for Kaggle
    assert image_folder(f"kaggle:{KAGGLE_DATASET}", "dl") == "dl/images"
    assert image_folder("my/images", "dl") == "my/images"
    with pytest.raises(AcquireError, match=r"data.images \(https://host/images\) would be "
                       r"downloaded to dl/images, the image folder's name"):
        remote_sources({"images": "https://host/images"}, "dl")


def test_image_zip_resumes_after_a_dropped_connection_and_unpacks_zenodos_layout(tmp_path):
    archive_bytes = images_zip(GZ2_JPEGS, root="images")  # Zenodo: images/<asset_id>.jpg
    mapping = gz2_mapping(tmp_path, [3, 14, 159, 2653, 58979, 7])  # 7: no image, as in GZ2
    with FileServer({ZENODO_ZIP_PATH: archive_bytes}) as web:
        source = remote_sources({"images": web.url(ZENODO_ZIP_PATH),
                                 "images_sha256": hashlib.sha256(archive_bytes).hexdigest()},
                                str(tmp_path / "dl"))["images_gz2.zip"]
        zipped = tmp_path / "dl" / "images_gz2.zip"
        web.cut_after(ZENODO_ZIP_PATH, len(archive_bytes) // 3)

        entry = download(source.url, zipped, sha256=source.sha256, key=source.key,
                         progress=False)  # what the download rule runs

        gets = [r for r in web.requests if r.method == "GET"]
        assert [g.headers.get("Range") for g in gets] == [None, f"bytes={len(archive_bytes) // 3}-"]
    assert entry["sha256"] == source.sha256
    assert read_manifest(manifest_path_for(zipped))["url"] == source.url

    counts = run_extract_images(zipped, tmp_path / "dl" / "images", mapping)

    folder = tmp_path / "dl" / "images"
    assert sorted(p.name for p in folder.iterdir()) == sorted(GZ2_JPEGS)
    assert all((folder / name).read_bytes() == data for name, data in GZ2_JPEGS.items())
    assert (counts["rows"], counts["present"], counts["missing_examples"]) == (6, 5, ["7"])
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        "images", "images_gz2.zip", "images_gz2.zip.manifest.json"]  # no work folder left
    (folder / "3.jpg").unlink()  # a finished folder is kept as it is, not unpacked again
    assert extract_images(zipped, folder) == folder and not (folder / "3.jpg").exists()


@pytest.mark.parametrize("member", ["../escaped.jpg", "/etc/escaped.jpg"])
def test_an_image_zip_with_a_member_outside_the_folder_is_refused(tmp_path, member):
    zipped = make_zip(tmp_path / "images_gz2.zip", {"images/1.jpg": b"x", member: b"y"})

    with pytest.raises(UnsafeArchiveError, match=f"refusing to extract member '{member}'"):
        extract_images(zipped, tmp_path / "dl" / "images")

    assert not (tmp_path / "dl" / "images").exists() and not (tmp_path / "escaped.jpg").exists()


def test_an_image_zip_with_a_link_is_refused(tmp_path):
    zipped = tmp_path / "images_gz2.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("images/1.jpg", b"x")
        link = zipfile.ZipInfo("images/2.jpg")
        link.external_attr = (0o120777 << 16)  # a symlink, as `zip --symlinks` stores it
        archive.writestr(link, "../../../etc/passwd")

    with pytest.raises(UnsafeArchiveError, match="images/2.jpg.*may point outside"):
        extract_images(zipped, tmp_path / "dl" / "images")
