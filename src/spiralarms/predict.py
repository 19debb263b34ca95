"""Arm-number predictions for new galaxy images with a trained model.

Images of any size and PIL mode go through `dataset.preprocess` with the model card's model type,
image size and crop, so a new image reaches the network exactly as a training image did. The crop
is a fraction of the frame (crop_size / 424), so new images should be framed like the GZ2 cut-outs
(galaxy centred, about the same scale); non-square images are stretched to a square, as
`preprocess` resizes without padding.

The model card (`model.json` beside `model.keras`, written by `train.write_model_card`) names the
model type, class variant, image and crop size. Without one, the caller must give the classes and
the crop size; the model type and image size are then read from the network's input shape.
"""

import io
import json
import logging
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from .dataset import preprocess
from .models import CHANNELS
from .variants import VARIANTS, get_variant, long_names

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CARD_KEYS = ("model", "mode", "classes", "class_names", "image_size", "crop_size")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
PROGRESS_EVERY = 20  # batches between progress lines


class ModelCardError(ValueError):
    """The model card is missing, incomplete, or does not fit the model."""


class NoImagesError(ValueError):
    """No image files were found among the inputs."""


# --- the model card ---------------------------------------------------------------------------

def read_card(model_path) -> dict:
    """model.json beside the model, or {} when there is none."""
    path = Path(model_path).with_name("model.json")
    if not path.exists():
        return {}
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelCardError(f"cannot read model card {path}: {error}") from error
    if not isinstance(card, dict):
        raise ModelCardError(f"model card {path} must hold a JSON object with keys {CARD_KEYS}")
    return card


def card_for(model, model_path, overrides: dict | None = None) -> dict:
    """The complete card of a loaded `model`: model.json, then `overrides`, then the input shape.

    Raises ModelCardError naming what is missing (and the CLI flags that supply it) or what
    contradicts the network.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    card = {**read_card(model_path), **overrides}
    channels, size = _input_geometry(model, model_path)
    # build_model gives b0 one greyscale channel and v2m RGB: the channel count names the model.
    card.setdefault("model", next(name for name, c in CHANNELS.items() if c == channels))
    card.setdefault("image_size", size)
    missing = [k for k in ("classes", "crop_size") if card.get(k) is None]
    if missing:
        flags = " ".join(f"--{k.replace('_', '-')}" for k in missing)
        raise ModelCardError(
            f"no model card (model.json) beside {model_path} gives {missing}: pass {flags} "
            f"(classes: one of {sorted(VARIANTS)}; crop_size: 224 in the paper)"
        )
    if "class_names" not in card or "classes" in overrides:
        card["class_names"] = list(get_variant(card["classes"]).class_names)
    card.setdefault("mode", "standard")
    _check_card_fits(card, model, model_path, channels, size)
    return {k: card[k] for k in CARD_KEYS}


def _input_geometry(model, model_path):
    shape = model.inputs[0].shape if len(model.inputs) == 1 else None
    if shape is None or len(shape) != 4 or shape[-1] not in (1, 3):
        raise ModelCardError(f"{model_path}: expected one image input (batch, H, W, 1 or 3), "
                             f"got {[tuple(t.shape) for t in model.inputs]}")
    return shape[-1], shape[1]


def _check_card_fits(card, model, model_path, channels, size):
    where = f"model card of {model_path}"
    if card["model"] not in CHANNELS:
        raise ModelCardError(f"{where}: model {card['model']!r} is not one of {sorted(CHANNELS)}")
    if CHANNELS[card["model"]] != channels:
        raise ModelCardError(f"{where}: model {card['model']!r} takes {CHANNELS[card['model']]} "
                             f"channel(s) but the network's input has {channels}")
    if size is not None and int(card["image_size"]) != size:
        raise ModelCardError(f"{where}: image_size {card['image_size']} but the network's input "
                             f"is {size}x{size}")
    n_out = model.outputs[0].shape[-1]
    if len(card["class_names"]) != n_out:
        raise ModelCardError(f"{where}: classes {card['classes']!r} has "
                             f"{len(card['class_names'])} classes but the network outputs {n_out}; "
                             f"pass the variant it was trained on (--classes)")


# --- finding and reading images ----------------------------------------------------------------

def find_images(inputs) -> tuple[list, list]:
    """Image paths from files and folders (folders: .jpg/.jpeg/.png, any case, sorted), and
    `skipped` entries for inputs that do not exist. Explicit files are taken whatever their name."""
    images, skipped = [], []
    for item in map(Path, as_list(inputs)):
        if item.is_dir():
            # dotfiles are macOS resource forks ('._x.jpg') and editor droppings, not images
            images += sorted(p for p in item.iterdir() if p.is_file()
                             and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        elif item.is_file():
            images.append(item)
        else:
            skipped.append({"path": str(item), "reason": "no such file or folder"})
    return list(dict.fromkeys(images)), skipped  # a file named twice is predicted once


def as_list(inputs) -> list:
    """One path or many."""
    return [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)


def read_rgb(path) -> tuple[np.ndarray, str]:
    """uint8 HxWx3 pixels of any PIL image, and its original mode. Raises on unreadable files.

    JPEGs are decoded by tf.io.decode_jpeg like the training shards: its default (fast integer)
    DCT differs from PIL's by up to about 6 grey levels, so PIL only checks them.
    """
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decode now: truncated files fail here, not later
        if image.format == "JPEG" and image.mode in ("RGB", "L"):
            return tf.io.decode_jpeg(data, channels=3).numpy(), image.mode
        return to_rgb(image), image.mode


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


def model_input(rgb: np.ndarray, card: dict) -> np.ndarray:
    """The training preprocessing (dataset.preprocess) applied to one uint8 RGB image."""
    return preprocess(rgb, card["model"], int(card["image_size"]), card["crop_size"]).numpy()


# --- prediction --------------------------------------------------------------------------------

def load_model(model_path):
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {model_path} does not exist; give the model.keras of "
                                f"a trained experiment, e.g. results/experiments/<experiment>/")
    return keras.models.load_model(model_path, safe_mode=True)


def predict_images(model_path, inputs, batch_size: int = 32, card: dict | None = None):
    """Predict every image in `inputs` (files and folders); return (table, skipped).

    `card` entries override model.json (e.g. {"classes": "6class", "crop_size": 224} for a model
    without one). The table has one row per readable image: path, width, height, mode,
    pred_index, pred_name, pred_label, p_max, prob_<class name>. `skipped` lists
    {"path", "reason"} for inputs that are missing or cannot be decoded.
    """
    model = load_model(model_path)
    card = card_for(model, model_path, card)
    paths, skipped = find_images(inputs)
    if not paths:
        raise NoImagesError(f"no images (.jpg, .jpeg, .png) found in "
                            f"{', '.join(map(str, as_list(inputs)))}")
    log.info("predicting %d images with %s (%s, classes %s, %d px, crop %s)", len(paths),
             model_path, card["model"], card["classes"], card["image_size"], card["crop_size"])
    rows, probabilities = [], []
    for number, start in enumerate(range(0, len(paths), batch_size), 1):
        batch_rows, batch_inputs = _read_batch(paths[start:start + batch_size], card, skipped)
        if batch_inputs:
            probabilities.append(model.predict_on_batch(np.stack(batch_inputs)))
            rows += batch_rows
        if number % PROGRESS_EVERY == 0:
            log.info("predicted %d of %d images", min(start + batch_size, len(paths)), len(paths))
    if skipped:
        log.warning("skipped %d unreadable or missing inputs", len(skipped))
    proba = (np.concatenate(probabilities) if probabilities
             else np.zeros((0, len(card["class_names"])), np.float32))
    return prediction_table(rows, proba, card), skipped


def _read_batch(paths, card, skipped):
    rows, inputs = [], []
    for path in paths:
        try:
            rgb, mode = read_rgb(path)
        except Exception as error:  # noqa: BLE001 - PIL raises many types; none may stop a run
            skipped.append({"path": str(path), "reason": f"{type(error).__name__}: {error}"})
            continue
        rows.append({"path": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
                     "mode": mode})
        inputs.append(model_input(rgb, card))
    return rows, inputs


def prediction_table(rows, proba, card) -> pd.DataFrame:
    """The card travels in `attrs` (and so into the parquet metadata)."""
    names = list(card["class_names"])
    labels = long_names(get_variant(card["classes"]))
    table = pd.DataFrame(rows, columns=["path", "width", "height", "mode"])
    index = np.argmax(proba, axis=1).astype("int64")
    table["pred_index"] = index
    table["pred_name"] = [names[i] for i in index]
    table["pred_label"] = [labels[i] for i in index]
    table["p_max"] = proba.max(axis=1, initial=0.0)
    for i, name in enumerate(names):
        table[f"prob_{name}"] = proba[:, i]
    table.attrs["model_card"] = dict(card)
    return table


def skipped_path(out_path) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".skipped.csv")


def write_predictions(table, skipped, out_path) -> list:
    """Parquet of the predictions, plus `<out stem>.skipped.csv` (path, reason) when anything was
    skipped; a stale list from an earlier run is removed. Returns the written paths."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_path, index=False)
    written = [out_path]
    listing = skipped_path(out_path)
    if skipped:
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(listing, index=False)
        written.append(listing)
    elif listing.exists():
        listing.unlink()
    return written


def class_counts(table) -> pd.DataFrame:
    """Predicted galaxies per class (every class, zeros included) and their share."""
    card = table.attrs["model_card"]
    names = list(card["class_names"])
    counts = table["pred_name"].value_counts().reindex(names, fill_value=0)
    labels = long_names(get_variant(card["classes"]))
    total = max(1, int(counts.sum()))
    return pd.DataFrame({"class": names, "label": labels, "count": counts.to_numpy(),
                         "share": counts.to_numpy() / total})
