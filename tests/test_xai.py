"""XAI maps, example choice and figures on the real `build_model(..., "xai")` B0, trained for a
few steps on stripe patterns.

GradCAM++ runs at 64 px: `top_conv` has stride 32, so at 32 px it is one pixel and every map is
flat (all zeros once scaled). Those tests explain each image's predicted class, whose GradCAM++
map is not blank; every map test checks that the maps are finite and not blank before it compares
computation paths. SmoothGrad, feature maps and figures run at 32 px (cheaper).
"""

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from spiralarms.data.channels import CHANNELS
from spiralarms.models.networks import build_model
from spiralarms.plotting import display_image
from spiralarms.xai import maps as xai_maps
from spiralarms.xai import plots as xai_plots

SIZE = 32
CAM_SIZE = 64
N_CLASSES = 3
NAMES = ["1", "2", "3+"]


def stripes(n, size=SIZE, channels=1, seed=0):
    """n images (cycling through 3 classes: horizontal, vertical, diagonal stripes) in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    images, classes = [], []
    for i in range(n):
        phase = rng.uniform(0, 2 * np.pi)
        wave = [np.sin(y / 3 + phase), np.sin(x / 3 + phase), np.sin((x + y) / 3 + phase)][i % 3]
        grey = np.clip(0.5 + 0.4 * wave + rng.normal(0, 0.05, wave.shape), 0, 1)
        images.append(np.repeat(grey[..., None], channels, axis=-1))
        classes.append(i % 3)
    return np.array(images, np.float32), np.array(classes)


def trained_xai_model(size=SIZE, scale=1.0):
    """build_model(..., "xai") after three eager Adam steps on 12 stripe images."""
    keras.utils.set_random_seed(0)
    model = build_model("b0", N_CLASSES, size, "xai")
    images, classes = stripes(12, size, model.input_shape[-1])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", run_eagerly=True)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(images * scale, keras.utils.to_categorical(classes, N_CLASSES), batch_size=4,
              epochs=1, verbose=0)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    return model


def assert_not_blank(maps, n, size=SIZE):
    """n finite maps of the image size, each scaled to span [0, 1] (not all zeros, not flat)."""
    maps = np.asarray(maps)
    assert maps.shape == (n, size, size) and maps.dtype == np.float32
    assert np.isfinite(maps).all()
    np.testing.assert_allclose(maps.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0, atol=1e-6)
    assert (maps.std(axis=(1, 2)) > 0.05).all(), maps.std(axis=(1, 2))


@pytest.fixture(scope="module")
def grey_model():
    return trained_xai_model()


@pytest.fixture(scope="module")
def grey_images():
    return stripes(3, seed=1)[0]


@pytest.fixture(scope="module")
def cam_model():
    return trained_xai_model(CAM_SIZE)


@pytest.fixture(scope="module")
def cam_images(cam_model):
    """Three images and the class each is predicted as: the target whose GradCAM++ map has
    evidence (an unexplained class can have none at all after a few steps)."""
    images = stripes(3, CAM_SIZE, seed=1)[0]
    return images, cam_model.predict(images, verbose=0).argmax(axis=1)


def test_gradcam_batching_does_not_mix_images(cam_model, cam_images):
    order = [2, 0, 1]
    images, predicted = (a[order] for a in cam_images)
    together = xai_maps.gradcam_plus_plus(cam_model, images, predicted, batch_size=3)
    alone = xai_maps.gradcam_plus_plus(cam_model, images, predicted, batch_size=1)
    assert_not_blank(together, 3, CAM_SIZE)
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_smoothgrad_compiled_path_matches_tf_keras_vis(grey_model, channels, monkeypatch):
    if channels == 1:
        model, scale = grey_model, 1.0
    else:  # RGB 0-255 as V2M takes it: build_model's B0 on three channels (a V2M takes minutes)
        monkeypatch.setitem(CHANNELS, "b0", 3)
        model, scale = trained_xai_model(scale=255.0), 255.0
    assert model.input_shape == (None, SIZE, SIZE, channels)
    images = stripes(3, channels=channels, seed=2)[0] * scale
    kwargs = {"samples": 3, "noise": 0.2, "batch_size": 2, "seed": 7}
    compiled = xai_maps.smoothgrad(model, images, [0, 2, 1], method="compiled", **kwargs)
    library = xai_maps.smoothgrad(model, images, [0, 2, 1], method="tf-keras-vis", **kwargs)
    assert_not_blank(compiled, 3)
    assert np.abs(compiled - library).max() < 1e-5


def test_smoothgrad_noise_depends_on_seed_and_a_kept_one_traces_once(grey_model, grey_images):
    smooth = xai_maps.SmoothGrad(grey_model)  # as the xai stage keeps it for its two uses
    first = smooth(grey_images, [0, 1, 2], samples=2, seed=0)
    other = smooth(grey_images, [0, 1, 2], samples=2, seed=1)
    again = smooth(grey_images, [0, 1, 2], samples=2, seed=0)
    assert_not_blank(first, 3)
    np.testing.assert_array_equal(first, again)  # each call draws its own seed's noise
    assert np.abs(first - other).max() > 1e-3
    assert smooth._mean_abs_gradient.experimental_get_tracing_count() == 1


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
    assert_not_blank(maps, 3)
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
    assert all(np.isfinite(m).all() and np.abs(m).max() > 0 for m in maps)


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
