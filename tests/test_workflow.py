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


def snakemake(workdir, *args, targets=(), configs=(), timeout=1500):
    # Targets first: options such as --configfile and --resources take several values.
    command = [str(SNAKEMAKE), *targets, "-s", str(ROOT / "Snakefile"), "--cores", "2",
               *args, "--resources", "gpu=1", "--configfile", str(TINY), *map(str, configs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


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
    assert report["excluded"]["image_missing"] == 2  # the config's missing_images


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
    figures = {p.relative_to(out / "figures").as_posix(): p.stat().st_size
               for p in (out / "figures").rglob("*.p[nd][gf]")}
    assert {"confusion_test.png", "confusion_test_normalised.pdf", "training_curves.png",
            "reliability_test.png", "stellar_mass_test.png"} <= set(figures)
    assert any(f.startswith("misclassified_test/") for f in figures)
    assert all(figures.values())


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
        result = snakemake(tmp_path, configs=[tmp_path / "remote.yaml"],
                           targets=["results/labels/labels.parquet"])
    assert result.returncode == 0, result.stderr[-3000:]
    for name in names:
        assert (tmp_path / "results/data/download" / name).read_bytes() == \
            (synthetic / name).read_bytes()
    ours = pd.read_parquet(tmp_path / "results/labels/labels.parquet")
    theirs = pd.read_parquet(run / "results/labels/labels.parquet")
    theirs = theirs.drop(columns=["log_mass", "sfr"])  # no physical table in this config
    pd.testing.assert_frame_equal(ours, theirs)  # same labels from byte-identical inputs


@pytest.mark.slow
def test_imported_model_is_evaluated_like_a_trained_one_and_nothing_else_runs(run, tmp_path):
    """imports: an archive of a trained model; one experiment requested, no other one built."""
    import zipfile

    import yaml

    trained = run / "results/experiments/b0_6class_standard_s1"
    archive = tmp_path / "shared_model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("model.keras", "model.json"):
            zf.write(trained / name, f"finetuned/{name}")
    (tmp_path / "imports.yaml").write_text(
        yaml.safe_dump({"imports": {"b0_6class_standard_s1": str(archive)}}))
    work = tmp_path / "work"
    work.mkdir()
    target = "results/experiments/b0_6class_standard_s1/figures"
    result = snakemake(work, configs=[tmp_path / "imports.yaml"], targets=[target])
    assert result.returncode == 0, result.stderr[-3000:]

    ours = work / "results/experiments/b0_6class_standard_s1"
    assert json.loads((ours / "imported.json").read_text())["source"].endswith("shared_model.zip")
    assert not (ours / "history.csv").exists() and not (work / "results/work").exists()
    mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (ours, trained))
    assert mine["subsets"] == theirs["subsets"]
    assert (ours / "figures/confusion_test.png").stat().st_size > 0
    assert sorted(p.name for p in (work / "results/experiments").iterdir()) == \
        ["b0_6class_standard_s1"]  # the single target built only what it needs


@pytest.mark.slow
def test_imported_model_is_evaluated_and_explained_with_its_own_preprocessing(run, tmp_path):
    """The config says 48 px, the imported xai model was trained at 32: its card wins."""
    import yaml

    trained = run / "results/experiments/b0_6class_xai_s1"
    (tmp_path / "imports.yaml").write_text(yaml.safe_dump({
        "imports": {"b0_6class_xai_s1": str(trained / "model.keras")},
        "train": {"image_size": 48, "crop_size": 200}}))
    work = tmp_path / "work"
    work.mkdir()
    targets = [f"results/experiments/b0_6class_xai_s1/{t}" for t in ("figures", "xai")]
    result = snakemake(work, configs=[tmp_path / "imports.yaml"], targets=targets)
    assert result.returncode == 0, result.stderr[-3000:]
    ours = work / "results/experiments/b0_6class_xai_s1"
    card = json.loads((ours / "model.json").read_text())
    assert (card["image_size"], card["crop_size"]) == (32, 224)
    mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (ours, trained))
    assert mine["preprocessing"] == {"image_size": 32, "crop_size": 224}
    assert mine["subsets"] == theirs["subsets"]  # same numbers: same preprocessing as trained
    assert sorted(p.name for p in (ours / "xai").glob("*.png"))


@pytest.mark.slow
def test_predict_rule_classifies_a_folder_of_new_images(run, tmp_path):
    import shutil

    import yaml

    images = tmp_path / "new_galaxies"
    images.mkdir()
    for jpeg in sorted((run / "results/data/synthetic/images_gz2/images").glob("*.jpg"))[:5]:
        shutil.copy(jpeg, images)
    (images / "notes.png").write_text("not an image")
    (tmp_path / "predict.yaml").write_text(yaml.safe_dump(
        {"predict": {"mine": {"model": "b0_6class_xai_s1", "images": str(images)}}}))
    result = snakemake(run, configs=[tmp_path / "predict.yaml"],
                       targets=["results/predictions/mine.parquet"])
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = pd.read_parquet(run / "results/predictions/mine.parquet")
    assert len(predictions) == 5
    assert set(predictions["pred_name"]) <= {"1", "2", "3", "4", "5+", "?"}
    skipped = pd.read_csv(run / "results/predictions/mine.skipped.csv")
    assert skipped["path"].str.endswith("notes.png").all()
