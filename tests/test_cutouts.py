"""Cut-outs from sky positions against a real server on 127.0.0.1 that imitates SkyServer's and
the Legacy Surveys viewer's URL formats and their failures (tests/cutout_server.py)."""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from cutout_server import CutoutServer
from PIL import Image

from spiralarms.acquire.cutouts import (
    SKIP_MEANINGS,
    CutoutError,
    CutoutOptions,
    cutout_url,
    fetch_cutouts,
    file_name,
    scale_for,
)
from spiralarms.cli import main
from spiralarms.predict import chunks, records

SPIRALARMS = Path(sys.executable).with_name("spiralarms")
# The client's timeout leaves a loaded machine (two test workers training networks) ample time
# for a plain answer (0.5 s once timed one out on CI); the "slow" fault sleeps well beyond it.
FAST = {"size": 32, "timeout": 3.0, "backoff": 0.05, "rate": 1000, "concurrency": 4}
SLOW_S = 3 * FAST["timeout"]


def positions_csv(path, rows, columns=("objid", "ra", "dec", "petroR90_r")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def manifest(folder):
    return pd.read_csv(folder / "manifest.csv", dtype={"id_str": str}, keep_default_na=False)


def assert_valid_images(folder, table, image_format="jpeg"):
    fetched = table[table["status"] == "fetched"]
    for row in fetched.itertuples():
        data = (folder / row.file_loc).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.bytes
        if image_format == "fits":
            assert fits.getdata(io.BytesIO(data)).shape == (3, 32, 32)
        else:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                assert image.size == (32, 32)
    return len(fetched)


def test_url_templates_frame_galaxies_as_gz2():
    sdss = CutoutOptions(base_url="https://skyserver.sdss.org/dr17/")
    # GZ2: 424 px at 0.02 x petroR90_r arcsec per pixel
    assert scale_for(12.5, sdss) == pytest.approx(0.25)
    assert cutout_url(150.1, 2.2, scale_for(12.5, sdss), sdss) == (
        "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg?ra=150.100000&"
        "dec=2.200000&scale=0.25000&width=424&height=424")
    legacy = CutoutOptions(service="legacy", image_format="fits", size=212)
    assert scale_for(np.nan, legacy) == legacy.fixed_scale == 0.18
    assert scale_for(12.5, legacy) == pytest.approx(0.5)  # half the pixels, the same field
    assert cutout_url(10, -5, 0.5, legacy) == (
        "https://www.legacysurvey.org/viewer/cutout.fits?ra=10.000000&dec=-5.000000&"
        "layer=ls-dr10&pixscale=0.50000&size=212&bands=grz")
    with pytest.raises(CutoutError, match="serves jpeg"):
        CutoutOptions(service="sdss", image_format="fits")
    with pytest.raises(CutoutError, match="rate must be > 0"):
        CutoutOptions(rate=0)
    assert file_name("587722981", "jpg") == "587722981.jpg"
    assert file_name("a/b", "jpg") != file_name("a_b", "jpg")


def test_a_prediction_job_takes_positions_instead_of_a_catalogue():
    entry = {"model": "m.keras", "positions": "sky.csv", "id_column": "objid",
             "size_column": "petroR90_r", "cutouts": {"service": "legacy"}}
    settings = chunks.job_settings(entry)
    # the split reads the cut-out manifest: its columns, and no size (the frames are GZ2's)
    assert chunks.catalogue_columns(settings) == {"id_column": "id_str", "file_column":
                                                  "file_loc", "size_column": None,
                                                  "pixel_scale": None}
    assert chunks.catalogue_columns(chunks.job_settings({"model": "m", "catalog": "c.csv"})) \
        ["id_column"] == "id_str"
    with pytest.raises(chunks.CatalogError, match="give one of"):
        chunks.job_settings({**entry, "catalog": "c.csv"})


@pytest.mark.parametrize("service,image_format", [("sdss", "jpeg"), ("legacy", "jpeg"),
                                                  ("legacy", "fits")])
def test_failures_are_retried_or_skipped_with_a_reason(tmp_path, service, image_format):
    rows = [("plain", 10.0, 1.0, 9.0), ("busy", 11.0, 1.0, 9.0), ("error", 12.0, 1.0, 9.0),
            ("dropped", 13.0, 1.0, 9.0), ("slow", 14.0, 1.0, 9.0), ("html", 15.0, 1.0, 9.0),
            ("outside", 16.0, -85.0, 9.0), ("words", "ten", 1.0, 9.0),
            ("south", 17.0, -95.0, 9.0), ("nosize", 18.0, 1.0, ""), ("plain", 19.0, 1.0, 9.0)]
    table = positions_csv(tmp_path / "positions.csv", rows)
    folder = tmp_path / "cutouts"
    with CutoutServer() as server:
        server.fail(11.0, "status", 429, {"Retry-After": "1"})
        server.fail(12.0, "status", 500)
        server.fail(13.0, "cut", 60)
        server.fail(14.0, "slow", SLOW_S)
        server.fail(15.0, "html")
        options = CutoutOptions(service=service, image_format=image_format,
                                base_url=server.base_url, **FAST)
        summary = fetch_cutouts(table, folder, options, "objid", size_column="petroR90_r",
                                progress=False)
        counts = {ra: server.count(ra) for ra in (10, 11, 12, 13, 14, 15, 16)}
        first, second = server.request_times(11.0)
    assert counts == {10: 1, 11: 2, 12: 2, 13: 2, 14: 2, 15: 1, 16: 1}
    assert second - first >= 1.0  # Retry-After: 1 was honoured
    result = manifest(folder)
    assert result["skip_code"].tolist() == ["", "", "", "", "", "not_an_image", "no_data",
                                            "bad_position", "outside_sky", "no_size",
                                            "duplicate_id"]
    assert "SkyServer: server too busy" in result.loc[5, "skip_reason"]
    assert "'ten'" in result.loc[7, "skip_reason"] and "row 7" in result.loc[7, "skip_reason"]
    assert summary["fetched"] + summary["skipped"] == len(rows) == len(result)
    assert summary["fetched"] == assert_valid_images(folder, result, image_format) == 5
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith((".csv", ".jsonl"))) \
        == sorted(result.loc[result["status"] == "fetched", "file_loc"])
    assert set(result["skip_code"]) - {""} <= set(SKIP_MEANINGS) <= set(records.SKIP_MEANINGS)


def test_a_rerun_fetches_only_what_is_missing(tmp_path):
    rows = [(f"g{i}", 20.0 + i, 5.0, 10.0) for i in range(6)] + [("void", 30.0, -85.0, 10.0)]
    table = positions_csv(tmp_path / "positions.csv", rows)
    folder = tmp_path / "cutouts"
    with CutoutServer() as server:
        server.fail(21.0, "html")
        for _ in range(2):  # every attempt of the first run (retries 1)
            server.fail(22.0, "status", 503)
        options = CutoutOptions(base_url=server.base_url, **{**FAST, "retries": 1})
        first = fetch_cutouts(table, folder, options, "objid", progress=False)
        assert first["skipped_by_code"] == {"not_an_image": 1, "fetch_failed": 1, "no_data": 1}
        (folder / "g3.jpg").unlink()  # lost since: fetched again
        before = len(server.requests)
        second = fetch_cutouts(table, folder, options, "objid", progress=False)
        again = [query["ra"] for _, query in server.requests[before:]]
    # the HTML answer and the 503s are retried; the blank position is not asked again
    assert sorted(again) == ["21.000000", "22.000000", "23.000000"]
    assert second["fetched"] == 6 and second["fetched_now"] == 3
    assert second["skipped_by_code"] == {"no_data": 1}
    assert assert_valid_images(folder, manifest(folder)) == 6
    # a manifest is also a catalogue to predict from: skipped rows keep their reason
    catalogue = chunks.read_input(folder / "manifest.csv")
    assert catalogue["skip_code"].tolist() == [""] * 6 + ["no_data"]
    assert "blank" in catalogue["skip_reason"].iloc[6]
    assert all(Path(p).is_file() for p in catalogue["path"][:6])


def test_the_rate_limit_spaces_requests_and_progress_shows_rate_and_time_left(tmp_path, caplog):
    table = positions_csv(tmp_path / "positions.csv",
                          [(f"g{i}", 40.0 + i, 5.0, 10.0) for i in range(9)])
    with CutoutServer() as server, caplog.at_level("INFO", "spiralarms.acquire.cutouts"):
        options = CutoutOptions(base_url=server.base_url, **{**FAST, "rate": 20.0})
        fetch_cutouts(table, tmp_path / "out", options, "objid", progress=True)
        starts = sorted(server.times)
    # 9 requests at 20 per second over 4 connections: at least 8 intervals of 50 ms
    assert starts[-1] - starts[0] >= 8 / 20.0 - 0.01
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cut-outs:")]
    assert lines[-1].startswith("cut-outs: 9 of 9 (100 %), 0 skipped,") and "/s, about" in \
        lines[-1] and lines[-1].endswith("left")


def test_an_unreachable_service_stops_early_with_a_message(tmp_path):
    table = positions_csv(tmp_path / "positions.csv",
                          [(f"g{i}", 1.0 + i, 1.0, 9.0) for i in range(50)])
    options = CutoutOptions(base_url="http://127.0.0.1:9", retries=0, backoff=0, rate=1000)
    started = time.monotonic()
    with pytest.raises(CutoutError, match="no server answers at http://127.0.0.1:9"):
        fetch_cutouts(table, tmp_path / "out", options, "objid", progress=False)
    assert time.monotonic() - started < 10


def test_the_cli_names_a_missing_column(tmp_path, capsys):
    table = positions_csv(tmp_path / "positions.csv", [("a", 1.0, 2.0, 3.0)],
                          ("objid", "RA", "DEC", "r90"))
    assert main(["cutouts", str(table), "-o", str(tmp_path / "out"), "--id-column", "objid",
                 "--base-url", "http://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err
    assert "has no column 'ra', 'dec'" in error and "--ra-column" in error and "RA, DEC" in error
    with CutoutServer() as server:  # a base URL that serves no cut-outs: every answer a 404
        assert main(["cutouts", str(table), "-o", str(tmp_path / "out"), "--id-column", "objid",
                     "--ra-column", "RA", "--dec-column", "DEC", "--base-url",
                     server.base_url + "/dr17", "-q"]) == 2
    error = capsys.readouterr().err
    assert "none of the 1 positions gave a cut-out" in error and "check --base-url" in error
    assert manifest(tmp_path / "out")["skip_reason"].str.contains("HTTP 404").all()


@pytest.mark.slow  # two start-ups of the real CLI: about 10 s
def test_sigkill_then_rerun_fetches_every_position_exactly_once(tmp_path):
    n = 300
    rows = [(f"{587722981000 + i}", 100.0 + i * 0.01, 20.0, 8.0 + i % 5) for i in range(n)]
    table = positions_csv(tmp_path / "positions.csv", rows)
    folder = tmp_path / "cutouts"
    with CutoutServer(latency=0.02) as server:
        command = [str(SPIRALARMS), "cutouts", str(table), "-o", str(folder), "--id-column",
                   "objid", "--size-column", "petroR90_r", "--base-url", server.base_url,
                   "--pixels", "32", "--concurrency", "4", "--rate", "1000", "--timeout", "5", "-q"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        journal = folder / "journal.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 60:
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert not (folder / "manifest.csv").exists()
        first_run = {json.loads(line)["id"] for line in journal.read_text().splitlines()}
        asked_before_kill = len(server.requests)
        assert 60 <= len(first_run) < n
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        per_position = {}
        for _, query in server.requests:
            per_position[query["ra"]] = per_position.get(query["ra"], 0) + 1
    # asked twice: only the answers in flight when the fetch was killed (never stored)
    again = {ra for ra, count in per_position.items() if count == 2}
    assert len(per_position) == n and set(per_position.values()) <= {1, 2}
    assert len(again) <= asked_before_kill - len(first_run) <= 4  # --concurrency 4
    ids_by_ra = {f"{ra:.6f}": galaxy_id for galaxy_id, ra, _, _ in rows}
    assert not {ids_by_ra[ra] for ra in again} & first_run
    result = manifest(folder)
    assert (result["status"] == "fetched").all() and result["id_str"].tolist() == \
        [r[0] for r in rows]
    assert assert_valid_images(folder, result) == n
    assert not list(folder.glob(".*partial*"))
    # each position stored once: one journal line each, none from both runs
    journal_ids = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert sorted(journal_ids) == sorted(r[0] for r in rows)
    assert "300 positions: 300 cut-outs" in done.stdout


@pytest.mark.slow  # one Snakemake start-up and two light jobs (no TensorFlow): about 15 s
def test_the_workflow_fetches_positions_before_the_split(tmp_path):
    """predict.<name>.positions: predict_cutouts (a local rule) fetches the cut-outs, and the
    split's catalogue is their manifest, ids and skip reasons included."""
    table = positions_csv(tmp_path / "positions.csv", [
        ("587722981", 10.0, 1.0, 9.0), ("587722982", 11.0, 2.0, 12.0),
        ("void", 12.0, -85.0, 9.0), ("bad", "", 1.0, 9.0)])
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read before the chunk jobs")
    workdir = tmp_path / "work"
    workdir.mkdir()
    with CutoutServer() as server:
        config = tmp_path / "predict.yaml"
        config.write_text(json.dumps({"predict": {"sky": {
            "model": str(model), "positions": str(table), "id_column": "objid",
            "size_column": "petroR90_r", "cutouts": {"base_url": server.base_url, "size": 32}}}}))
        root = Path(__file__).resolve().parents[1]
        done = subprocess.run(
            [str(Path(sys.executable).with_name("snakemake")), "results/predictions/sky/chunks.json",
             "-s", str(root / "Snakefile"), "--cores", "1", "--configfile",
             str(root / ".test/config/tiny.yaml"), str(config)],
            cwd=workdir, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        assert sorted(query["ra"] for _, query in server.requests) == \
            ["10.000000", "11.000000", "12.000000"]
    folder = workdir / "results/predictions/sky/cutouts"
    assert assert_valid_images(folder, manifest(folder)) == 2
    split = pd.read_parquet(workdir / "results/predictions/sky/catalog.parquet")
    assert split["id"].tolist() == ["587722981", "587722982", "void", "bad"]
    assert split["skip_code"].tolist() == ["", "", "no_data", "bad_position"]
    assert all(Path(p).is_file() for p in split["path"][:2])
    assert (workdir / "results/logs/predict_cutouts/sky.log").read_text().count("cut-outs") >= 1
