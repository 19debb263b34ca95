"""predict.<name> in the real workflow: a catalogue in chunks, one job per chunk; Snakemake killed
mid-run and rerun (finished chunks are kept), then a row appended (only the last chunk is redone);
the gathered dataset equals the single-job prediction row for row."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from PIL import Image
from tiny_models import galaxy_pixels, save_tiny_model

from spiralarms.predict import chunks
from spiralarms.predict.predictor import Predictor, predict_rows
from spiralarms.predict.records import write_predictions

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TINY = ROOT / ".test" / "config" / "tiny.yaml"
TARGET = "results/predictions/survey.parquet"
CHUNKS = "results/predictions/survey/chunks"
TIMEOUT_S = 400

pytestmark = pytest.mark.slow


def make_survey(folder, n_jpeg=11):
    """A Zoobot-style catalogue: JPEGs of several sizes, one FITS, one missing file."""
    cut = folder / "cutouts"
    cut.mkdir(parents=True)
    rows = []
    for i in range(n_jpeg):
        Image.fromarray(galaxy_pixels(160 + 20 * (i % 4), i)).save(cut / f"g{i}.jpg")
        rows.append((f"g{i}", f"cutouts/g{i}.jpg"))
    fits.PrimaryHDU(galaxy_pixels(200, 99)[..., 0].astype(np.float32)).writeto(cut / "f.fits")
    rows += [("f", "cutouts/f.fits"), ("gone", "cutouts/gone.jpg")]
    frame = pd.DataFrame(rows, columns=["id_str", "file_loc"])
    # positions the FITS and VOTable outputs carry over by row
    frame["ra"], frame["dec"] = 150.0 + 0.01 * frame.index, 2.0 - 0.01 * frame.index
    frame.to_csv(folder / "catalog.csv", index=False)
    return folder / "catalog.csv"


def command(workdir, config):
    return [str(SNAKEMAKE), TARGET, "-s", str(ROOT / "Snakefile"), "--cores", "2",
            "--resources", "gpu=1", "--configfile", str(TINY), str(config)]


def snakemake(workdir, config, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command(workdir, config) + list(extra), cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def finished(workdir):
    return {p.name: p.stat().st_mtime_ns for p in sorted((workdir / CHUNKS).glob("*.parquet"))}


def kill_after_first_chunk(workdir, config):
    """Start the workflow, and SIGKILL it (and its running job) once one chunk is finished and
    the next has started: a crash in the middle of a run."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    logs = workdir / "results/logs/predict_chunk/survey"
    process = subprocess.Popen(command(workdir, config), cwd=workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and process.poll() is None:
            started = len(list(logs.glob("*.log"))) if logs.exists() else 0
            if finished(workdir) and started > len(finished(workdir)):
                break
            time.sleep(0.2)
        assert process.poll() is None, "the workflow ended before it could be interrupted"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def test_chunks_survive_a_crash_and_an_appended_row(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    model = save_tiny_model(tmp_path / "model")
    catalogue = make_survey(tmp_path / "survey")
    config = tmp_path / "predict.yaml"
    config.write_text(yaml.safe_dump({"predict": {"survey": {
        "model": str(model), "catalog": str(catalogue), "chunk_size": 5, "threads": 1,
        "tables": ["fits", "votable"]}}}))

    kill_after_first_chunk(workdir, config)
    survivors = finished(workdir)
    assert 1 <= len(survivors) < 3, survivors
    subprocess.run([str(SNAKEMAKE), "--unlock", "-s", str(ROOT / "Snakefile"), "--configfile",
                    str(TINY), str(config)], cwd=workdir, capture_output=True, check=True)
    rerun = snakemake(workdir, config)
    after = finished(workdir)
    assert sorted(after) == ["000000.parquet", "000001.parquet", "000002.parquet"]
    assert {k: after[k] for k in survivors} == survivors, rerun.stderr[-3000:]  # kept

    predictor = Predictor(model)
    single, skipped = predict_rows(predictor, chunks.read_input(catalogue))
    write_predictions(single, skipped, tmp_path / "single.parquet")
    gathered = pd.read_parquet(workdir / TARGET)
    pd.testing.assert_frame_equal(gathered, pd.read_parquet(tmp_path / "single.parquet"))
    assert gathered["id"].tolist() == [f"g{i}" for i in range(11)] + ["f"]
    listing = pd.read_csv(workdir / "results/predictions/survey.skipped.csv")
    assert listing[["id", "code"]].values.tolist() == [["gone", "missing_file"]]

    with open(catalogue, "a") as handle:
        handle.write("g0_again,cutouts/g0.jpg,150.5,1.5\n")
    snakemake(workdir, config)
    grown = finished(workdir)
    assert {k for k in grown if grown[k] != after.get(k)} == {"000002.parquet"}
    summary = pd.read_json(workdir / "results/predictions/survey.summary.json", typ="series")
    assert summary["catalogue_rows"] == 14 == summary["predicted"] + summary["skipped"]
    nothing = snakemake(workdir, config, "--dry-run")
    assert "Nothing to be done" in nothing.stdout + nothing.stderr

    # predict.survey.tables: the same rows as a FITS binary table and a VOTable, with positions
    tables = ["results/predictions/survey.fits", "results/predictions/survey.vot"]
    subprocess.run([str(SNAKEMAKE), *tables, "-s", str(ROOT / "Snakefile"), "--cores", "1",
                    "--configfile", str(TINY), str(config)], cwd=workdir, capture_output=True,
                   check=True, timeout=TIMEOUT_S)
    gathered = pd.read_parquet(workdir / TARGET)
    for table in tables:
        back = Table.read(workdir / table)
        assert [str(i) for i in back["id"]] == gathered["id"].tolist()
        given = pd.read_csv(catalogue)  # the appended row's position too
        np.testing.assert_array_equal(back["ra"], given["ra"].to_numpy()[gathered["row"]])
        np.testing.assert_array_equal(back["dec"], given["dec"].to_numpy()[gathered["row"]])
        assert back["ra"].unit == "deg" and back.colnames == [
            c.replace("?", "cant_tell").replace("+", "plus") for c in gathered.columns.insert(
                2, "ra").insert(3, "dec")]
        np.testing.assert_array_equal(back["prob_cant_tell"], gathered["prob_?"])
