"""End to end: the real `snakemake` on the tiny synthetic config, in a temporary directory."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spiralarms.logs import TENSORFLOW_NOISE

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TINY = ROOT / ".test" / "config" / "tiny.yaml"
EXPERIMENTS = ["b0_6class_standard_s1", "b0_6class_xai_s1"]


def snakemake(workdir, *args, targets=(), configs=(), timeout=1500):
    # Targets first: options such as --configfile and --resources take several values.
    # gpu=2 as `make demo`: two one-thread network jobs (tiny.yaml threads: 1) share the 2 cores.
    command = [str(SNAKEMAKE), *targets, "-s", str(ROOT / "Snakefile"), "--cores", "2",
               *args, "--resources", "gpu=2", "--configfile", str(TINY), *map(str, configs)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def assert_same_numbers(mine, theirs, path="subsets"):
    """Equal structure, counts and labels; floats equal to 1e-6 (the same model evaluated in
    another process may differ in the last float32 bit of a probability, e.g. ECE by 1e-9)."""
    if isinstance(theirs, dict):
        assert mine.keys() == theirs.keys(), path
        for key in theirs:
            assert_same_numbers(mine[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert len(mine) == len(theirs), path
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert_same_numbers(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert mine == pytest.approx(theirs, rel=1e-6, abs=1e-9), path
    else:
        assert mine == theirs, path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    (workdir / "terminal.txt").write_text(result.stderr)  # what the user read
    return workdir


def work_with_the_runs_data(run, tmp_path) -> Path:
    """A new work folder holding the run's synthetic data, labels and shards (times kept): a
    second Snakemake call there builds only what its test is about, not the data again."""
    work = tmp_path / "work"
    for part in ("data", "labels", "shards"):
        shutil.copytree(run / "results" / part, work / "results" / part)
    return work


@pytest.mark.slow
def test_labels_reconcile_with_the_selection_report(run):
    labels = pd.read_parquet(run / "results/labels/labels.parquet")
    report = json.loads((run / "results/labels/selection_report.json").read_text())
    assert labels["dr7objid"].dtype == "int64" and labels["asset_id"].dtype == "int64"
    assert set(labels["arm_class"]) == set(range(6))
    assert set(labels["subset"]) == {"train", "val", "test", "overflow"}
    assert report["rows_read"] == sum(report["excluded"].values()) + len(labels)
    assert report["excluded"]["image_missing"] == 2  # the config's missing_images
    assert report["selected"] == len(labels) and labels["dr7objid"].is_unique
    for subset, per_class in report["per_subset_per_class"].items():
        members = labels.loc[labels["subset"] == subset, "arm_class"]
        assert per_class == np.bincount(members, minlength=6).tolist(), subset
    # the cap of 16 per class: what is over it is the overflow subset
    capped = labels[labels["subset"] != "overflow"]
    assert capped["arm_class"].value_counts().max() <= 16


def shard_counts(run) -> dict:
    """{subset: galaxies per arm class} written into the shards, from the manifest."""
    manifest = json.loads((run / "results/shards/manifest.json").read_text())
    counts = {}
    for shard in manifest["shards"]:
        counts[shard["subset"]] = np.add(counts.get(shard["subset"], 0), shard["count_per_class"])
    return counts


@pytest.mark.slow
def test_shards_hold_every_labelled_galaxy(run):
    labels = pd.read_parquet(run / "results/labels/labels.parquet")
    manifest = json.loads((run / "results/shards/manifest.json").read_text())
    written = sum(s["count"] for s in manifest["shards"])
    assert written + len(manifest["excluded"]) == len(labels)
    excluded = {e["asset_id"] for e in manifest["excluded"]}
    kept = labels[~labels["asset_id"].isin(excluded)]
    for subset, per_class in shard_counts(run).items():  # per subset and class, not only in all
        members = kept.loc[kept["subset"] == subset, "arm_class"]
        assert per_class.tolist() == np.bincount(members, minlength=6).tolist(), subset
        assert manifest["subsets"][subset]["count"] == per_class.sum()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_has_model_history_metrics_and_figures(run, experiment):
    out = run / "results/experiments" / experiment
    assert (out / "model.keras").stat().st_size > 1e6
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["subset"] == "test" and metrics["experiment"] == experiment
    assert set(metrics["subsets"]) == {"val", "test", "overflow"}
    names = metrics["class_names"]
    shards = shard_counts(run)
    for subset, numbers in metrics["subsets"].items():
        predictions = pd.read_parquet(out / f"predictions/{subset}.parquet")
        # every galaxy of the subset's shards predicted once (6class keeps every class)
        assert len(predictions) == numbers["n"] == shards[subset].sum(), subset
        assert predictions["asset_id"].is_unique
        assert np.bincount(predictions["true"], minlength=6).tolist() == shards[subset].tolist()
        proba = predictions[[f"prob_{n}" for n in names]].to_numpy()
        np.testing.assert_array_equal(predictions["pred"], proba.argmax(axis=1))
        # the numbers metrics.json reports, recomputed from the saved predictions
        correct = predictions["true"] == predictions["pred"]
        assert numbers["accuracy"] == pytest.approx(correct.mean()), subset
        cells = pd.crosstab(predictions["true"], predictions["pred"]).reindex(
            index=range(6), columns=range(6), fill_value=0)
        assert numbers["confusion_matrix"] == cells.to_numpy().tolist(), subset
        support = {n: int((predictions["true"] == k).sum()) for k, n in enumerate(names)}
        assert {n: c["support"] for n, c in numbers["per_class"].items()} == support
        recall = {n: (correct & (predictions["true"] == k)).sum() / max(support[n], 1)
                  for k, n in enumerate(names)}
        assert {n: c["recall"] for n, c in numbers["per_class"].items()} == pytest.approx(recall)
    top = {k: v for k, v in metrics.items() if k in metrics["subsets"]["test"]}
    assert top == metrics["subsets"]["test"]  # the top level repeats the test subset
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
    comparison = (run / "results/summary/comparison.md").read_text()
    for experiment in EXPERIMENTS:  # the summary's numbers are metrics.json's
        metrics = json.loads((run / "results/experiments" / experiment / "metrics.json")
                             .read_text())
        for subset, numbers in metrics["subsets"].items():
            (row,) = summary[(summary["experiment"] == experiment)
                             & (summary["subset"] == subset)].to_dict("records")
            for key in ("n", "accuracy", "macro_f1", "weighted_f1", "ece"):
                assert row[key] == pytest.approx(numbers[key]), (experiment, subset, key)
            assert row["f1_3"] == pytest.approx(numbers["per_class"]["3"]["f1"])
            assert json.loads(row["confusion_matrix"]) == numbers["confusion_matrix"]
        # comparison.md sets the validation numbers beside the notebook's, in its column
        header = next(line for line in comparison.splitlines()
                      if line.startswith("| metric | notebook |")).split("|")
        column = [c.strip().rstrip(" †") for c in header].index(experiment)
        rows = {line.split("|")[1].strip(): line.split("|")[column].strip()
                for line in comparison.splitlines() if line.startswith("| ")}
        val = metrics["subsets"]["val"]
        assert rows["n"] == str(val["n"])
        assert rows["accuracy"] == f"{val['accuracy']:.4f}"
        assert rows["macro_f1"] == f"{val['macro_f1']:.4f}"


@pytest.mark.slow
def test_terminal_shows_each_epoch_and_no_tensorflow_start_up_lines(run):
    terminal = (run / "terminal.txt").read_text().splitlines()
    assert [line for line in terminal if TENSORFLOW_NOISE.match(line)] == []
    assert not any("oneDNN" in line or "absl" in line for line in terminal)
    for experiment in EXPERIMENTS:
        (line,) = [line for line in terminal if line.startswith(f"train {experiment}: epoch")]
        assert line.startswith(f"train {experiment}: epoch 1/1  loss ") and "left)" in line
    log = (run / "results/logs/train" / f"{EXPERIMENTS[0]}.log").read_text()
    assert "oneDNN" in log  # TensorFlow's start-up lines went to the job's log instead


@pytest.mark.slow
def test_a_failing_job_ends_in_its_own_message(tmp_path):
    """Bad input in a workflow job: its message, once, in place of a traceback."""
    import yaml

    (tmp_path / "images").mkdir()
    (tmp_path / "catalog.csv").write_text("specobjid,dr7objid\n1,2\n")  # columns missing
    (tmp_path / "mapping.csv").write_text("objid,sample,asset_id\n2,x,3\n")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({
        "synthetic": {"enabled": False},
        "data": {"catalog": "catalog.csv", "mapping": "mapping.csv", "images": "images",
                 "physical": None}}))
    result = snakemake(tmp_path, configs=[tmp_path / "bad.yaml"],
                       targets=["results/labels/labels.parquet"], timeout=300)
    assert result.returncode == 1
    message = ("labels: catalog.csv: missing column(s) ['total_votes', "
               "'t01_smooth_or_features_a02_features_or_disk_weighted_fraction'")
    shown = [line for line in result.stderr.splitlines() if line.startswith("labels: ")]
    assert len(shown) == 1 and shown[0].startswith(message), result.stderr[-3000:]
    assert "in the GZ2 catalogue" in shown[0]
    assert "Traceback" not in result.stderr
    log = (tmp_path / "results/logs/labels.log").read_text().splitlines()
    assert log[-1].endswith(shown[0])  # the log ends in the same line


def test_report_before_any_run_says_what_to_do(tmp_path):
    result = snakemake(tmp_path, "--report", "report.html", timeout=300)
    assert result.returncode == 1
    assert (f"--report: none of this config's results exist in {tmp_path}/results "
            "(e.g. results/summary/metrics.csv). Run the workflow first, or give the "
            "--configfile of the run to report") in result.stderr


def job_script(body: str, log) -> list:
    """A workflow script's start (`logs.job`) with a stand-in for Snakemake's object."""
    return [sys.executable, "-c", "import types\nfrom spiralarms import logs\n"
            f"snakemake = types.SimpleNamespace(rule='figures', log=[{str(log)!r}], "
            "wildcards={'experiment': 'b0_6class_xai_s1'})\nlogs.job(snakemake)\n" + body]


def test_bad_input_in_a_job_is_one_line_on_the_terminal_and_in_the_log(tmp_path):
    log = tmp_path / "job.log"
    body = ("from spiralarms.gz2.catalog import read_mapping\n"
            f"read_mapping({str(tmp_path / 'absent.csv')!r})\n")
    result = subprocess.run(job_script(body, log), capture_output=True, text=True, check=False)
    line = (f"figures experiment=b0_6class_xai_s1: {tmp_path / 'absent.csv'}: file not found; "
            "expected the image-id map (gz2_filename_mapping.csv)")
    assert result.returncode == 1
    assert result.stderr == line + "\n"
    assert log.read_text().splitlines()[-1].endswith(f"ERROR spiralarms.logs: {line}")
    assert "Traceback" not in log.read_text()


def test_a_bug_in_a_job_keeps_its_traceback_in_the_log(tmp_path):
    log = tmp_path / "job.log"
    body = "import pandas\npandas.DataFrame({'a': [1]})['b']\n"  # a KeyError: a bug, not input
    result = subprocess.run(job_script(body, log), capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr == (f"figures experiment=b0_6class_xai_s1: unexpected KeyError: 'b' "
                             f"(a bug: the traceback is in {log})\n")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "pandas" in text
    assert text.splitlines()[-1].endswith(result.stderr.strip())


@pytest.mark.slow
def test_cli_keeps_tensorflow_start_up_lines_off_the_terminal(tmp_path):
    (tmp_path / "notes.keras").write_text("not a model")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [str(SNAKEMAKE.with_name("spiralarms")), "import-model", "notes.keras",
         "--experiment-dir", "results/experiments/b0_6class_standard_s42"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("spiralarms import-model: error: notes.keras")  # first line
    assert len(result.stderr.splitlines()) == 1, result.stderr


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
    work = work_with_the_runs_data(run, tmp_path)
    target = "results/experiments/b0_6class_standard_s1/figures"
    result = snakemake(work, configs=[tmp_path / "imports.yaml"], targets=[target])
    assert result.returncode == 0, result.stderr[-3000:]

    ours = work / "results/experiments/b0_6class_standard_s1"
    assert json.loads((ours / "imported.json").read_text())["source"].endswith("shared_model.zip")
    assert not (ours / "history.csv").exists() and not (work / "results/work").exists()
    mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (ours, trained))
    assert_same_numbers(mine["subsets"], theirs["subsets"])
    assert (ours / "figures/confusion_test.png").stat().st_size > 0
    assert sorted(p.name for p in (work / "results/experiments").iterdir()) == \
        ["b0_6class_standard_s1"]  # the single target built only what it needs

    # `snakemake --report` after this one-target run: a report of what ran, not an error
    report = snakemake(work, "--report", "report.html", configs=[tmp_path / "imports.yaml"])
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert "confusion_test.png" in html and "metrics.csv" not in html


@pytest.mark.slow
def test_imported_model_is_evaluated_and_explained_with_its_own_preprocessing(run, tmp_path):
    """The config says 48 px, the imported xai model was trained at 32: its card wins."""
    import yaml

    trained = run / "results/experiments/b0_6class_xai_s1"
    (tmp_path / "imports.yaml").write_text(yaml.safe_dump({
        "imports": {"b0_6class_xai_s1": str(trained / "model.keras")},
        "train": {"image_size": 48, "crop_size": 200}}))
    work = work_with_the_runs_data(run, tmp_path)
    targets = [f"results/experiments/b0_6class_xai_s1/{t}" for t in ("figures", "xai")]
    result = snakemake(work, configs=[tmp_path / "imports.yaml"], targets=targets)
    assert result.returncode == 0, result.stderr[-3000:]
    ours = work / "results/experiments/b0_6class_xai_s1"
    card = json.loads((ours / "model.json").read_text())
    assert (card["image_size"], card["crop_size"]) == (32, 224)
    mine, theirs = (json.loads((d / "metrics.json").read_text()) for d in (ours, trained))
    assert mine["preprocessing"] == {"image_size": 32, "crop_size": 224}
    assert_same_numbers(mine["subsets"], theirs["subsets"])  # same preprocessing as trained
    assert sorted(p.name for p in (ours / "xai").glob("*.png"))


@pytest.mark.slow
def test_predict_rule_classifies_a_folder_of_new_images(run, tmp_path):
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
