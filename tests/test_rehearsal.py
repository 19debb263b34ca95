"""A rehearsal of the real run: config/config.yaml itself, end to end, offline.

Every source keeps the URL the shipped config names. A server on 127.0.0.1 stands in for the
internet as an HTTPS proxy (tests/kaggle_server.py, with a throw-away CA): the Zooniverse bucket
serves the catalogue, Zenodo the mapping, GitHub the stellar-mass 7z, the Kaggle API and its
storage bucket the image zip for the real `kaggle` client (and Zenodo the same images as GZ2's
own zip, for a second, small call that builds only the image folder from it), Hugging Face Zoobot's encoder (a random
timm efficientnet_b0 in the published format) and Google's bucket a V2M file in the layout of Keras'
ImageNet file. Overridden: one source — `models.v2m.weights` names that file's URL instead of
`imagenet`, because `imagenet` is checked against Keras' published md5, which no stand-in can match
(the same download rule fetches it) — and sizes: which experiments (a select12, a merge45, an xai
and a V2M one), epochs, image size, the cap, bootstrap and XAI sample counts, and eager training steps.
"""

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from gz2_sources import (
    CATALOG_URL_PATH,
    KAGGLE_DATASET,
    MAPPING_URL_PATH,
    PHYSICAL_URL_PATH,
    build_gz2_sources,
)
from kaggle_server import images_zip
from timm_support import torch_and_timm

from spiralarms.synthetic.generate import IMAGE_DIR

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
REAL = ROOT / "config" / "config.yaml"
ZOOBOT = "mwalmsley/zoobot-encoder-efficientnet_b0"
IMAGENET_PATH = "tensorflow/keras-applications/efficientnet_v2/efficientnetv2-m_notop.h5"
# The one source override (see above): the URL `imagenet` stands for, without its md5.
SOURCES = {"models": {"v2m": {"weights": f"https://storage.googleapis.com/{IMAGENET_PATH}"}}}
# The credential-free image source the README offers instead of Kaggle: GZ2's own release on
# Zenodo, images/<asset_id>.jpg in one zip. Rehearsed by a second, small call that builds only the
# image folder in a work folder of its own (a second full run would double the test's time).
ZENODO_IMAGES = "record/3565489/files/images_gz2.zip"
ZENODO_SOURCE = {"data": {"images": f"https://zenodo.org/{ZENODO_IMAGES}"}}
IMAGE_FOLDER = "results/data/download/images"
EXPERIMENTS = ["b0_select12_standard_s42", "b0_merge45_xai_s42", "v2m_6class_standard_s42"]
# The config keys that are sizes (how much runs, not where from or how): the only keys besides the
# one weights source that the rehearsal may change (and `train.eager`: the same steps, without
# building their graph). `comparisons` names experiments of the grid.
SIZE_KEYS = ("experiments.", "selection.cap", "shards.size", "train.epochs", "train.image_size",
             "train.threads", "train.eager", "evaluate.bootstrap", "xai.per_class",
             "xai.smooth_samples", "xai.batch_size", "comparisons",
             "models.v2m.train.steps_per_epoch")
SIZES = {
    "experiments": {"models": ["b0"], "classes": ["select12"], "modes": ["standard"],
                    "seeds": [42], "extra": EXPERIMENTS[1:]},
    "selection": {"cap": 12},  # below five of the six classes the cuts leave: an overflow subset
    "shards": {"size": 64},
    # A few steps a training, without building their graph: the same computation, and most of
    # each job's time less (V2M's graph build was ~400 s of its 570 s training job, B0's ~25 s)
    "train": {"epochs": 1, "image_size": 32, "threads": 1, "eager": True},  # gpu=2 below
    "models": {"v2m": {"train": {"steps_per_epoch": 1}}},  # an eager V2M step: ~10 s of CPU
    "evaluate": {"bootstrap": 20},
    "xai": {"per_class": 1, "smooth_samples": 2, "batch_size": 4},
    # the real config's pairs name experiments of its full grid; these are of the rehearsal's
    "comparisons": [{"a": "b0_merge45_xai_s42", "b": "v2m_6class_standard_s42",
                     "classes": ["4"]},
                    {"a": "b0_select12_standard_s42", "b": "v2m_6class_standard_s42"}],
}


def zoobot_encoder() -> dict:
    """Zoobot's published files: timm's efficientnet_b0 state_dict and a timm config.json."""
    torch, timm = torch_and_timm()
    torch.manual_seed(0)
    net = timm.create_model("efficientnet_b0", pretrained=False, num_classes=0)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    config = {"architecture": "efficientnet_b0", "num_classes": 0, "num_features": 1280,
              "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.485, 0.456, 0.406],
                                 "std": [0.229, 0.224, 0.225]}}
    return {f"{ZOOBOT}/resolve/main/pytorch_model.bin": buffer.getvalue(),
            f"{ZOOBOT}/resolve/main/config.json": json.dumps(config).encode()}


def keras_imagenet_file(folder: Path) -> bytes:
    """A file in the layout of Keras' efficientnetv2-m_notop.h5 (legacy HDF5 weights)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = keras.applications.EfficientNetV2M(include_top=False, weights=None,
                                               input_shape=(32, 32, 3))
    path = folder / "efficientnetv2-m_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path.read_bytes()


def write_overrides(path, sources: dict = SOURCES) -> Path:
    """The file the rehearsal lists after config/config.yaml."""
    from spiralarms.config_layers import merge

    path.write_text(yaml.safe_dump(merge(copy.deepcopy(SIZES), sources)))  # as Snakemake would
    return path


def snakemake(workdir, overrides, *args, timeout=1500, prioritize=True):
    # V2M (about 150 s, the B0 jobs about 25 s each) first, so the B0 jobs run beside it
    # (a prioritized file is also a target: not for a call that builds one target).
    first = ["--prioritize", f"results/experiments/{EXPERIMENTS[-1]}/model.keras"]
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--cores", "2", *args,
               *(first if prioritize else []),
               "--resources", "gpu=2", "--configfile", str(REAL), str(overrides)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def failed_logs(work) -> str:
    """The ends of the rule logs that hold a traceback: what a failing run needs to show."""
    tails = []
    for log in sorted((work / "results" / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text or "Error" in text:
            tails.append(f"--- {log}\n{text[-3000:]}")
    return "\n".join(tails)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, kaggle_tls):
    from kaggle_server import KaggleServer

    base = tmp_path_factory.mktemp("rehearsal")
    sources = build_gz2_sources(base / "gz2", per_class=(28, 30, 28, 28, 28, 28), workers=2)
    overrides = write_overrides(base / "sizes.yaml")
    work = base / "work"
    work.mkdir()
    with KaggleServer(kaggle_tls) as server, pytest.MonkeyPatch.context() as monkeypatch:
        server.install(monkeypatch, base / "home")
        server.add_dataset(KAGGLE_DATASET, sources.images_zip)
        server.files.update({CATALOG_URL_PATH: sources.catalog.read_bytes(),
                             MAPPING_URL_PATH: sources.mapping.read_bytes(),
                             PHYSICAL_URL_PATH: sources.physical_archive.read_bytes(),
                             IMAGENET_PATH: keras_imagenet_file(base), **zoobot_encoder()})
        server.files[ZENODO_IMAGES] = images_zip(sources.folder / "synthetic" / IMAGE_DIR,
                                                 root="images")
        result = snakemake(work, overrides)
        assert result.returncode == 0, failed_logs(work) or result.stderr[-6000:]
        report = snakemake(work, overrides, "--report", "results/report.html")
        assert report.returncode == 0, report.stderr[-3000:]
        zenodo = base / "zenodo"  # the same config with data.images at Zenodo's zip
        zenodo.mkdir()
        from_zip = snakemake(zenodo, write_overrides(base / "zenodo.yaml",
                                                     {**SOURCES, **ZENODO_SOURCE}),
                             IMAGE_FOLDER, prioritize=False)
        assert from_zip.returncode == 0, failed_logs(zenodo) or from_zip.stderr[-6000:]
        hosts = {r.host for r in server.requests if r.method == "CONNECT"}
        zip_gets = [r for r in server.requests if r.path == f"/{ZENODO_IMAGES}"]
    return {"work": work, "results": work / "results", "sources": sources, "hosts": hosts,
            "zenodo": zenodo, "zip_gets": zip_gets}


def test_the_rehearsal_changes_only_sizes_and_one_weights_source(tmp_path):
    from spiralarms import config_layers

    # the config the rehearsal runs against the real run's, key by key as the workflow merges them
    real = dict(config_layers.leaves(config_layers.load([REAL])))
    rehearsed = dict(config_layers.leaves(
        config_layers.load([REAL, write_overrides(tmp_path / "sizes.yaml")])))
    changed = {key for key in real.keys() | rehearsed.keys() if real.get(key) != rehearsed.get(key)
               and not (real.get(key) == {} and key not in rehearsed)}  # {} filled: its leaves
    assert "models.v2m.weights" in changed  # the one source it must override (see above)
    not_sizes = {key for key in changed - {"models.v2m.weights"} if not key.startswith(SIZE_KEYS)}
    assert not not_sizes, f"the rehearsal must keep the real run's {sorted(not_sizes)}"
    assert real["data.images"] == f"kaggle:{KAGGLE_DATASET}"
    assert rehearsed["models.b0.weights"] == real["models.b0.weights"] == f"hf_hub:{ZOOBOT}"
    assert real["models.v2m.weights"] == "imagenet"


@pytest.mark.slow
def test_every_source_came_from_its_real_host(rehearsal):
    assert {"zooniverse-data.s3.amazonaws.com", "zenodo.org", "github.com", "api.kaggle.com",
            "storage.googleapis.com", "huggingface.co"} <= {h.split(":")[0]
                                                            for h in rehearsal["hosts"]}


@pytest.mark.slow
def test_zenodos_image_zip_gives_the_kaggle_images_without_an_account(rehearsal):
    from_kaggle, from_zenodo = (rehearsal[w] / IMAGE_FOLDER for w in ("work", "zenodo"))
    names = sorted(p.name for p in from_kaggle.glob("*.jpg"))
    assert len(names) == rehearsal["sources"].n_images
    assert sorted(p.name for p in from_zenodo.glob("*.jpg")) == names
    assert all((from_zenodo / n).read_bytes() == (from_kaggle / n).read_bytes() for n in names)
    assert [r.method for r in rehearsal["zip_gets"]] == ["GET"]  # fetched once, by the download rule
    manifest = json.loads((from_zenodo.parent / "images_gz2.zip.manifest.json").read_text())
    assert manifest["url"] == ZENODO_SOURCE["data"]["images"] and len(manifest["sha256"]) == 64
    # the zip call ran no Kaggle client: it built the image folder from the mapping and the zip
    assert not (rehearsal["zenodo"] / "results" / "experiments").exists()


@pytest.mark.slow
def test_labels_carry_stellar_mass_from_the_7z(rehearsal):
    labels = pd.read_parquet(rehearsal["results"] / "labels/labels.parquet")
    report = json.loads((rehearsal["results"] / "labels/selection_report.json").read_text())
    assert labels["log_mass"].notna().sum() == report["physical"]["matched"] > 0
    assert set(labels["subset"]) == {"train", "val", "overflow"}  # the notebook: no test set


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_has_metrics_on_each_listed_subset_and_figures(rehearsal, experiment):
    folder = rehearsal["results"] / "experiments" / experiment
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["subsets"]) == {"val", "overflow"} and metrics["subset"] == "val"
    assert metrics["preprocessing"] == {"image_size": 32, "crop_size": 224}
    training = metrics["training"]
    assert (training["precision"], training["batch_size"]) == ("float32", 16)
    source = training["weights"]["source"]
    assert source == (f"hf_hub:{ZOOBOT}" if experiment.startswith("b0")
                      else SOURCES["models"]["v2m"]["weights"])
    assert len(training["weights"]["sha256"]) == 64
    figures = {p.name for p in (folder / "figures").glob("*.png")}
    assert {"confusion_val.png", "confusion_overflow_normalised.png"} <= figures
    assert any(name.startswith("stellar_mass_") for name in figures)


@pytest.mark.slow
def test_b0_is_the_papers_recipe_the_zoobot_backbone_stays_frozen(rehearsal):
    import keras

    from spiralarms.models.networks import build_model

    weights = rehearsal["results"] / "weights" / f"{ZOOBOT.replace('/', '--')}.weights.h5"
    for experiment in EXPERIMENTS[:2]:
        trained = keras.models.load_model(
            rehearsal["results"] / "experiments" / experiment / "model.keras")
        start = build_model("b0", trained.output_shape[-1], 32, experiment.split("_")[2],
                            weights=str(weights))
        head = ("dense_head", "softmax_output")
        assert all(any(h in w.path for h in head) for w in trained.trainable_weights)
        pairs = [(a, b) for a, b in zip(trained.weights, start.weights)
                 if not any(h in a.path for h in (*head, "seed_generator"))]
        assert len(pairs) > 300
        for got, want in pairs:  # bit-identical to the converted encoder: nothing moved
            np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.slow
def test_xai_explains_the_xai_experiment(rehearsal):
    from PIL import Image

    from spiralarms.xai.maps import choose_examples

    experiments = rehearsal["results"] / "experiments"
    assert not any((experiments / e / "xai").exists() for e in EXPERIMENTS if "_xai_" not in e)
    folder = experiments / "b0_merge45_xai_s42"
    card = json.loads((folder / "model.json").read_text())
    assert (card["mode"], card["classes"]) == ("xai", "merge45")
    xai = json.loads((folder / "xai" / "xai.json").read_text())
    assert xai["subset"] == "val"
    # the galaxies explained are the ones this experiment's own val predictions choose
    examples = choose_examples(pd.read_parquet(folder / "predictions" / "val.parquet"),
                               per_class=SIZES["xai"]["per_class"],
                               class_names=card["class_names"])
    assert (xai["n_correct"], xai["n_misclassified"]) == (
        (examples["kind"] == "correct").sum(), (examples["kind"] == "misclassified").sum())
    assert xai["n_maps"] == xai["n_correct"] + 2 * xai["n_misclassified"] > 0
    figures = [Path(f) for f in xai["files"] if f.endswith(".png")]
    assert {f.name.split(".")[0].split("_")[0] for f in figures} >= {"feature", "xai"}
    for figure in figures:
        pixels = np.asarray(Image.open(folder / "xai" / figure.name).convert("L"), dtype=float)
        assert min(pixels.shape) > 100 and pixels.std() > 5, figure  # a drawn figure, not blank


@pytest.mark.slow
def test_summary_comparison_and_report(rehearsal):
    table = pd.read_csv(rehearsal["results"] / "summary/metrics.csv")
    assert sorted(zip(table["experiment"], table["subset"])) == sorted(
        (e, s) for e in EXPERIMENTS for s in ("overflow", "val"))
    assert set(table.loc[table["model"] == "b0", "paper_weights"]) == {"zoobot-v2"}
    assert set(table.loc[table["model"] == "v2m", "paper_weights"]) == {"no"}  # a stand-in
    assert (rehearsal["results"] / "summary/comparison.md").exists()
    comparisons = pd.read_csv(rehearsal["results"] / "summary/comparisons.csv")
    assert len(comparisons) and comparisons["p_value"].between(0, 1).any()
    report = rehearsal["results"] / "report.html"
    assert report.stat().st_size > 100_000
