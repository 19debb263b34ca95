"""The paper's two networks: shapes, input scale, frozen backbones, flat graphs and weight files."""

import keras
import numpy as np
import pytest

from spiralarms.models.networks import WeightsFileError, build_model


def _backbone_weights(model):
    return [w for w in model.weights if "dense_head" not in w.path and "softmax" not in w.path]


def test_b0_takes_greyscale_and_outputs_probabilities():
    model = build_model("b0", 6, 32, "standard")
    assert model.input_shape == (None, 32, 32, 1)
    proba = model.predict(np.random.rand(3, 32, 32, 1).astype("float32"), verbose=0)
    assert proba.shape == (3, 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_b0_feeds_unit_range_without_keras_rescaling():
    # keras' EfficientNetB0 divides by 255 internally; ours must not (Zoobot's B0 took [0, 1]).
    model = build_model("b0", 6, 32, "xai")
    rescaling = next(la for la in model.layers if isinstance(la, keras.layers.Rescaling))
    x = np.full((1, 32, 32, 1), 0.5, "float32")
    np.testing.assert_allclose(rescaling(x), x)


def test_xai_graph_is_flat_and_reaches_top_conv():
    model = build_model("b0", 4, 32, "xai")
    # Flat: the backbone's layers are the classifier's own, not one nested Model.
    assert not any(isinstance(la, keras.Model) for la in model.layers)
    assert model.get_layer("top_conv").output.shape[-1] == 1280
    # block5a is reachable from the input: a sub-model to it builds and gives stride-16 maps.
    features = keras.Model(model.input, model.get_layer("block5a_activation").output)
    assert features(np.zeros((1, 32, 32, 1), "float32")).shape == (1, 2, 2, 480)
    # top_conv feeds the head: its output is what the pooling layer averages.
    assert model.get_layer("avg_pool_head").input is model.get_layer("top_activation").output
    assert not any(isinstance(la, keras.layers.RandomRotation) for la in model.layers)


def test_standard_mode_carries_augmentation_active_only_in_training():
    model = build_model("b0", 2, 32, "standard", augment={"rotation": 0.5, "flip": True,
                                                          "zoom": 0.2}, seed=1)
    augmenting = [la for la in model.layers if isinstance(
        la, (keras.layers.RandomRotation, keras.layers.RandomFlip, keras.layers.RandomZoom))]
    assert [type(la).__name__ for la in augmenting] == [
        "RandomRotation", "RandomFlip", "RandomFlip", "RandomZoom"]
    # The model's own augmentation stage: its input up to the last augmentation layer.
    stage = keras.Model(model.input, augmenting[-1].output)
    y, x = np.mgrid[:32, :32]
    off_centre = np.exp(-((y - 8.0) ** 2 + (x - 20.0) ** 2) / 8.0)  # no symmetry to hide behind
    images = np.repeat(off_centre[None, ..., None], 4, axis=0).astype("float32")
    np.testing.assert_array_equal(stage(images, training=False), images)
    np.testing.assert_array_equal(stage.predict_on_batch(images), images)  # as evaluate calls it
    trained = np.asarray(stage(images, training=True))
    assert trained.shape == images.shape
    changed = np.abs(trained - images).max(axis=(1, 2, 3))
    assert (changed > 0.1).all(), changed  # each image of the batch is moved
    # and the whole classifier is repeatable in inference.
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))


def test_weights_file_is_loaded_and_backbone_frozen(tmp_path):
    source = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                               input_shape=(32, 32, 1))
    for w in source.weights:  # make the file distinguishable from a fresh initialisation
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype(w.dtype) * 0.01)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)

    model = build_model("b0", 6, 32, "xai", weights=str(path))
    loaded = _backbone_weights(model)
    assert len(loaded) == len(source.weights)  # layer names differ per session; order does not
    for got, want in zip(loaded, source.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    trainable = {w.path for w in model.trainable_weights}
    assert trainable and all("dense_head" in p or "softmax" in p for p in trainable)


def test_missing_weights_file_names_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="models.b0.weights"):
        build_model("b0", 6, 32, "xai", weights=str(tmp_path / "nope.weights.h5"))


def test_a_weights_file_that_is_not_hdf5_is_named_with_what_it_is(tmp_path):
    text = tmp_path / "x.weights.h5"
    text.write_text("these are not weights\n")
    with pytest.raises(WeightsFileError) as error:
        build_model("b0", 6, 32, "xai", weights=str(text))
    message = str(error.value)
    assert (f"weights file {text} (config models.b0.weights) is not an HDF5/Keras weights "
            "file: it is a text file (starting 'these are not weights')") in message
    assert "save_weights('<name>.weights.h5')" in message and "convert-weights" in message


def test_from_scratch_trains_the_whole_backbone_with_given_bn_momentum():
    model = build_model("b0", 6, 32, "xai", bn_momentum=0.9)
    assert len(model.trainable_weights) > 100
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and all(la.momentum == 0.9 for la in bns)


def test_v2m_takes_rgb_and_freezes_batch_norm_in_xai_mode_when_pretrained(tmp_path):
    source = keras.applications.EfficientNetV2M(include_top=False, weights=None,
                                                input_shape=(32, 32, 3))
    path = tmp_path / "v2m.weights.h5"
    source.save_weights(path)
    model = build_model("v2m", 5, 32, "xai", weights=str(path))
    assert model.input_shape == (None, 32, 32, 3)
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and not any(la.trainable for la in bns)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    assert all(la.trainable for la in convs)
