"""predict.<name> on a real SLURM (ci/slurm/up.sh): a catalogue of a few hundred synthetic galaxies
(JPEG and FITS, two bad rows) in four chunks, each chunk its own SLURM job with a GPU; the
gathered dataset equals the single-job prediction row for row.

Runs as root on Debian/Ubuntu (CI), like tests/test_slurm.py, whose helpers it uses. It reuses
a throwaway SLURM that is already up (the /etc/slurm/slurm.conf link up.sh makes), else starts
its own and stops it afterwards.
"""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from PIL import Image
from slurm_support import REPO, fast_options, rule_of, slurm_jobs
from tiny_models import save_tiny_model

from spiralarms.predict import chunks
from spiralarms.predict.predictor import Predictor, predict_rows, write_predictions
from spiralarms.synthetic.render import render_galaxy

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

N_JPEG, N_FITS, CHUNK_SIZE = 280, 20, 100  # + 2 bad rows = 302 rows = 4 chunks
TARGET = "results/predictions/survey.parquet"
RUN_TIMEOUT_S = 600
OPTIONS = fast_options("predict_chunk", runtime=15)


def make_survey(folder):
    """Synthetic galaxies as a survey would deliver them: JPEG cut-outs, a few FITS ones, a row
    whose file is missing and one that is not an image; relative paths in a catalogue."""
    cut = folder / "cutouts"
    cut.mkdir(parents=True)
    rng = np.random.default_rng(11)
    rows = []
    for i in range(N_JPEG + N_FITS):
        pixels = render_galaxy(i % 6, rng)
        if i < N_JPEG:
            Image.fromarray(pixels).save(cut / f"{i}.jpg", quality=90)
            rows.append((f"J{i:04d}", f"cutouts/{i}.jpg"))
        else:
            counts = pixels.mean(-1).astype(np.float32) * 30 + rng.normal(150, 6, pixels.shape[:2])
            fits.PrimaryHDU(counts.astype(np.float32)[::-1]).writeto(cut / f"{i}.fits")
            rows.append((f"F{i:04d}", f"cutouts/{i}.fits"))
    (cut / "bad.jpg").write_text("an error page, not an image\n")
    rows += [("missing", "cutouts/none.jpg"), ("bad", "cutouts/bad.jpg")]
    pd.DataFrame(rows, columns=["id_str", "file_loc"]).to_csv(folder / "catalog.csv", index=False)
    return folder / "catalog.csv"


def test_chunks_run_as_slurm_jobs_and_equal_the_single_job(slurm_cluster, tmp_path):
    cluster = slurm_cluster
    model = save_tiny_model(tmp_path / "model")
    catalogue = make_survey(tmp_path / "survey")
    config = tmp_path / "predict.yaml"
    config.write_text(yaml.safe_dump({"predict": {"survey": {
        "model": str(model), "catalog": str(catalogue), "chunk_size": CHUNK_SIZE,
        "threads": 1, "tta": 2}}}))
    workdir = tmp_path / "work"
    workdir.mkdir()
    command = [sys.executable, "-m", "snakemake", TARGET, "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(REPO / ".test/config/tiny.yaml"),
               str(config), "--workflow-profile", str(REPO / "profiles/slurm"), *OPTIONS]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=cluster, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    print(f"prediction in {N_JPEG + N_FITS + 2} rows / 4 chunks on SLURM: "
          f"{time.perf_counter() - started:.0f} s")
    assert done.returncode == 0, done.stderr[-5000:]

    jobs = [job for job in slurm_jobs(workdir, cluster) if rule_of(job) == "predict_chunk"]
    assert len(jobs) == 4 and len({job["JobId"] for job in jobs}) == 4, jobs
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    for job in jobs:
        assert "gpu" in job.get("TresPerJob", ""), f"job {job['JobId']} got no GPU: {job}"
    assert {rule_of(job) for job in slurm_jobs(workdir, cluster)} == {"predict_chunk"}

    single, skipped = predict_rows(Predictor(model, tta=2), chunks.read_input(catalogue))
    write_predictions(single, skipped, tmp_path / "single.parquet")
    gathered = pd.read_parquet(workdir / TARGET)
    pd.testing.assert_frame_equal(gathered, pd.read_parquet(tmp_path / "single.parquet"))
    assert len(gathered) == N_JPEG + N_FITS and "std_5+" in gathered
    parts = sorted(p.name for p in (workdir / TARGET).iterdir() if not p.name.startswith("."))
    assert parts == [f"part-{i:06d}.parquet" for i in range(4)]  # (Snakemake adds a dotfile)
    summary = pd.read_json(workdir / "results/predictions/survey.summary.json", typ="series")
    assert summary["catalogue_rows"] == N_JPEG + N_FITS + 2
    assert summary["predicted"] + summary["skipped"] == summary["catalogue_rows"]
    listing = pd.read_csv(workdir / "results/predictions/survey.skipped.csv")
    assert dict(zip(listing["id"], listing["code"])) == {"missing": "missing_file",
                                                         "bad": "unreadable"}
