"""Pretrained weights as pipeline inputs: config value -> downloads -> the file the backbone loads."""

import hashlib

import keras
import numpy as np
import pytest
from httpserver import FileServer

from spiralarms.acquire import ChecksumError
from spiralarms.models import weights
from spiralarms.models.networks import build_model
from spiralarms.models.weights import WeightsError, plan
from spiralarms.training import backbones

ZOOBOT = "hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0"


def test_null_trains_from_scratch():
    assert not plan("b0", None).pretrained
    assert plan("b0", None).matches_paper() == "no"


def test_local_keras_file_is_loaded_as_is():
    p = plan("b0", "weights/my_backbone.weights.h5")
    assert p.file == "weights/my_backbone.weights.h5" and not p.downloads and not p.state_dict


def test_local_state_dict_is_converted_into_results():
    p = plan("b0", "zoo/pytorch_model.bin", weights_dir="results/weights")
    assert p.state_dict == "zoo/pytorch_model.bin"
    assert p.file == "results/weights/pytorch_model.weights.h5"


def test_url_is_downloaded_once_under_a_sane_name_with_its_checksum():
    sha = "ab" * 32
    p = plan("b0", "https://example.org/files/my%20backbone.weights.h5?x=1", sha,
             weights_dir="w")
    assert p.file == "w/download/my backbone.weights.h5"
    assert p.downloads == {p.file: weights.Download(
        "https://example.org/files/my%20backbone.weights.h5?x=1", sha)}


def test_imagenet_is_keras_own_file_fetched_by_the_download_rule():
    p = plan("v2m", "imagenet", weights_dir="w")
    assert p.file == "w/download/efficientnetv2-m_notop.h5"
    assert p.matches_paper() == "yes"
    from keras.src.applications import efficientnet_v2

    (download,) = p.downloads.values()
    assert download.url == efficientnet_v2.BASE_WEIGHTS_PATH + "efficientnetv2-m_notop.h5"
    assert download.md5 == efficientnet_v2.WEIGHTS_HASHES["-m"][1]


def test_imagenet_for_greyscale_b0_is_refused_with_the_alternative():
    with pytest.raises(WeightsError, match="models.b0.weights=imagenet.*hf_hub:mwalmsley"):
        plan("b0", "imagenet")


def test_hf_hub_fetches_state_dict_and_config_from_hf_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    p = plan("b0", ZOOBOT, weights_dir="w")
    folder = "w/download/mwalmsley--zoobot-encoder-efficientnet_b0"
    assert p.downloads[f"{folder}/pytorch_model.bin"].url == (
        "http://127.0.0.1:9/mwalmsley/zoobot-encoder-efficientnet_b0/resolve/main/pytorch_model.bin")
    assert p.timm_config == f"{folder}/config.json"
    assert p.file == "w/mwalmsley--zoobot-encoder-efficientnet_b0.weights.h5"
    assert p.matches_paper() == "zoobot-v2"
    assert p.asked_by == f"config models.b0.weights={ZOOBOT!r}"  # named by conversion errors


@pytest.mark.parametrize("spec, message", [
    ("backbone.keras", "expected a Keras .weights.h5/.h5 file"),
    ("hf_hub:not a repo", "hf_hub:<owner>/<repo>"),
    ("https://example.org/", "does not end in a file name"),
])
def test_unusable_sources_name_the_key(spec, message):
    with pytest.raises(WeightsError, match="models.b0.weights") as error:
        plan("b0", spec)
    assert message in str(error.value)


def test_fetch_checks_keras_md5_and_removes_a_corrupt_file(tmp_path):
    data = b"not really weights" * 100
    with FileServer({"w.h5": data}) as server:
        good = weights.Download(server.url("w.h5"), md5=hashlib.md5(data).hexdigest())
        weights.fetch(good, tmp_path / "a.h5")
        assert (tmp_path / "a.h5").read_bytes() == data
        bad = weights.Download(server.url("w.h5"), md5="0" * 32)
        with pytest.raises(ChecksumError, match="md5"):
            weights.fetch(bad, tmp_path / "b.h5")
        assert not (tmp_path / "b.h5").exists()


def test_keras_imagenet_style_h5_file_loads_into_our_v2m(tmp_path):
    """Keras' ImageNet files are legacy .h5 weights of the no-top application model."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    source = keras.applications.EfficientNetV2M(include_top=False, weights=None,
                                                input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    for w in source.weights:
        w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.01 + 1)
    path = tmp_path / "efficientnetv2-m_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)

    model = build_model("v2m", 5, 32, "standard", weights=str(path))
    backbone = next(la for la in model.layers if isinstance(la, keras.Model))
    assert len(backbone.weights) == len(source.weights)
    for got, want in zip(backbone.weights, source.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_b0_from_scratch_on_real_data_is_said_in_words():
    from spiralarms.training.train import DEFAULTS, training_notes

    (note,) = training_notes("b0", None, DEFAULTS, synthetic=False)
    assert "from scratch" in note and "0.0001" in note and "hf_hub:mwalmsley" in note
    assert training_notes("b0", None, DEFAULTS, synthetic=True) == []
    assert training_notes("b0", "zoobot.weights.h5", DEFAULTS, synthetic=False) == []


def test_weights_record_names_source_file_and_checksum(tmp_path):
    from spiralarms.training.train import weights_record

    path = tmp_path / "zoobot.weights.h5"
    path.write_bytes(b"weights")
    record = weights_record("b0", str(path), {"spec": "zoo/zoobot.bin", "matches_paper": "no"})
    assert record == {"source": "zoo/zoobot.bin", "file": "zoobot.weights.h5",
                      "sha256": hashlib.sha256(b"weights").hexdigest(), "matches_paper": "no",
                      "paper": weights.PAPER_WEIGHTS["b0"]}


def test_experiment_source_is_that_experiments_backbone_and_it_trains_from_scratch_itself():
    p = backbones.plan("b0", "experiment:b0_6class_xai_s42")
    assert p.file == "results/experiments/b0_6class_xai_s42/backbone.weights.h5"
    assert backbones.for_experiment(p, "b0_merge45_xai_s42") == p
    assert not backbones.for_experiment(p, "b0_6class_xai_s42").pretrained
    assert p.matches_paper() == "no"
    with pytest.raises(WeightsError, match="trains v2m, not b0"):
        backbones.plan("b0", "experiment:v2m_6class_xai_s42")
    with pytest.raises(WeightsError, match="models.b0.weights.*is not of the form"):
        backbones.plan("b0", "experiment:my_run")


def test_the_training_layer_plans_the_other_sources_as_the_models_layer_does():
    for spec in (None, "imagenet", "w/a.weights.h5", "zoo/z.bin", "https://x.org/a.pth",
                 "hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0"):
        model = "v2m" if spec == "imagenet" else "b0"
        p = plan(model, spec, "0" * 64, "w")
        assert backbones.plan(model, spec, "0" * 64, "w") == p
        assert backbones.for_experiment(p, "b0_merge45_xai_s42_split7") == p
    for spec in ("", 3):
        with pytest.raises(WeightsError) as lower:
            plan("b0", spec)
        with pytest.raises(WeightsError) as upper:
            backbones.plan("b0", spec)
        assert str(upper.value) == str(lower.value)
    with pytest.raises(WeightsError, match="training.backbones.plan"):
        plan("b0", "experiment:b0_6class_xai_s42")  # names an experiment: not this layer's


@pytest.mark.parametrize("mode", ["xai", "standard"])
def test_heads_train_on_another_experiments_frozen_backbone_bit_identical(tmp_path, mode):
    from spiralarms.models.networks import save_backbone

    keras.utils.set_random_seed(0)
    source = build_model("b0", 6, 32, mode, bn_momentum=0.9, seed=1)
    rng = np.random.default_rng(0)
    for w in source.weights:  # a "trained" backbone, distinguishable from any fresh one
        w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.05 + (1 if "variance" in w.path
                                                                   else 0))
    source.save(tmp_path / "model.keras")
    backbone = save_backbone(tmp_path / "model.keras", tmp_path / "backbone.weights.h5")

    head = build_model("b0", 5, 32, mode, weights=str(backbone), seed=2)
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    before = {w.path: w.numpy().copy() for w in head.weights}
    x = rng.random((8, 32, 32, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 5, 8), 5)
    head.fit(x, y, epochs=2, batch_size=4, verbose=0)

    def backbone_of(model):
        return [w for w in model.weights
                if not any(h in w.path for h in ("head", "softmax", "seed_generator"))]

    for got, want in zip(backbone_of(head), backbone_of(source), strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())  # loaded, then frozen
    dense = [w for w in head.weights if "dense_head" in w.path]
    assert dense and not np.array_equal(dense[0].numpy(), before[dense[0].path])  # head trained


def test_on_another_split_heads_use_the_backbone_trained_on_that_split():
    p = backbones.plan("b0", "experiment:b0_6class_xai_s42")
    other = backbones.for_experiment(p, "b0_merge45_xai_s42_split7")
    assert other.file == "results/experiments/b0_6class_xai_s42_split7/backbone.weights.h5"
    assert not backbones.for_experiment(p, "b0_6class_xai_s42_split7").pretrained
