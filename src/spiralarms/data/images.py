"""A galaxy image from file to the model's view: the one home of reading and preprocessing.

Preprocessing follows docs/method.md ("Rebuilt as in the notebook", B0 and V2M rows): central crop
of `crop_size` px out of the 424 px GZ2 frame (`gz2.FRAME`; 224 in the paper, no resize),
optionally resized to `image_size`; B0 gets the channel mean scaled to [0, 1], V2M gets RGB floats
0-255. Training (`dataset`), evaluation figures, explanations and prediction all go through
`preprocess`; JPEGs are decoded by TensorFlow everywhere the pixels reach a model, as in the
training shards. TensorFlow is imported by the functions that use it: figures and the prediction
records read files without it (its import is ~8 s of CPU in every job).
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from spiralarms.data.channels import CHANNELS
from spiralarms.gz2 import FRAME

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


# --- the model's view ---------------------------------------------------------------------------

def crop_fraction(crop_size) -> float:
    """The fraction of a GZ2 frame the model sees: min(1, crop_size / 424); 1 without a crop."""
    return min(1.0, crop_size / FRAME) if crop_size else 1.0


def central_crop(image, crop_size):
    """The central `crop_size` / 424 of a frame (HxWxC or NxHxWxC), as the model sees it
    (`tf.image.central_crop`'s arithmetic); the whole image without a crop.

    The fraction goes in as a float64 tensor: given a Python float, central_crop rounds it to
    float32 on images of unknown shape (every tf.data map), 224/424 becomes 0.52830190 and the
    crop 226 px instead of the notebook's 224 (offset 99 instead of 100)."""
    if not crop_size:
        return image
    import tensorflow as tf

    return tf.image.central_crop(image, tf.constant(crop_fraction(crop_size), tf.float64))


def preprocess(image, model: str, image_size: int, crop_size: int = 224):
    """uint8 HxWx3 (any size) -> float32 image_size^2 x channels, as the model expects it."""
    import tensorflow as tf

    image = central_crop(tf.image.convert_image_dtype(image, tf.float32), crop_size)  # [0, 1]
    # Identity when the crop already has the model's size (the paper's 224 crop feeds 224 as is);
    # images of other sizes (prediction on new galaxies) land on the same grid.
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    if CHANNELS[model] == 1:
        return tf.reduce_mean(image, axis=-1, keepdims=True)  # Zoobot's greyscale: channel mean
    return image * 255.0  # keras' EfficientNetV2 rescales 0-255 internally


def decode(jpeg_bytes, model: str, image_size: int, crop_size: int = 224):
    """JPEG bytes (a shard's image) -> the model's input (`preprocess`)."""
    import tensorflow as tf

    image = tf.io.decode_jpeg(jpeg_bytes, channels=3)
    return preprocess(image, model, image_size, crop_size)


def model_view(image, model: str = "b0", image_size: int = 64, crop_size: int = 224) -> np.ndarray:
    """What the model sees of uint8 frame(s) (HxWx3 or NxHxWx3), for display and masks: (..., H, W)
    grey in [0, 1] for a one-channel model, (..., H, W, 3) RGB in [0, 1] otherwise."""
    view = preprocess(image, model, image_size, crop_size).numpy()
    return view[..., 0] if CHANNELS[model] == 1 else view / 255.0


# --- files ------------------------------------------------------------------------------------

def asset_path(images_dir, asset_id) -> Path:
    """The GZ2 image of `asset_id`: `<images_dir>/<asset_id>.jpg`."""
    return Path(images_dir) / f"{int(asset_id)}.jpg"


def load_as_seen(images_dir, asset_ids, model: str, image_size: int, crop_size) -> np.ndarray:
    """(N, image_size, image_size, channels): the GZ2 JPEGs of `asset_ids` decoded and
    preprocessed exactly as the training shards are (`decode`)."""
    import tensorflow as tf

    return np.stack([
        decode(tf.io.read_file(str(asset_path(images_dir, a))), model, image_size,
               crop_size).numpy()
        for a in asset_ids])


def read_rgb(path) -> tuple[np.ndarray, str]:
    """uint8 HxWx3 pixels of any PIL image, and its original mode. Raises on unreadable files.

    JPEGs are decoded by tf.io.decode_jpeg like the training shards: its default (fast integer)
    DCT differs from PIL's by up to about 6 grey levels, so PIL only checks them.
    """
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decode now: truncated files fail here, not later
        if image.format == "JPEG" and image.mode in ("RGB", "L"):
            import tensorflow as tf  # JPEGs only: other formats need no TensorFlow

            return tf.io.decode_jpeg(data, channels=3).numpy(), image.mode
        return to_rgb(image), image.mode


def read_pil(path) -> tuple[np.ndarray, str]:
    """uint8 HxWx3 and mode with PIL alone (no TensorFlow: safe inside the tf.data pipeline)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(image), image.mode


def read_crop(path, crop_size) -> np.ndarray:
    """uint8 RGB of the part of a frame the model sees (`central_crop`'s window), for figures:
    decoded by PIL, without TensorFlow (a few grey levels apart from the model's pixels, see
    `read_rgb`; nothing a figure shows)."""
    image = read_pil(path)[0]
    if not crop_size:
        return image
    rows, cols = (_central_window(n, crop_fraction(crop_size)) for n in image.shape[:2])
    return image[rows, cols]


def _central_window(n: int, fraction: float) -> slice:
    """tf.image.central_crop's window along an axis of n px: start int((n - n f) / 2)."""
    start = int((n - n * fraction) / 2)
    return slice(start, n - start)


def read_model_view(path, model: str, image_size: int, crop_size) -> np.ndarray:
    """`model_view` of an image file, for display."""
    return model_view(read_rgb(path)[0], model, image_size, crop_size)


def to_rgb(image: Image.Image) -> np.ndarray:
    """uint8 RGB. Transparency is composited on black (the sky of the training cut-outs);
    16-bit and 32-bit greyscale is scaled, since PIL's own conversion clips at 255."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        grey = _scale_to_uint8(np.asarray(image, dtype=np.float64), image.mode)
        return np.repeat(grey[..., None], 3, axis=-1)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    if mode in SIXTEEN_BIT_MODES:
        return np.round(values / 257.0).astype(np.uint8)
    low, high = np.nanmin(values), np.nanmax(values)
    if low >= 0 and high <= 255:  # already 8-bit values stored wide
        return np.round(values).astype(np.uint8)
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)
