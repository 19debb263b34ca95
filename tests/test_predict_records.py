"""Prediction records without TensorFlow: the split and gather steps, their atomic outputs, the
setting checks and the input messages (spiralarms.predict.records, .chunks)."""
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from disk_support import fill, full_folder

from spiralarms.atomic import OutputError
from spiralarms.gz2.catalog import CatalogError
from spiralarms.predict import chunks, records

# Split a folder into chunks, write each chunk as a prediction job would (probabilities by hand),
# gather: the workflow's light steps, run in a fresh interpreter to see what they import.
LIGHT_STEPS = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import numpy as np

    from spiralarms.data.variants import VARIANTS
    from spiralarms.predict import chunks

    folder, work = Path(sys.argv[1]), Path(sys.argv[2])
    failing = sys.argv[3] if len(sys.argv) > 3 else None
    settings = chunks.job_settings({"images": str(folder), "chunk_size": 2})
    plan = chunks.run_predict_split(folder, settings, work / "catalog.parquet",
                                    work / "chunks.json")
    names = list(VARIANTS["6class"].class_names)
    card = {"classes": "6class", "class_names": names, "model": "b0", "image_size": 32,
            "crop_size": 224, "mode": "standard"}
    files = []
    for entry in plan["chunks"]:
        rows = chunks.read_chunk_rows(work / "catalog.parquet", plan, entry["chunk"])
        n = len(rows)
        rows["width"] = rows["height"] = np.full(n, 424)
        rows["mode"] = "RGB"
        rows["pred_index"] = np.full(n, 2)
        rows["pred_name"], rows["pred_label"] = names[2], "3 arms"
        rows["p_max"], rows["entropy"] = np.float32(0.9), np.float32(0.4)
        for i, name in enumerate(names):
            rows[f"prob_{name}"] = np.float32(0.9 if i == 2 else 0.02)
        rows = rows.drop(columns=["size"])
        if entry["chunk"] == failing:  # a chunk predicted for other rows: gather must refuse
            entry = {**entry, "fingerprint": "0" * 64}
        path = work / "chunks" / f"{entry['chunk']}.parquet"
        chunks.write_chunk(rows, path, {"chunk": entry["chunk"],
                                        "fingerprint": entry["fingerprint"],
                                        "settings": "s", "model_card": card, "tta": 1})
        files.append(path)
    out = Path(str(work) + ".parquet")
    stem = str(work)
    try:
        chunks.run_predict_gather(work / "chunks.json", files, out, stem + ".skipped.csv",
                                  stem + ".summary.json", stem + ".summary.md",
                                  stem + ".confidence.png", "survey")
    finally:
        heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
        Path(stem + ".imports.json").write_text(json.dumps(heavy))
""")


def run_light_steps(folder, work, failing=None):
    return subprocess.run([sys.executable, "-c", LIGHT_STEPS, str(folder), str(work)]
                          + ([failing] if failing else []),
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def five_images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in "abcde":
        (folder / f"{name}.jpg").write_bytes(b"not read by the light steps")
    return folder


def test_split_and_gather_never_import_tensorflow(five_images, tmp_path):
    work = tmp_path / "out" / "survey"
    done = run_light_steps(five_images, work)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "survey.imports.json").read_text()) == []
    gathered = pd.read_parquet(tmp_path / "out" / "survey.parquet")
    assert sorted(gathered["id"]) == [f"{n}.jpg" for n in "abcde"]
    summary = json.loads((tmp_path / "out" / "survey.summary.json").read_text())
    assert summary["predicted"] == 5 and summary["reconciles"]


def test_a_failed_gather_leaves_the_previous_dataset_whole(five_images, tmp_path):
    work = tmp_path / "out" / "survey"
    assert run_light_steps(five_images, work).returncode == 0
    dataset = tmp_path / "out" / "survey.parquet"
    before = sorted(p.name for p in dataset.iterdir())
    (five_images / "f.jpg").write_bytes(b"x")  # the catalogue grows: a new last chunk
    failed = run_light_steps(five_images, work, failing="000002")
    assert failed.returncode != 0 and "predicted for other catalogue rows" in failed.stderr
    # the first two chunks were gathered before the third failed: none of it is visible
    assert sorted(p.name for p in dataset.iterdir()) == before
    assert len(pd.read_parquet(dataset)) == 5
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if ".partial" in p.name) == []


def test_a_gather_on_a_full_disk_names_the_path(five_images, tmp_path):
    with full_folder(tmp_path) as full:
        done = run_light_steps(five_images, tmp_path / "work" / "survey")
        assert done.returncode == 0, done.stderr
        plan = chunks.read_plan(tmp_path / "work" / "survey" / "chunks.json")
        files = sorted((tmp_path / "work" / "survey" / "chunks").glob("*.parquet"))
        with pytest.raises(OutputError, match="no space left on device") as caught:
            chunks.gather(plan, files, full / "survey.parquet", full / "survey.skipped.csv",
                          full / "survey.summary.json")
        assert str(full / "survey.parquet") in str(caught.value)
        assert sorted(p.name for p in full.iterdir()) == [".ballast"]


def test_write_predictions_on_a_full_disk_keeps_the_old_file(tmp_path):
    table = pd.DataFrame({"id": [f"{i}.jpg" for i in range(2000)], "p_max": 0.5})
    with full_folder(tmp_path) as full:
        out = full / "out.csv"
        (full / ".ballast").unlink()
        records.write_predictions(table.head(3), [], out)
        old = out.read_bytes()
        fill(full)
        for name in ("out.csv", "out.parquet"):
            with pytest.raises(OutputError, match="no space left on device") as caught:
                records.write_predictions(table, [], full / name)
            assert str(full / name) in str(caught.value)
        assert out.read_bytes() == old
        assert sorted(p.name for p in full.iterdir()) == [".ballast", "out.csv"]


@pytest.mark.parametrize("value", [-1, 0, "nan", "four"])
def test_max_upscale_must_be_positive(value):
    with pytest.raises(ValueError, match="greater than 0"):
        records.check_max_upscale(value)
    with pytest.raises(CatalogError, match=r"max_upscale must be a number greater than 0"):
        chunks.job_settings({"images": "x", "max_upscale": value})
    assert records.check_max_upscale("0.5") == 0.5


def test_a_missing_input_is_reported_as_missing(tmp_path):
    with pytest.raises(CatalogError, match=f"input .* {tmp_path / 'nope'} does not exist"):
        chunks.read_input(tmp_path / "nope")
    with pytest.raises(CatalogError, match=f"catalogue {tmp_path / 'nope.csv'} does not exist"):
        chunks.read_input(tmp_path / "nope.csv")
    with pytest.raises(records.NoImagesError, match=f"input {tmp_path / 'nope'} does not exist"):
        records.find_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(records.NoImagesError, match="no images .* found in"):
        records.find_images([tmp_path / "empty"])


def test_one_catalog_error_class():
    assert chunks.CatalogError is CatalogError
    with pytest.raises(CatalogError, match="chunk size must be >= 1"):
        chunks.plan_chunks(pd.DataFrame(), 0)
