"""End to end: the real `snakemake` on the tiny synthetic config, in a temporary directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TINY = ROOT / ".test" / "config" / "tiny.yaml"
EXPERIMENTS = ["b0_6class_standard_s1", "b0_6class_xai_s1"]


def snakemake(workdir, *args, timeout=1500):
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--configfile", str(TINY),
               "--cores", "2", "--resources", "gpu=1", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.mark.slow
def test_labels_reconcile_with_the_selection_report(run):
    labels = pd.read_parquet(run / "results/labels/labels.parquet")
    report = json.loads((run / "results/labels/selection_report.json").read_text())
    assert labels["dr7objid"].dtype == "int64" and labels["asset_id"].dtype == "int64"
    assert set(labels["arm_class"]) == set(range(6))
    assert set(labels["subset"]) == {"train", "val", "test", "overflow"}
    assert report["rows_read"] == sum(report["excluded"].values()) + len(labels)
    assert report["excluded"]["image file missing"] == 2  # the config's missing_images


@pytest.mark.slow
def test_shards_hold_every_labelled_galaxy(run):
    labels = pd.read_parquet(run / "results/labels/labels.parquet")
    manifest = json.loads((run / "results/shards/manifest.json").read_text())
    written = sum(s["count"] for s in manifest["shards"])
    assert written + len(manifest["excluded"]) == len(labels)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_has_model_history_metrics_and_figures(run, experiment):
    out = run / "results/experiments" / experiment
    assert (out / "model.keras").stat().st_size > 1e6
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["subset"] == "test"
    assert 0 <= metrics["accuracy"] <= 1 and len(metrics["confusion_matrix"]) == 6
    test = pd.read_parquet(out / "predictions/test.parquet")
    assert sum(map(sum, metrics["confusion_matrix"])) == len(test) == metrics["n"]
    assert set(metrics["subsets"]) == {"val", "test", "overflow"}
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"confusion_test.png", "confusion_test_normalised.pdf", "training_curves.png",
            "reliability_test.png", "stellar_mass_test.png"} <= figures
    assert all((out / "figures" / f).stat().st_size > 0 for f in figures)


@pytest.mark.slow
def test_xai_figures_only_for_xai_mode(run):
    assert (run / "results/experiments/b0_6class_xai_s1/xai/xai_correct.png").stat().st_size
    assert not (run / "results/experiments/b0_6class_standard_s1/xai").exists()


@pytest.mark.slow
def test_summary_has_one_row_per_experiment_and_subset(run):
    summary = pd.read_csv(run / "results/summary/metrics.csv")
    assert sorted(summary["experiment"].unique()) == sorted(EXPERIMENTS)
    assert len(summary) == 2 * 3
    assert (run / "results/summary/comparison.md").read_text().count("0.8584")


@pytest.mark.slow
def test_second_run_has_nothing_to_do(run):
    result = snakemake(run, "--dry-run", "--quiet", "rules")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_remote_sources_download_through_the_workflow(run, tmp_path):
    """data.catalog / data.mapping as URLs: the download rule fetches them (real HTTP, 127.0.0.1)."""
    import hashlib

    import yaml
    from httpserver import FileServer

    synthetic = run / "results/data/synthetic"
    names = ["zoo2MainSpecz.csv.gz", "gz2_filename_mapping.csv"]
    with FileServer({n: (synthetic / n).read_bytes() for n in names}) as server:
        server.cut_after(names[0], 5000)  # a dropped connection must resume, not corrupt
        config = {
            "synthetic": {"enabled": False},
            "data": {"catalog": server.url(names[0]), "mapping": server.url(names[1]),
                     "catalog_sha256": hashlib.sha256((synthetic / names[0]).read_bytes())
                     .hexdigest(),
                     "images": str(synthetic / "images_gz2/images"), "physical": None},
        }
        (tmp_path / "remote.yaml").write_text(yaml.safe_dump(config))
        result = snakemake(tmp_path, "--configfile", str(TINY), str(tmp_path / "remote.yaml"),
                           "results/labels/labels.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in names:
        assert (tmp_path / "results/data/download" / name).read_bytes() == \
            (synthetic / name).read_bytes()
    ours = pd.read_parquet(tmp_path / "results/labels/labels.parquet")
    theirs = pd.read_parquet(run / "results/labels/labels.parquet")
    pd.testing.assert_frame_equal(ours, theirs)  # same labels, byte-identical inputs
