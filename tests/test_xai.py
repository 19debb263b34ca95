"""XAI maps, example choice and figures on tiny untrained EfficientNetB0 models (32 px).

Untrained models can give all-zero GradCAM++ maps, so the tests check shapes, ranges, agreement
between computation paths and written files, never that a map highlights something.
"""

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from spiralarms.plotting import display_image
from spiralarms.xai import maps as xai_maps
from spiralarms.xai import plots as xai_plots

SIZE = 32
N_CLASSES = 3
NAMES = ["1", "2", "3+"]


def flat_b0(channels, size=SIZE, n_classes=N_CLASSES):
    """The lead's model shape: B0 backbone, GAP, Dense(1024), softmax head."""
    keras.utils.set_random_seed(0)
    base = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(size, size, channels)
    )
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dense(1024, activation="relu")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="softmax_output")(x)
    return keras.Model(base.input, out)


@pytest.fixture(scope="module")
def grey_model():
    return flat_b0(1)


@pytest.fixture(scope="module")
def grey_images():
    return np.random.default_rng(1).random((3, SIZE, SIZE, 1)).astype(np.float32)


def test_gradcam_maps_have_image_size_and_unit_range(grey_model, grey_images):
    cams = xai_maps.gradcam_plus_plus(grey_model, grey_images, [0, 1, 2], batch_size=2)
    assert cams.shape == (3, SIZE, SIZE)
    assert cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0


def test_gradcam_batching_does_not_mix_images(grey_model, grey_images):
    together = xai_maps.gradcam_plus_plus(grey_model, grey_images, [2, 0, 1], batch_size=3)
    alone = xai_maps.gradcam_plus_plus(grey_model, grey_images, [2, 0, 1], batch_size=1)
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_smoothgrad_compiled_path_matches_tf_keras_vis(channels):
    model = flat_b0(channels)
    images = np.random.default_rng(2).random((3, SIZE, SIZE, channels)).astype(np.float32)
    if channels == 3:
        images *= 255.0  # V2M-style RGB input, 0-255
    kwargs = {"samples": 3, "noise": 0.2, "batch_size": 2, "seed": 7}
    compiled = xai_maps.smoothgrad(model, images, [0, 2, 1], method="compiled", **kwargs)
    library = xai_maps.smoothgrad(model, images, [0, 2, 1], method="tf-keras-vis", **kwargs)
    assert compiled.shape == (3, SIZE, SIZE)
    assert compiled.min() >= 0.0 and compiled.max() <= 1.0
    assert np.abs(compiled - library).max() < 1e-5


def test_smoothgrad_noise_depends_on_seed(grey_model, grey_images):
    first = xai_maps.smoothgrad(grey_model, grey_images, [0, 1, 2], samples=2, seed=0)
    again = xai_maps.smoothgrad(grey_model, grey_images, [0, 1, 2], samples=2, seed=0)
    other = xai_maps.smoothgrad(grey_model, grey_images, [0, 1, 2], samples=2, seed=1)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_smoothgrad_without_noise_is_the_scaled_logit_gradient(grey_model, grey_images):
    """One noiseless sample must be |d logit_c / d x|, the score on the pre-softmax output."""
    maps = xai_maps.smoothgrad(grey_model, grey_images, [1, 1, 0], samples=1, noise=0.0)
    logit_model = keras.Model(grey_model.input, grey_model.get_layer("softmax_output").input)
    head = grey_model.get_layer("softmax_output")
    x = tf.constant(grey_images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.matmul(logit_model(x), head.kernel) + head.bias
        score = tf.gather(logits, [1, 1, 0], axis=1, batch_dims=1)
    expected = xai_maps.scale_to_unit(np.abs(tape.gradient(score, x).numpy()).max(axis=-1))
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_smoothgrad_leaves_callers_numpy_random_state_alone(grey_model, grey_images):
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    xai_maps.smoothgrad(grey_model, grey_images[:1], [0], samples=1, method="tf-keras-vis")
    assert np.random.random() == expected


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: xai_maps.gradcam_plus_plus(m, x, [0, 1]), "one target class per image"),
        (lambda m, x: xai_maps.gradcam_plus_plus(m, x, [0, 1, 5]), "outside the model's 3 outputs"),
        (lambda m, x: xai_maps.gradcam_plus_plus(m, x[0], [0]), "add a batch axis"),
        (lambda m, x: xai_maps.gradcam_plus_plus(m, x, [0, 1, 2], layer="top_cnv"), "no layer"),
        (lambda m, x: xai_maps.smoothgrad(m, x, [0, 1, 2], method="fast"), "unknown SmoothGrad"),
    ],
)
def test_bad_arguments_are_named(grey_model, grey_images, call, message):
    with pytest.raises(ValueError, match=message):
        call(grey_model, grey_images)


def test_feature_maps_of_the_default_b0_layers(grey_model, grey_images):
    layers = xai_maps.default_feature_layers(grey_model)
    assert layers == xai_maps.FEATURE_LAYERS["b0"]
    maps = xai_maps.feature_maps(grey_model, grey_images[0], layers)
    # 32 px input: stride 4, 8 and 16 at blocks 2a, 3a and 5a; 6x expansion of 16, 24, 80.
    assert [m.shape for m in maps] == [(8, 8, 96), (4, 4, 144), (2, 2, 480)]


def test_default_feature_layers_recognise_v2m_names():
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for name in xai_maps.FEATURE_LAYERS["v2m"]:
        x = keras.layers.Conv2D(2, 1, name=name)(x)
    model = keras.Model(inputs, x)
    assert xai_maps.default_feature_layers(model) == xai_maps.FEATURE_LAYERS["v2m"]
    with pytest.raises(ValueError, match="pass the feature-map layers explicitly"):
        xai_maps.default_feature_layers(keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)))


def hand_made_predictions(true, pred, p_pred, as_names=False):
    """Rows with the given true/pred classes; p_pred goes to the predicted class."""
    probs = np.full((len(true), N_CLASSES), np.nan)
    for i, (c, p) in enumerate(zip(pred, p_pred)):
        probs[i] = (1.0 - p) / (N_CLASSES - 1)
        probs[i, c] = p
    frame = pd.DataFrame(
        {
            "id": [f"g{i}" for i in range(len(true))],
            "true": [NAMES[t] for t in true] if as_names else true,
            "pred": [NAMES[c] for c in pred] if as_names else pred,
        }
    )
    for k, name in enumerate(NAMES):
        frame[f"prob_{name}"] = probs[:, k]
    return frame


@pytest.mark.parametrize("as_names", [False, True])
def test_choose_examples_takes_most_confident_per_class(as_names):
    true = [0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 1]
    pred = [0, 0, 0, 1, 1, 2, 1, 2, 1, 0, 2]
    p = [0.5, 0.9, 0.7, 0.6, 0.8, 0.95, 0.6, 0.9, 0.4, 0.7, 0.5]
    frame = hand_made_predictions(true, pred, p, as_names)
    chosen = xai_maps.choose_examples(frame, per_class=2)
    correct = chosen[chosen["kind"] == "correct"]
    wrong = chosen[chosen["kind"] == "misclassified"]
    assert correct["id"].tolist() == ["g1", "g2", "g4", "g3", "g5"]
    assert wrong["id"].tolist() == ["g7", "g6", "g10", "g9"]
    assert wrong["pred_index"].tolist() == [2, 1, 2, 0]
    np.testing.assert_allclose(chosen["p"], [0.9, 0.7, 0.8, 0.6, 0.95, 0.9, 0.6, 0.5, 0.7])


def test_choose_examples_names_bad_columns():
    frame = hand_made_predictions([0, 1], [0, 1], [0.9, 0.8])
    with pytest.raises(ValueError, match="lack column"):
        xai_maps.choose_examples(frame.drop(columns="pred"))
    with pytest.raises(ValueError, match=r"'true' holds \['7'\]"):
        xai_maps.choose_examples(frame.assign(true=["1", "7"]))


def test_channel_mosaic_scales_each_channel_and_blanks_missing_ones():
    activation = np.stack([np.arange(16.0).reshape(4, 4) * k for k in (1, 5, 0)], axis=-1)
    mosaic = xai_plots.channel_mosaic(activation, (2, 2))
    assert mosaic.shape == (2 * 4 + 1, 2 * 4 + 1)
    np.testing.assert_allclose(mosaic[:4, :4], mosaic[:4, 5:])  # scale-free per channel
    assert np.nanmax(mosaic) == 1.0
    assert np.all(mosaic[5:, :4] == 0.0)  # a constant channel is drawn flat
    assert np.isnan(mosaic[5:, 5:]).all()  # no fourth channel


def test_display_image_takes_both_input_scales():
    grey = np.full((4, 4, 1), 0.5, np.float32)
    rgb = np.full((4, 4, 3), 127.5, np.float32)
    assert display_image(grey).shape == (4, 4)
    np.testing.assert_allclose(display_image(rgb), 0.5)


@pytest.mark.parametrize("with_errors", [True, False])
def test_explain_experiment_writes_figures(grey_model, tmp_path, with_errors):
    images = np.random.default_rng(3).random((5, SIZE, SIZE, 1)).astype(np.float32)
    pred = [0, 1, 2, 0, 2] if with_errors else [0, 1, 2, 0, 1]
    frame = hand_made_predictions([0, 1, 2, 0, 1], pred, [0.9, 0.8, 0.7, 0.6, 0.5])
    examples = xai_maps.choose_examples(frame, per_class=2)
    result = xai_maps.explain_experiment(
        grey_model, images, examples, NAMES, tmp_path, layers=None, samples=2, batch_size=4
    )
    written = {name for name in (p.name for p in tmp_path.iterdir())}
    expected = {"xai_correct.png", "xai_correct.pdf", "feature_maps.png", "feature_maps.pdf"}
    if with_errors:
        expected |= {"xai_misclassified.png", "xai_misclassified.pdf"}
    assert written == expected
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)
    assert sorted(result["files"]) == sorted(str(tmp_path / name) for name in expected)
    assert result["n_maps"] == (6 if with_errors else 5)  # errors get a map per class
    assert result["gradcam_s_per_image"] > 0 and result["smoothgrad_s_per_image"] > 0
    assert bool(result["notes"]) != with_errors
