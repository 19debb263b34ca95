"""Models that travel: `spiralarms export-model` writes a shareable folder (model, card, Hugging
Face README, training config); `predict --model` and `import-model` take it back from the https://
URL of its zip or from `hf_hub:<owner>/<repo>`, both served by real servers on 127.0.0.1, fetched
once into the model cache and loaded in Keras' safe mode."""

import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from httpserver import FileServer
from PIL import Image
from tiny_models import galaxy_pixels, save_small_network

from spiralarms.acquire.model_source import fetch_model
from spiralarms.cli import main
from spiralarms.report.model_export import CITATION, front_matter

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"
EXPERIMENT = "b0_6class_standard_s42"
ZOOBOT = "hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0"
REPO = "astro-lab/spiral-arms-b0"
PROBS = [f"prob_{n}" for n in ("1", "2", "3", "4", "5+", "?")]


def metrics_json(n=40):
    """A metrics.json as evaluate writes it (the keys the model card reads)."""
    names = ["1", "2", "3", "4", "5+", "?"]
    subset = {"n": n, "accuracy": 0.625, "accuracy_ci95": [0.475, 0.775], "macro_f1": 0.5812,
              "macro_f1_ci95": [0.41, 0.72], "class_names": names,
              "per_class": {c: {"precision": 0.5, "recall": 0.6, "f1": 0.545, "support": 7}
                            for c in names},
              "per_class_f1_ci95": {c: [0.2, 0.8] for c in names}}
    return {"experiment": EXPERIMENT, "subset": "val", **subset,
            "subsets": {"val": subset, "overflow": {**subset, "n": 12, "accuracy": 0.5,
                                                    "accuracy_ci95": [0.25, 0.75]}}}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """An experiment folder as training and evaluation leave it, and a folder of galaxies."""
    root = tmp_path_factory.mktemp("exported")
    model = save_small_network(root / "results" / "experiments" / EXPERIMENT)
    card = json.loads(model.with_name("model.json").read_text())
    card["training"] = {"weights": {"source": ZOOBOT, "file": "zoobot.weights.h5",
                                    "sha256": "ab" * 32, "matches_paper": "yes",
                                    "paper": "Zoobot"},
                        "precision": "float32", "batch_size": 16, "notes": []}
    model.with_name("model.json").write_text(json.dumps(card))
    model.with_name("metrics.json").write_text(json.dumps(metrics_json()))
    images = root / "galaxies"
    images.mkdir()
    for seed in range(3):
        Image.fromarray(galaxy_pixels(200, seed)).save(images / f"g{seed}.jpg")
    return model.parent, images


@pytest.fixture(scope="module")
def exported(experiment, tmp_path_factory):
    folder, _ = experiment
    out = tmp_path_factory.mktemp("share") / "spiral-arms-b0"
    assert main(["export-model", "-q", str(folder), "-o", str(out), "--configfile",
                 str(DEMO)]) == 0
    return out


@pytest.fixture(scope="module")
def local_predictions(experiment, tmp_path_factory):
    folder, images = experiment
    return predict(folder / "model.keras", images, tmp_path_factory.mktemp("local") / "p.parquet")


def zipped(folder, path):
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{folder.name}/{file.name}")
    return path.read_bytes()


def predict(model, images, out):
    assert main(["predict", "-q", "--model", str(model), str(images), "-o", str(out)]) == 0
    return pd.read_parquet(out)


def test_export_writes_model_card_readme_and_training_config(experiment, exported):
    folder, _ = experiment
    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md", "config.yaml", "metrics.json", "model.json", "model.keras"]
    assert (exported / "model.keras").read_bytes() == (folder / "model.keras").read_bytes()
    assert json.loads((exported / "model.json").read_text())["classes"] == "6class"
    config = yaml.safe_load((exported / "config.yaml").read_text())
    demo = yaml.safe_load(DEMO.read_text())
    assert config["selection"]["cap"] == demo["selection"]["cap"]
    assert config["train"]["image_size"] == demo["train"]["image_size"]
    assert list(config["models"]) == ["b0"] and config["synthetic"]["enabled"] is True


def test_the_readme_is_a_hugging_face_model_card(exported):
    text = (exported / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert (meta["library_name"], meta["license"]) == ("keras", "gpl-3.0")  # Zoobot's encoder
    assert {"image-classification", "astronomy", "spiral-arms"} <= set(meta["tags"])
    assert meta["metrics"] == ["accuracy", "f1"]
    [result] = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"accuracy": 0.625,
                                                                  "f1": 0.5812}
    assert "synthetic" in result["dataset"]["name"]  # demo.yaml: not real galaxies
    body = text.split("---\n", 2)[2]
    for words in ("## Task", "| 5 | `?` | can't tell |", "## Preprocessing", "central 224 px",
                  "## Training data and selection", "spiral_min", "## Metrics",
                  "| val | 40 | 0.625 [0.475, 0.775] | 0.581 [0.410, 0.720] |",
                  "| overflow | 12 | 0.500 [0.250, 0.750] |", "| 5+ arms | 0.545 [0.200, 0.800] |",
                  "## Weights provenance", ZOOBOT, "## Licence", "## Citation", CITATION,
                  "hf_hub:<owner>/<repo>"):
        assert words in body, words


def test_a_model_without_zoobots_encoder_gets_licence_other_unless_given():
    card = {"model": "v2m", "classes": "merge45", "training": {"weights": {"source": "imagenet"}}}
    assert front_matter("x", card, {}, "other")["license"] == "other"
    from spiralarms.report.model_export import default_license

    assert default_license(card) == "other" and default_license({}) == "other"


def test_export_refuses_a_folder_without_a_model_and_an_existing_output(exported, tmp_path,
                                                                       capsys):
    (tmp_path / "empty").mkdir()
    assert main(["export-model", str(tmp_path / "empty"), "-o", str(tmp_path / "x")]) == 2
    assert "holds no model.keras" in capsys.readouterr().err
    assert main(["export-model", "no_such_experiment", "-o", str(tmp_path / "x")]) == 2
    assert "no folder results/experiments/no_such_experiment" in capsys.readouterr().err


def test_zip_url_round_trip_predicts_as_the_local_model(experiment, exported, local_predictions,
                                                        tmp_path, monkeypatch):
    _, images = experiment
    monkeypatch.setenv("SPIRALARMS_MODEL_CACHE", str(tmp_path / "cache"))
    with FileServer({"models/spiral-arms-b0.zip": zipped(exported, tmp_path / "m.zip")}) as web:
        url = web.url("models/spiral-arms-b0.zip")
        remote = predict(url, images, tmp_path / "remote.parquet")
        cached = fetch_model(url)  # a second use: from the cache, no request
        assert web.count("models/spiral-arms-b0.zip") == 1
    np.testing.assert_array_equal(remote[PROBS].to_numpy(), local_predictions[PROBS].to_numpy())
    assert remote["pred_name"].tolist() == local_predictions["pred_name"].tolist()
    assert cached.read_bytes() == (exported / "model.keras").read_bytes()
    assert json.loads(cached.with_name("model.json").read_text())["classes"] == "6class"
    [record] = [json.loads(p.read_text())
                for p in (tmp_path / "cache/url").glob("*/model/source.json")]
    [manifest] = [json.loads(p.read_text())
                  for p in (tmp_path / "cache/url").glob("*/*.zip.manifest.json")]
    assert (record["url"], record["sha256"]) == (url, manifest["sha256"])


def test_hf_hub_model_is_fetched_once_and_imported_in_safe_mode(experiment, exported, tmp_path,
                                                                monkeypatch):
    folder, _ = experiment
    files = {f"{REPO}/resolve/main/{p.name}": p.read_bytes() for p in exported.iterdir()}
    monkeypatch.setenv("SPIRALARMS_MODEL_CACHE", str(tmp_path / "cache"))
    with FileServer(files) as web:
        monkeypatch.setenv("HF_ENDPOINT", web.url("").rstrip("/"))
        fetched = fetch_model(f"hf_hub:{REPO}")
        imported = tmp_path / "experiments" / EXPERIMENT
        assert main(["import-model", "-q", f"hf_hub:{REPO}", "--experiment-dir",
                     str(imported)]) == 0
        assert web.count(f"{REPO}/resolve/main/model.keras") == 1  # the import used the cache
        assert web.count(f"{REPO}/resolve/main/README.md") == 0  # for people, not fetched
    assert fetched == tmp_path / "cache/hf_hub/astro-lab--spiral-arms-b0/main/model.keras"
    assert fetched.read_bytes() == (folder / "model.keras").read_bytes()
    assert fetched.with_name("model.json").read_bytes() == (exported / "model.json").read_bytes()
    provenance = json.loads((imported / "imported.json").read_text())
    assert provenance["source"] == f"hf_hub:{REPO}"
    assert provenance["sha256"] == json.loads(fetched.with_name("source.json").read_text())[
        "files"]["model.keras"]["sha256"]
    assert (imported / "model.keras").read_bytes() == (folder / "model.keras").read_bytes()
    assert json.loads((imported / "model.json").read_text())["classes"] == "6class"


def test_a_model_with_python_code_is_refused_by_safe_mode(tmp_path, monkeypatch, capsys):
    inputs = keras.Input((32, 32, 1))
    sneaky = tmp_path / "sneaky"
    sneaky.mkdir()
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(
        sneaky / "model.keras")
    shutil.copyfile(tmp_path / "sneaky" / "model.keras", tmp_path / "copy.keras")
    monkeypatch.setenv("SPIRALARMS_MODEL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "images").mkdir()
    Image.fromarray(galaxy_pixels(64)).save(tmp_path / "images" / "g.jpg")
    with FileServer({"sneaky.zip": zipped(sneaky, tmp_path / "s.zip")}) as web:
        assert main(["predict", "--model", web.url("sneaky.zip"), str(tmp_path / "images"),
                     "--classes", "6class", "--crop-size", "224", "-o",
                     str(tmp_path / "p.parquet")]) == 2
    assert "could not be loaded" in capsys.readouterr().err
    assert not (tmp_path / "p.parquet").exists()


def test_a_zip_url_without_a_model_and_a_bad_hub_name_say_what_is_wrong(tmp_path, monkeypatch):
    from spiralarms.acquire.model_source import ModelSourceError

    with (FileServer({"empty.zip": zipped_bytes({"notes.txt": b"hello"})}) as web,
          pytest.raises(ModelSourceError, match="the zip holds no .keras file")):
        fetch_model(web.url("empty.zip"), tmp_path / "cache")
    with pytest.raises(ModelSourceError, match="hf_hub:<owner>/<repo>"):
        fetch_model("hf_hub:no-slash", tmp_path / "cache")


def zipped_bytes(members):
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
