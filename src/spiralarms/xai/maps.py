"""Explanations for a trained arm-count classifier: GradCAM++, SmoothGrad and feature maps.

Follows the paper's notebook (tf-keras-vis 0.8.7, softmax replaced by a linear output, score =
output[:, class]) with two changes: SmoothGrad has a compiled batched path (same maps; on 2 CPU
cores at 128 px about 0.2 s per image once traced, against 4-5 s for tf-keras-vis's one eager pass
per noise sample), and a misclassified galaxy is explained for both its predicted and its true
class (the notebook explained the true class only, bug B10). Figures are drawn by `spiralarms.xai.plots`.
"""

import contextlib
import functools
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from spiralarms.models.networks import FEATURE_LAYERS
from spiralarms.xai import plots

with warnings.catch_warnings():
    # tf-keras-vis 0.8.7 imports zoom from scipy's deprecated namespace; nothing to act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="tf_keras_vis")
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

SMOOTHGRAD_METHODS = ("compiled", "tf-keras-vis")
PROB_PREFIX = "prob_"


# ---------------------------------------------------------------- input checks


def _check_images(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(
            f"images must be a batch shaped (N, H, W, C), got shape {images.shape}; "
            "add a batch axis with images[None] for a single galaxy"
        )
    return images


def _check_class_indices(model, images, class_indices) -> np.ndarray:
    class_indices = np.asarray(class_indices, dtype=np.int32).reshape(-1)
    n_classes = int(model.outputs[0].shape[-1])
    if len(class_indices) != len(images):
        raise ValueError(
            f"got {len(images)} images but {len(class_indices)} class indices; "
            "give one target class per image"
        )
    bad = class_indices[(class_indices < 0) | (class_indices >= n_classes)]
    if len(bad):
        raise ValueError(
            f"class indices {sorted(set(bad.tolist()))} are outside the model's "
            f"{n_classes} outputs (valid: 0..{n_classes - 1})"
        )
    return class_indices


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@contextlib.contextmanager
def _quiet_keras_structure_warning():
    # Keras 3 warns on every tf-keras-vis call that the input list does not match the
    # model's input structure; the call is still correct, so the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
        yield


def scale_to_unit(maps) -> np.ndarray:
    """Min-max scale each map (N, H, W) to [0, 1]; a constant map becomes all zeros.

    tf-keras-vis's own normalise adds 1e-7 to the range, which squashes the tiny gradients of
    an untrained or saturated model towards 0 instead of showing where they are largest.
    """
    maps = np.asarray(maps, dtype=np.float64)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    return scaled.astype(np.float32)


# ---------------------------------------------------------------- GradCAM++


def gradcam_plus_plus(model, images, class_indices, layer="top_conv", batch_size=8) -> np.ndarray:
    """GradCAM++ maps (N, H, W) in [0, 1] for `class_indices`, taken at conv layer `layer`.

    `top_conv` is the layer the notebook's `penultimate_layer=-1` resolved to (the last Conv).
    Upsampled by tf-keras-vis (linear zoom), then scaled by `scale_to_unit`. An untrained model
    can give an all-zero map (the ReLU removes every negative weight).
    """
    images = _check_images(images)
    class_indices = _check_class_indices(model, images, class_indices)
    _get_layer(model, layer)
    gradcam = GradcamPlusPlus(model, model_modifier=ReplaceToLinear(), clone=True)
    maps = []
    with _quiet_keras_structure_warning():
        for part in _batches(len(images), batch_size):
            cam = gradcam(
                CategoricalScore(class_indices[part].tolist()),
                images[part],
                penultimate_layer=layer,
                normalize_cam=False,
            )
            maps.append(np.asarray(cam, dtype=np.float32).reshape(-1, *images.shape[1:3]))
    return scale_to_unit(np.concatenate(maps))


# ---------------------------------------------------------------- SmoothGrad


def smoothgrad(
    model,
    images,
    class_indices,
    samples=20,
    noise=0.2,
    batch_size=8,
    seed=0,
    method="compiled",
) -> np.ndarray:
    """SmoothGrad maps (N, H, W) in [0, 1] of `model`, once: `SmoothGrad(model)(...)`, whose
    docstring says what the maps are. To explain several sets of images with one model, keep a
    `SmoothGrad` and call it: the model is cloned and the gradient compiled once."""
    return SmoothGrad(model)(images, class_indices, samples, noise, batch_size, seed, method)


class SmoothGrad:
    """SmoothGrad of one model. The linear copy (`linear_output_copy`) and its compiled gradient
    are built once and kept, so a second call (the xai stage's attribution measure, after its
    figures) neither clones nor traces again (~10 s of CPU for B0). Both are made at the first
    call; the copy holds the model's weights as they were then: make another after training
    further."""

    def __init__(self, model):
        self.model = model

    @functools.cached_property
    def linear_model(self):
        return linear_output_copy(self.model)

    @functools.cached_property
    def _mean_abs_gradient(self):
        return compile_mean_abs_gradient(self.linear_model)

    def __call__(self, images, class_indices, samples=20, noise=0.2, batch_size=8, seed=0,
                 method="compiled") -> np.ndarray:
        """Maps (N, H, W) in [0, 1]: mean |gradient| of the class's linear score over `samples`
        noisy copies (sigma = noise * (max - min) of each image), max over channels, scaled to
        [0, 1] per image by `scale_to_unit`.

        Both methods draw the same noise (seeded by `seed`; it depends on `batch_size` too
        because tf-keras-vis draws it for a whole batch at once), so they give the same maps.
        "compiled" runs all samples of a batch in one tf.function; "tf-keras-vis" is the
        library's `Saliency(smooth_samples=...)` as in the notebook (one eager pass per sample,
        slow).
        """
        if method not in SMOOTHGRAD_METHODS:
            raise ValueError(
                f"unknown SmoothGrad method {method!r}; choose one of {SMOOTHGRAD_METHODS}"
            )
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        images = _check_images(images)
        class_indices = _check_class_indices(self.model, images, class_indices)
        if method == "tf-keras-vis":
            grads = _smoothgrad_tf_keras_vis(self.linear_model, images, class_indices, samples,
                                             noise, batch_size, seed)
        else:
            grads = _smoothgrad_compiled(self._mean_abs_gradient, images, class_indices, samples,
                                         noise, batch_size, seed)
        return scale_to_unit(np.max(grads, axis=-1))


def linear_output_copy(model):
    """A clone of `model` whose softmax is replaced by a linear output (tf-keras-vis
    ReplaceToLinear), so scores are logits that do not saturate."""
    return Saliency(model, model_modifier=ReplaceToLinear(), clone=True).model


def _smoothgrad_tf_keras_vis(linear_model, images, class_indices, samples, noise, batch_size, seed):
    """Mean |gradient| (N, H, W, C) from tf-keras-vis, which draws its noise from numpy's
    global generator: seed it for the call and put the caller's state back afterwards."""
    saliency = Saliency(linear_model)  # no modifier: uses the linear copy as it is
    state = np.random.get_state()
    np.random.seed(seed)
    grads = []
    try:
        with _quiet_keras_structure_warning():
            for part in _batches(len(images), batch_size):
                grads.append(
                    np.asarray(
                        saliency(
                            CategoricalScore(class_indices[part].tolist()),
                            images[part],
                            smooth_samples=samples,
                            smooth_noise=noise,
                            keepdims=True,
                            normalize_map=False,
                        )
                    ).reshape(-1, *images.shape[1:])
                )
    finally:
        np.random.set_state(state)
    return np.concatenate(grads)


def smoothgrad_noisy_copies(batch, samples, noise, rng) -> np.ndarray:
    """The noisy inputs (samples, B, H, W, C) that tf-keras-vis 0.8.7 builds for one batch,
    drawn from `rng` (a numpy RandomState) in the same order and with the same float rounding."""
    batch = np.asarray(batch, dtype=np.float32)
    spread = batch.max(axis=(1, 2, 3), keepdims=True) - batch.min(axis=(1, 2, 3), keepdims=True)
    sigma = (np.float32(noise) * spread).astype(np.float64)
    draws = rng.standard_normal((samples, *batch.shape))
    return batch[None] + (sigma[None] * draws).astype(np.float32)


def _smoothgrad_compiled(mean_abs_gradient, images, class_indices, samples, noise, batch_size,
                         seed):
    """Mean |gradient| (N, H, W, C): one call of the compiled `mean_abs_gradient` per batch runs
    all noise samples."""
    rng = np.random.RandomState(seed)
    grads = []
    for part in _batches(len(images), batch_size):
        noisy = smoothgrad_noisy_copies(images[part], samples, noise, rng)
        grads.append(mean_abs_gradient(tf.constant(noisy), tf.constant(class_indices[part])))
    return np.concatenate([g.numpy() for g in grads])


def compile_mean_abs_gradient(linear_model):
    """tf.function (noisy (S, B, H, W, C), class_indices (B,)) -> mean |d score / d x| (B, H, W, C)."""

    @tf.function(reduce_retracing=True)
    def mean_abs_gradient(noisy, class_indices):
        # Sum in sample order, in float32, like tf-keras-vis, so the maps agree to rounding.
        total = tf.zeros_like(noisy[0])
        for i in tf.range(tf.shape(noisy)[0]):
            x = noisy[i]
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = linear_model(x, training=False)
                score = tf.gather(logits, class_indices, axis=1, batch_dims=1)
            total += tf.abs(tape.gradient(score, x))
        return total / tf.cast(tf.shape(noisy)[0], total.dtype)

    return mean_abs_gradient


# ---------------------------------------------------------------- feature maps


def _get_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        near = [layer.name for layer in model.layers if name.split("_")[0] in layer.name]
        raise ValueError(
            f"model {model.name!r} has no layer {name!r}"
            + (f"; layers of that block: {near}" if near else "")
            + "; pass an existing layer name"
        ) from None


def default_feature_layers(model) -> tuple:
    """The notebook's lower/middle/upper layers for whichever backbone `model` contains."""
    names = {layer.name for layer in model.layers}
    for layers in FEATURE_LAYERS.values():
        if names.issuperset(layers):
            return layers
    raise ValueError(
        f"model {model.name!r} is neither an EfficientNetB0 nor a V2M flat model "
        f"(looked for {FEATURE_LAYERS}); pass the feature-map layers explicitly"
    )


def feature_maps(model, image, layers) -> list:
    """Activations (H_l, W_l, C_l) of each named layer for one image (H, W, C)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"feature_maps takes one image shaped (H, W, C), got {image.shape}")
    outputs = [_get_layer(model, name).output for name in layers]
    probe = keras.Model(model.input, outputs)
    maps = probe(image[None], training=False)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    return [np.asarray(m)[0] for m in maps]


# ---------------------------------------------------------------- which galaxies to explain


def class_names_from(predictions: pd.DataFrame) -> list:
    names = [c[len(PROB_PREFIX) :] for c in predictions.columns if c.startswith(PROB_PREFIX)]
    if not names:
        raise ValueError(
            f"predictions have no '{PROB_PREFIX}<class>' columns (columns: "
            f"{list(predictions.columns)}); write one softmax-probability column per class"
        )
    return names


def _class_positions(values: pd.Series, names: list, column: str) -> np.ndarray:
    """Class indices from a column holding indices (numbers) or class names (strings)."""
    if pd.api.types.is_numeric_dtype(values):
        positions = values.to_numpy().astype(int)
        bad = sorted(set(positions[(positions < 0) | (positions >= len(names))].tolist()))
    else:
        lookup = {name: i for i, name in enumerate(names)}
        positions = values.astype(str).map(lookup)
        bad = sorted(set(values[positions.isna()].astype(str)))
        positions = positions.fillna(-1).to_numpy().astype(int)
    if bad:
        raise ValueError(
            f"predictions column {column!r} holds {bad}, which are not classes {names}; "
            "use class indices or the names of the prob_ columns"
        )
    return positions


def label_predictions(predictions: pd.DataFrame, class_names=None) -> pd.DataFrame:
    """`predictions` plus true_index, pred_index and p (softmax probability of the prediction)."""
    missing = [c for c in ("true", "pred") if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions lack column(s) {missing} (columns: {list(predictions.columns)}); "
            "they need 'true', 'pred' and one 'prob_<class>' column per class"
        )
    names = list(class_names) if class_names is not None else class_names_from(predictions)
    absent = [PROB_PREFIX + n for n in names if PROB_PREFIX + n not in predictions.columns]
    if absent:
        raise ValueError(f"predictions lack probability column(s) {absent}")
    probs = predictions[[PROB_PREFIX + n for n in names]].to_numpy(dtype=float)
    pred_index = _class_positions(predictions["pred"], names, "pred")
    return predictions.assign(
        true_index=_class_positions(predictions["true"], names, "true"),
        pred_index=pred_index,
        p=probs[np.arange(len(predictions)), pred_index],
    )


def choose_examples(predictions: pd.DataFrame, per_class=2, class_names=None) -> pd.DataFrame:
    """The galaxies to explain, in class order: per true class the `per_class` most confident
    correct ones (kind "correct") and the `per_class` most confident misclassified ones
    (kind "misclassified"). Keeps the input's index and columns and adds true_index,
    pred_index, p and kind."""
    labelled = label_predictions(predictions, class_names)
    correct = labelled["true_index"] == labelled["pred_index"]
    chosen = []
    for kind, mask in (("correct", correct), ("misclassified", ~correct)):
        top = (
            labelled[mask]
            .sort_values(["true_index", "p"], ascending=[True, False], kind="stable")
            .groupby("true_index", sort=True)
            .head(per_class)
        )
        chosen.append(top.assign(kind=kind))
    return pd.concat(chosen)


def choose_feature_example(examples: pd.DataFrame, class_index=2):
    """Index label of the galaxy whose feature maps are shown: the notebook used the most
    confident correct 3-arm galaxy (class index 2); fall back to any correct, then any."""
    for candidates in (
        examples[(examples["kind"] == "correct") & (examples["true_index"] == class_index)],
        examples[examples["kind"] == "correct"],
        examples,
    ):
        if len(candidates):
            return candidates["p"].idxmax()
    raise ValueError("no galaxies to draw feature maps for: the predictions frame is empty")


# ---------------------------------------------------------------- one experiment


def _explanation_targets(examples: pd.DataFrame):
    """(example label, class index) pairs: predicted class for all, plus true class for errors."""
    targets = [(label, int(row.pred_index)) for label, row in examples.iterrows()]
    wrong = examples[examples["kind"] == "misclassified"]
    targets += [(label, int(row.true_index)) for label, row in wrong.iterrows()]
    return targets


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def explain_experiment(
    model,
    images,
    examples,
    class_names,
    out_dir,
    layers=None,
    samples=20,
    noise=0.2,
    batch_size=8,
    cam_layer="top_conv",
    seed=0,
    smooth=None,
) -> dict:
    """Write xai_correct, xai_misclassified and feature_maps figures (PNG + PDF) to `out_dir`.

    `examples`: the galaxies to explain, as `choose_examples` gives them; a row labelled i
    describes image i of `images` (N, H, W, C), what the model saw, drawn under the overlays.
    `smooth`: the model's `SmoothGrad`, when the caller explains more with it (None: one is
    made here). Returns GradCAM++'s layer and its map size, seconds per map for GradCAM++ and
    SmoothGrad, the files written and notes (e.g. no misclassifications).
    """
    images = _check_images(images)
    if not len(examples):
        raise ValueError("no galaxies to explain: no examples were chosen")
    outside = [label for label in examples.index if not 0 <= label < len(images)]
    if outside:
        raise ValueError(
            f"examples labelled {outside[:5]} have no image among the {len(images)} given; the "
            "row labelled i describes image i"
        )
    targets = _explanation_targets(examples)
    rows = np.array([label for label, _ in targets])
    classes = np.array([cls for _, cls in targets])
    cams, cam_s = _timed(gradcam_plus_plus, model, images[rows], classes, cam_layer, batch_size)
    smooth = smooth or SmoothGrad(model)
    grads, grad_s = _timed(smooth, images[rows], classes, samples, noise, batch_size, seed)
    maps = {target: (cam, grad) for target, cam, grad in zip(targets, cams, grads)}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, notes = [], []
    correct = examples[examples["kind"] == "correct"]
    wrong = examples[examples["kind"] == "misclassified"]
    if len(correct):
        files += plots.plot_correct(
            correct, images, maps, class_names, out_dir / "xai_correct"
        )
    else:
        notes.append("no correctly classified galaxies: xai_correct not written")
    if len(wrong):
        files += plots.plot_misclassified(
            wrong, images, maps, class_names, out_dir / "xai_misclassified"
        )
    else:
        notes.append("no misclassified galaxies: xai_misclassified not written")

    feature_row = choose_feature_example(examples)
    layers = tuple(layers) if layers else default_feature_layers(model)
    activations = feature_maps(model, images[feature_row], layers)
    title = "Feature maps (each channel scaled on its own) of one galaxy, " + plots.row_title(
        examples.loc[feature_row], class_names
    )
    files += plots.plot_feature_maps(activations, layers, out_dir / "feature_maps", title)
    return {
        "cam_layer": cam_layer,
        "cam_size": [int(n) for n in _get_layer(model, cam_layer).output.shape[1:3]],
        "gradcam_s_per_image": cam_s / len(targets),
        "smoothgrad_s_per_image": grad_s / len(targets),
        "n_maps": len(targets),
        "n_correct": len(correct),
        "n_misclassified": len(wrong),
        "feature_map_row": int(feature_row),
        "files": [str(f) for f in files],
        "notes": notes,
    }
