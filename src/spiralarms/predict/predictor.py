"""Arm-number predictions for new galaxy images (JPEG, PNG, FITS) with a trained model.

**Preprocessing.** Every image reaches the network as a training image did: the model card's
model type, image size and crop go to `images.preprocess`. The card (`model.json` beside
`model.keras`, written by training and by `import-model`) is the authority: an imported model is
fed with the preprocessing it was trained with, whatever the config says. Without a card the
caller gives the classes and the crop size; model type and image size come from the network.

**Framing.** Training frames are GZ2 cut-outs: 424 px square, 0.02 Petrosian R90 per pixel, of
which the model sees the central `crop_size` px (224 in the paper). A new image is framed as
follows, before `preprocess` resizes it to the model's size:
- `gz2` (default): the image is taken to be framed like a GZ2 cut-out. A non-square image is
  first centre-cropped to a square (never stretched); then the crop fraction crop_size / 424 of
  that square is kept, exactly as `tf.image.central_crop` does in training.
- by galaxy size: with a size per galaxy in pixels of its own image (e.g. its Petrosian R90; a
  catalogue's `size_column`, optionally divided by `pixel_scale` when it is in arcsec), the
  window is the part of the image a GZ2 cut-out of that galaxy would show in its central crop:
  crop_size x 0.02 x R90 px on a side, centred; parts outside the image are black sky.
A window the model would have to enlarge more than `max_upscale` times (an image far smaller
than the training frame, e.g. 1x1 px) is not predicted: its row is skipped with the reason.

**Speed.** Files are read, decoded and framed in a `tf.data` pipeline (parallel map, batch,
prefetch); JPEGs are decoded by TensorFlow as in training, only the block rows and columns the
window needs (`decode_and_crop_jpeg` on a window widened to 16 px blocks plus a margin, so the
pixels equal a full decode's, which the tests check). PNG and other PIL formats and FITS
(`fits.py`) are read in the same parallel map. The network runs on whole batches in one compiled
call (`tf.function`), test-time augmentation included. A file the pipeline cannot read is
retried alone outside it, which either predicts it (e.g. a CMYK JPEG) or gives the plain reason.

**Uncertainty.** With `tta` = k > 1, each galaxy is predicted in k orientations (the first k of:
rotations by 0, 90, 180, 270 degrees, then the same after a left-right mirror); the output holds
the mean probabilities (`prob_<class>`, from which `pred_*` and `p_max` follow), their standard
deviation over the k views (`std_<class>`) and the predictive entropy of the mean in nats
(`entropy`; 0 = certain, ln(n_classes) = uniform), which is also given for k = 1.
"""

import logging
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from spiralarms import runtime
from spiralarms.data.channels import CHANNELS
from spiralarms.data.images import crop_fraction, preprocess, read_pil, read_rgb
from spiralarms.data.shards import EMPTY_FILE
from spiralarms.data.variants import get_variant, long_names
from spiralarms.gz2 import FRAME
from spiralarms.models import (
    model_card,
    votes,  # noqa: F401 - registers the votes head's layer for load_model
)
from spiralarms.predict.fits import FitsOptions, SkipImage, is_fits, read_fits
from spiralarms.predict.records import (  # noqa: F401 - write_predictions: callers' one import
    NoImagesError,
    check_max_upscale,
    find_images,
    write_predictions,
)

log = logging.getLogger(__name__)

JPEG_SUFFIXES = (".jpg", ".jpeg")
GZ2_R90_PER_PIXEL = 0.02  # GZ2 cut-outs: 424 px at 0.02 x Petrosian R90 per pixel
MAX_TTA = 8
KIND_JPEG, KIND_PIL, KIND_FITS = 0, 1, 2
JPEG_BLOCK, JPEG_MARGIN = 16, 8  # decode window: 16 px blocks, 8 px of context around the crop
PROGRESS_EVERY_S = 60.0
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class ModelFileError(ValueError):
    """The model path is missing or is not a Keras model file."""


# --- finding and reading images ----------------------------------------------------------------

def model_input(rgb: np.ndarray, card: dict) -> np.ndarray:
    """The training preprocessing (images.preprocess) applied to one uint8 RGB GZ2 frame."""
    return preprocess(rgb, card["model"], int(card["image_size"]), card["crop_size"]).numpy()


def kind_of(path) -> int:
    name = str(path).lower()
    if name.endswith(JPEG_SUFFIXES):
        return KIND_JPEG
    return KIND_FITS if is_fits(name) else KIND_PIL


# --- framing -----------------------------------------------------------------------------------

def window(height: int, width: int, crop_size, size_px=None) -> tuple[int, int, int]:
    """(top, left, side) of the square the model sees, in pixels of the image; it may reach out
    of the image when framed by galaxy size (that part is black sky).

    Without a size: the central square of the image, then tf.image.central_crop's arithmetic
    (start = int((n - n * fraction) / 2), side = n - 2 * start). With a size (R90 in px):
    side = round(crop_px * 0.02 * R90), centred.
    """
    if size_px is None or not np.isfinite(size_px):
        square = min(height, width)
        start = int((square - square * crop_fraction(crop_size)) / 2)
        side = square - 2 * start
        return (height - square) // 2 + start, (width - square) // 2 + start, side
    side = max(1, math.floor((crop_size or FRAME) * GZ2_R90_PER_PIXEL * size_px + 0.5))
    return (height - side) // 2, (width - side) // 2, side


def frame_array(image: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The (side, side) window of `image` at (top, left), zero (black) outside the image."""
    out = np.zeros((side, side, image.shape[2]), image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, image.shape[0]), min(left + side, image.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def too_small_reason(height, width, side, image_size, max_upscale) -> str | None:
    if side * max_upscale >= image_size:
        return None
    return (f"image is {width}x{height} px: the model would enlarge its {side} px window "
            f"{image_size / side:.0f}x to {image_size} px (max_upscale {max_upscale:g}); give "
            f"cut-outs framed like the 424 px GZ2 ones")


# --- the predictor -----------------------------------------------------------------------------

def load_model(model_path):
    """The Keras model at `model_path` (safe mode), or ModelFileError in plain words."""
    model_path = Path(model_path)
    if model_path.is_dir():
        raise ModelFileError(f"model {model_path} is a folder, not a Keras model file; give its "
                             f"model.keras (a TF SavedModel or checkpoint must be converted to "
                             f".keras first)")
    if not model_path.is_file():
        raise ModelFileError(f"model file {model_path} does not exist; give the model.keras of "
                             f"a trained experiment, e.g. results/experiments/<experiment>/")
    head = model_path.read_bytes()[:8] if model_path.stat().st_size else b""
    is_zip, is_hdf5 = zipfile.is_zipfile(model_path), head.startswith(HDF5_MAGIC)
    if model_path.suffix.lower() != ".keras" or not is_zip:
        if model_path.suffix.lower() in (".h5", ".hdf5") and is_hdf5:
            pass  # a legacy Keras HDF5 model: Keras 3 still loads those
        else:
            raise ModelFileError(f"{model_path} is not a Keras model file: {_looks_like(head, is_zip)};"
                                 f" expected a .keras file (a zip archive written by model.save)")
    try:
        return keras.models.load_model(model_path, safe_mode=True)
    except Exception as error:
        raise ModelFileError(f"{model_path} could not be loaded as a Keras model: "
                             f"{str(error).splitlines()[0][:300]}") from error


def _looks_like(head: bytes, is_zip: bool) -> str:
    if is_zip:
        return "a zip archive not named .keras"
    if head.startswith(HDF5_MAGIC):
        return "an HDF5 file (rename a Keras HDF5 model to .h5)"
    known = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"SIMPLE": "a FITS file",
             b"\x1f\x8b": "a gzip file"}
    for magic, what in known.items():
        if head.startswith(magic):
            return f"it is {what}"
    if not head:
        return "the file is empty"
    return "it is neither a zip archive nor an HDF5 file"


@dataclass
class Predictor:
    """A loaded model and everything that decides its predictions.

    `card`: entries overriding model.json. `batch_size` does not change the results (the network
    sees every galaxy alone; batches only group them), `tta`, `fits` and `max_upscale` do.
    """

    model_path: str | os.PathLike
    card: dict | None = None
    batch_size: int = 64
    tta: int = 1
    fits: FitsOptions = field(default_factory=FitsOptions)
    max_upscale: float = 4.0

    def __post_init__(self):
        if not 1 <= int(self.tta) <= MAX_TTA:
            raise ValueError(f"tta must be 1..{MAX_TTA} (rotations and mirrors), got {self.tta}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if isinstance(self.fits, dict):
            self.fits = FitsOptions.from_dict(self.fits)
        self.max_upscale = check_max_upscale(self.max_upscale)
        self.tta, self.batch_size = int(self.tta), int(self.batch_size)
        self.model = load_model(self.model_path)
        self.card = model_card.complete(self.model, self.model_path, self.card)
        self.class_names = list(self.card["class_names"])
        size = int(self.card["image_size"])
        spec = tf.TensorSpec([None, size, size, CHANNELS[self.card["model"]]], tf.float32)
        self._infer = tf.function(self._views_mean_std, input_signature=[spec])

    # settings that change the results: a chunk predicted with other ones is stale
    def settings(self) -> dict:
        return {"card": dict(self.card), "tta": self.tta, "fits": self.fits.as_dict(),
                "max_upscale": float(self.max_upscale)}

    def _views_mean_std(self, images):
        views = tta_views(images, self.tta)
        proba = tf.cast(self.model(tf.concat(views, 0), training=False), tf.float32)
        proba = tf.reshape(proba, [self.tta, -1, proba.shape[-1]])
        return tf.reduce_mean(proba, 0), tf.math.reduce_std(proba, 0)

    def infer(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the class probabilities of a batch of model inputs."""
        try:
            mean, std = self._infer(tf.convert_to_tensor(images, tf.float32))
        except tf.errors.ResourceExhaustedError as error:
            raise MemoryError(f"out of memory predicting a batch of {len(images)} "
                              f"(x{self.tta} views): lower the batch size (--batch-size, "
                              f"predict.<name>.batch_size)") from error
        return mean.numpy(), std.numpy()

    # --- reading ---------------------------------------------------------------------------
    def load(self, path, size_px=None) -> tuple[np.ndarray, int, int, str]:
        """The framed float32 window of one file and its width, height, mode; SkipImage when it
        cannot be used. The reference path, outside tf.data (the pipeline gives the same)."""
        if os.path.isfile(path) and not os.path.getsize(path):
            raise SkipImage("unreadable", EMPTY_FILE)  # the shards' words for the same file
        try:
            if is_fits(path):
                image, mode = read_fits(path, self.fits)
            else:
                image, mode = read_rgb(path)
        except SkipImage:
            raise
        except FileNotFoundError as error:
            raise SkipImage("missing_file", f"file not found: {path}") from error
        except IsADirectoryError as error:
            raise SkipImage("unreadable", f"{path} is a folder, not an image file") from error
        except UnidentifiedImageError as error:
            raise SkipImage("unreadable", "not an image file that can be read (not JPEG, PNG, "
                                          "FITS or another format PIL knows)") from error
        except Image.DecompressionBombError as error:
            raise SkipImage("unreadable", f"image too large to decode safely ({error})") \
                from error
        except (OSError, ValueError, SyntaxError, tf.errors.OpError) as error:
            text = getattr(error, "message", None) or str(error) or type(error).__name__
            text = text.strip().splitlines()[0][:200]
            if "truncated" in text.lower():
                raise SkipImage("unreadable", f"truncated or corrupt image file ({text})") \
                    from error
            raise SkipImage("unreadable", f"image file could not be decoded ({text})") from error
        height, width = image.shape[:2]
        top, left, side = window(height, width, self.card["crop_size"], size_px)
        reason = too_small_reason(height, width, side, int(self.card["image_size"]),
                                  self.max_upscale)
        if reason:
            raise SkipImage("too_small", reason)
        if image.dtype == np.uint8:
            image = tf.image.convert_image_dtype(image, tf.float32).numpy()  # as in preprocess
        return frame_array(image, top, left, side), width, height, mode

    def model_input(self, framed) -> np.ndarray:
        card = self.card
        return preprocess(framed, card["model"], int(card["image_size"]), 0).numpy()

    def dataset(self, paths, sizes, threads=None) -> tf.data.Dataset:
        """Batches of {index, image, width, height, mode} for the rows that could be read; the
        others are dropped (ignore_errors) and retried by `load`."""
        paths = [str(p) for p in paths]
        sizes = np.asarray(sizes, np.float64)
        kinds = np.array([kind_of(p) for p in paths], np.int32)
        card = self.card
        size, crop = int(card["image_size"]), card["crop_size"]
        fraction = crop_fraction(crop)
        crop_px = float(crop or FRAME)
        max_upscale = float(self.max_upscale)
        fits_options = self.fits

        def read_other(path, kind):
            """float32 pixels, or an empty image for a file that cannot be read (the frame check
            then drops it quietly, and `load` finds the reason; an exception raised here would
            print a traceback from TensorFlow's kernel log)."""
            try:
                if kind == KIND_FITS:
                    image, mode = read_fits(path.decode(), fits_options)
                else:
                    image, mode = read_pil(path.decode())
                    # what tf.image.convert_image_dtype does to uint8 (in images.preprocess)
                    image = image.astype(np.float32) * np.float32(1.0 / 255.0)
            except Exception:  # noqa: BLE001 - any failure: retried outside the pipeline
                return np.zeros((0, 0, 3), np.float32), np.bytes_(b"")
            return image.astype(np.float32), np.bytes_(mode.encode())

        def frame(height, width, size_px):
            """tf version of `window`, same float64 arithmetic."""
            h64, w64 = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
            square = tf.minimum(height, width)
            sq64 = tf.cast(square, tf.float64)
            start = tf.cast((sq64 - sq64 * fraction) / 2, tf.int32)
            by_size = tf.math.is_finite(size_px)
            side = tf.where(by_size, tf.maximum(1, tf.cast(tf.floor(
                crop_px * GZ2_R90_PER_PIXEL * size_px + 0.5), tf.int32)), square - 2 * start)
            top = tf.where(by_size, tf.cast(tf.floor((h64 - tf.cast(side, tf.float64)) / 2),
                                            tf.int32), (height - square) // 2 + start)
            left = tf.where(by_size, tf.cast(tf.floor((w64 - tf.cast(side, tf.float64)) / 2),
                                             tf.int32), (width - square) // 2 + start)
            tf.debugging.assert_greater_equal(  # too small: the reference path says why
                tf.cast(side, tf.float64) * max_upscale, tf.constant(size, tf.float64))
            return top, left, side

        def clip(top, left, side, height, width):
            y0, x0 = tf.maximum(top, 0), tf.maximum(left, 0)
            y1, x1 = tf.minimum(top + side, height), tf.minimum(left + side, width)
            return y0, x0, y1, x1

        def pad(image, top, left, side, y0, x0):
            """Black sky around a window that reaches out of the image (framing by size)."""
            shape = tf.shape(image)
            above, before = y0 - top, x0 - left
            return tf.pad(image, [[above, side - shape[0] - above],
                                  [before, side - shape[1] - before], [0, 0]])

        def jpeg(data, size_px):
            shape = tf.io.extract_jpeg_shape(data)
            height, width = shape[0], shape[1]
            top, left, side = frame(height, width, size_px)
            y0, x0, y1, x1 = clip(top, left, side, height, width)
            ay0 = tf.maximum(0, (y0 - JPEG_MARGIN) // JPEG_BLOCK * JPEG_BLOCK)
            ax0 = tf.maximum(0, (x0 - JPEG_MARGIN) // JPEG_BLOCK * JPEG_BLOCK)
            ay1 = tf.minimum(height, -((-(y1 + JPEG_MARGIN)) // JPEG_BLOCK) * JPEG_BLOCK)
            ax1 = tf.minimum(width, -((-(x1 + JPEG_MARGIN)) // JPEG_BLOCK) * JPEG_BLOCK)
            block = tf.io.decode_and_crop_jpeg(data, tf.stack([ay0, ax0, ay1 - ay0, ax1 - ax0]),
                                               channels=3)
            cut = block[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0]
            framed = tf.image.convert_image_dtype(pad(cut, top, left, side, y0, x0), tf.float32)
            mode = tf.where(shape[2] == 1, "L", "RGB")
            return framed, height, width, mode

        def other(path, kind, size_px):
            image, mode = tf.numpy_function(read_other, [path, kind], [tf.float32, tf.string],
                                            stateful=False)
            image = tf.ensure_shape(image, [None, None, 3])
            height, width = tf.shape(image)[0], tf.shape(image)[1]
            top, left, side = frame(height, width, size_px)
            y0, x0, y1, x1 = clip(top, left, side, height, width)
            framed = pad(image[y0:y1, x0:x1], top, left, side, y0, x0)
            return framed, height, width, tf.reshape(mode, [])

        kinds_present = set(kinds.tolist())

        def load(index, path, kind, size_px):
            if kinds_present == {KIND_JPEG}:  # one branch only: no conditional in the graph
                framed, height, width, mode = jpeg(tf.io.read_file(path), size_px)
            elif KIND_JPEG not in kinds_present:
                framed, height, width, mode = other(path, kind, size_px)
            else:
                framed, height, width, mode = tf.cond(
                    tf.equal(kind, KIND_JPEG),
                    lambda: jpeg(tf.io.read_file(path), size_px),
                    lambda: other(path, kind, size_px))
            image = preprocess(framed, card["model"], size, 0)  # resize, channels: as training
            return {"index": index, "image": image, "width": width, "height": height,
                    "mode": mode}

        options = tf.data.Options()
        options.deterministic = True
        if threads:
            options.threading.private_threadpool_size = int(threads)
        ds = tf.data.Dataset.from_tensor_slices(
            (np.arange(len(paths), dtype=np.int64), paths, kinds, sizes))
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors(log_warning=False)
        return ds.batch(self.batch_size).prefetch(2).with_options(options)

    # --- predicting --------------------------------------------------------------------------
    def predict(self, paths, sizes=None, threads=None, progress: str = "") -> pd.DataFrame:
        """One row per path, in order: width, height, mode, prob_*, std_*, then skip_code and
        skip_reason ('' for predicted rows; probabilities NaN for skipped ones)."""
        n = len(paths)
        sizes = np.full(n, np.nan) if sizes is None else np.asarray(sizes, np.float64)
        n_classes = len(self.class_names)
        mean = np.full((n, n_classes), np.nan, np.float32)
        std = np.full((n, n_classes), np.nan, np.float32)
        width, height = np.zeros(n, np.int64), np.zeros(n, np.int64)
        mode = np.full(n, "", dtype=object)
        code, reason = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
        seen = np.zeros(n, bool)
        started = last = time.perf_counter()
        for batch in self.dataset(paths, sizes, threads) if n else []:
            index = batch["index"].numpy()
            mean[index], std[index] = self.infer(batch["image"])
            width[index], height[index] = batch["width"].numpy(), batch["height"].numpy()
            mode[index] = [m.decode() for m in batch["mode"].numpy()]
            seen[index] = True
            if time.perf_counter() - last > PROGRESS_EVERY_S:
                last = time.perf_counter()
                done = int(seen.sum())
                log.info("%sread %d of %d images (%.0f images/s)", progress, done, n,
                         done / (last - started))
        retry = np.flatnonzero(~seen)
        inputs = []
        for i in retry:  # files the pipeline could not read: their reason, or their prediction
            try:
                framed, width[i], height[i], mode[i] = self.load(paths[i], sizes[i])
            except SkipImage as skip:
                code[i], reason[i] = skip.code, skip.reason
                continue
            inputs.append((i, self.model_input(framed)))
        for start in range(0, len(inputs), self.batch_size):
            part = inputs[start:start + self.batch_size]
            rows = [i for i, _ in part]
            mean[rows], std[rows] = self.infer(np.stack([x for _, x in part]))
        table = pd.DataFrame({"width": width, "height": height, "mode": mode})
        table = pd.concat([table, self.probability_columns(mean, std)], axis=1)
        table["skip_code"], table["skip_reason"] = code, reason
        skipped = table["skip_code"] != ""
        table.loc[skipped, ["width", "height"]] = 0
        return table

    def probability_columns(self, mean, std) -> pd.DataFrame:
        names = self.class_names
        labels = long_names(get_variant(self.card["classes"]))
        ok = ~np.isnan(mean).any(axis=1)
        index = np.where(ok, np.argmax(np.nan_to_num(mean, nan=-1.0), axis=1), -1)
        columns = {
            "pred_index": index.astype("int64"),
            "pred_name": [names[i] if i >= 0 else None for i in index],
            "pred_label": [labels[i] if i >= 0 else None for i in index],
            "p_max": np.where(ok, np.nan_to_num(mean, nan=0.0).max(axis=1), np.nan),
            "entropy": entropy(mean),
        }
        columns.update({f"prob_{name}": mean[:, i] for i, name in enumerate(names)})
        if self.tta > 1:
            columns.update({f"std_{name}": std[:, i] for i, name in enumerate(names)})
        return pd.DataFrame(columns)


def tta_views(images, k: int) -> list:
    """The first k of: rotations by 0, 90, 180, 270 degrees, then the same of the mirror image."""
    views = []
    for j in range(k):
        view = tf.image.flip_left_right(images) if j >= 4 else images
        views.append(tf.image.rot90(view, j % 4) if j % 4 else view)
    return views


def entropy(proba: np.ndarray) -> np.ndarray:
    """Predictive entropy in nats of each row of probabilities (NaN rows stay NaN)."""
    p = np.asarray(proba, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    out = terms.sum(axis=1)
    out[np.isnan(p).any(axis=1)] = np.nan
    return out.astype(np.float32)


def configure_threads(threads: int | None = None, split: bool = True) -> int:
    """Share `threads` cores (default: all this process may use) between the network and the
    input pipeline; call before TensorFlow runs anything. Returns the pipeline's thread count
    (pass it to `Predictor.predict`).

    On a CPU the two compete for the same cores: half go to the tf.data pipeline (its own
    private pool) and the rest to the network's ops, which measured faster on 2 cores than
    letting both use every core. With a GPU the network needs few CPU threads: the pipeline
    gets all of them. `split=False` gives the network every core (the bare-model benchmark).
    """
    threads = int(threads or len(os.sched_getaffinity(0)))
    if tf.config.list_physical_devices("GPU") or not split:
        model, pipeline = threads, threads
    else:
        pipeline = max(1, threads // 2)
        model = max(1, threads - pipeline)
    runtime.configure(model)  # two inter-op threads, and GPU memory growth
    return pipeline


# --- folders and files, one job ----------------------------------------------------------------

def predict_images(model_path, inputs, batch_size: int = 32, card: dict | None = None,
                   tta: int = 1, fits: FitsOptions | dict | None = None, max_upscale=4.0,
                   threads=None):
    """Predict every image in `inputs` (files and folders); return (table, skipped).

    `card` entries override model.json (e.g. {"classes": "6class", "crop_size": 224} for a model
    without one). The table has one row per predicted image: id (the file name), file, path,
    width, height, mode, pred_index, pred_name, pred_label, p_max, entropy, prob_<class>
    (std_<class> with tta > 1). `skipped` lists {id, file, path, code, reason} for the others.
    `model_path` may also be a ready Predictor (the other model settings are then its own).
    """
    paths, missing = find_images(inputs)
    predictor = model_path if isinstance(model_path, Predictor) else \
        Predictor(model_path, card, batch_size, tta, fits or FitsOptions(), max_upscale)
    rows = pd.DataFrame({"id": [p.name for p in paths], "file": [str(p) for p in paths],
                         "path": [str(p) for p in paths]})
    table, skipped = predict_rows(predictor, rows, threads)
    skipped = [{"id": Path(s["path"]).name, "file": s["path"], **s} for s in missing] + skipped
    return table, skipped


def predict_rows(predictor: Predictor, rows: pd.DataFrame, threads=None, progress=""):
    """Predict the rows of a normalised catalogue (id, file, path, optional size, skip_code,
    skip_reason); return (predicted table, skipped list of dicts)."""
    full = predict_all_rows(predictor, rows, threads, progress)
    return split_predicted(full, predictor.card)


def predict_all_rows(predictor: Predictor, rows: pd.DataFrame, threads=None, progress=""):
    """Every row of `rows` with its prediction or its skip reason (rows already marked skipped
    in `rows` are not read)."""
    rows = rows.reset_index(drop=True)
    given = rows["skip_code"].fillna("") if "skip_code" in rows else pd.Series("", rows.index)
    todo = np.flatnonzero(given.to_numpy() == "")
    sizes = rows["size"].to_numpy(np.float64) if "size" in rows else np.full(len(rows), np.nan)
    log.info("%sreading %d images for %s (%s, classes %s, %d px, crop %s, tta %d)", progress,
             len(todo), predictor.model_path, predictor.card["model"], predictor.card["classes"],
             predictor.card["image_size"], predictor.card["crop_size"], predictor.tta)
    result = predictor.predict([rows["path"].iloc[i] for i in todo], sizes[todo], threads,
                               progress)
    unread = int((result["skip_code"] != "").sum()) if len(result) else 0
    # the count is what was predicted: images that could not be read are counted apart
    log.info("%spredicted %d images; skipped %d that could not be read and %d rows without an "
             "image", progress, len(todo) - unread, unread, len(rows) - len(todo))
    columns = [c for c in ("row", "id", "file", "path") if c in rows]
    full = rows[columns].copy()
    empty = predictor.probability_columns(
        np.full((len(rows), len(predictor.class_names)), np.nan, np.float32),
        np.full((len(rows), len(predictor.class_names)), np.nan, np.float32))
    full = pd.concat([full, pd.DataFrame({"width": np.zeros(len(rows), np.int64),
                                          "height": np.zeros(len(rows), np.int64),
                                          "mode": ""}), empty], axis=1)
    full["skip_code"] = given.to_numpy(object)
    full["skip_reason"] = (rows["skip_reason"].fillna("").to_numpy(object) if "skip_reason" in rows
                           else np.full(len(rows), "", object))
    for column in result.columns:
        full.loc[todo, column] = result[column].to_numpy()
    full = full.astype({"width": "int64", "height": "int64", "pred_index": "int64"})
    full.attrs["model_card"] = dict(predictor.card)
    full.attrs["tta"] = predictor.tta
    return full


def split_predicted(full: pd.DataFrame, card: dict):
    """(predicted rows without the skip columns, skipped rows as dicts) of a full table."""
    skipped_mask = full["skip_code"] != ""
    table = full[~skipped_mask].drop(columns=["skip_code", "skip_reason"]).reset_index(drop=True)
    table.attrs = {"model_card": dict(card), "tta": full.attrs.get("tta", 1)}
    columns = [c for c in ("row", "id", "file", "path") if c in full]
    skipped = full.loc[skipped_mask, columns + ["skip_code", "skip_reason"]]
    skipped = skipped.rename(columns={"skip_code": "code", "skip_reason": "reason"})
    return table, skipped.to_dict("records")
