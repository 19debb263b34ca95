"""The model card: model.json beside each model.keras, the one record of how to feed the model
(network, classes, image and crop size) and of what ran (weights, precision, batch, notes).

Written by training and by `import-model` (`write`), read by evaluation, explanations and
prediction (`read`, `preprocessing`), completed from the network and checked against it
(`complete`). Evaluation, explanations and prediction preprocess with the card's sizes, not the
config's: an imported model keeps the preprocessing it was trained with.
"""

import json
from pathlib import Path

from spiralarms import atomic
from spiralarms.data.channels import CHANNELS
from spiralarms.data.variants import VARIANTS, get_variant

KEYS = ("model", "mode", "classes", "class_names", "image_size", "crop_size")
PREPROCESSING = ("image_size", "crop_size")
# The paper's preprocessing: the central 224 px of the 424 px frame, fed at that size. Training
# starts from these (train.DEFAULTS); an imported model without a card gets this crop.
DEFAULTS = {"image_size": 224, "crop_size": 224}


class ModelCardError(ValueError):
    """A model card that is unreadable or lacks what a stage needs."""


def card_path(model_path) -> Path:
    return Path(model_path).with_name("model.json")


def write(model_path, model_name, variant, mode, settings, training=None) -> Path:
    """model.json beside `model_path`: what prediction needs to preprocess and name classes
    (sizes from `settings`), and what ran (weights, precision, batch) so metrics and the summary
    can say it; `training` is None for an imported model (unknown)."""
    card = {"model": model_name, "mode": mode, "classes": variant.name,
            "class_names": list(variant.class_names), "image_size": settings["image_size"],
            "crop_size": settings["crop_size"],
            **({"training": training} if training is not None else {})}
    path = card_path(model_path)
    atomic.write_json(path, card, indent=1)
    return path


def read(model_path) -> dict:
    """model.json beside `model_path`, or {} when there is none."""
    path = card_path(model_path)
    if not path.exists():
        return {}
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelCardError(f"cannot read model card {path}: {error} with keys {KEYS}") from error
    if not isinstance(card, dict):
        raise ModelCardError(f"model card {path} must hold a JSON object with keys {KEYS}")
    return card


def preprocessing(model_path, settings: dict) -> dict:
    """`settings` with the card's image and crop size in place of the config's."""
    card = read(model_path)
    missing = [key for key in PREPROCESSING if card.get(key) is None]
    if missing:
        raise ModelCardError(
            f"model card {card_path(model_path)} lacks {missing}: it says how the model's input was "
            "preprocessed; write it with `spiralarms import` (--image-size/--crop-size)")
    return {**settings, **{key: card[key] for key in PREPROCESSING}}


def complete(model, model_path, overrides: dict | None = None) -> dict:
    """The complete card of a loaded `model`: model.json, then `overrides`, then the input shape.

    Raises ModelCardError naming what is missing (and the CLI flags that supply it) or what
    contradicts the network.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    card = {**read(model_path), **overrides}
    channels, size = _input_geometry(model, model_path)
    # build_model gives b0 one greyscale channel and v2m RGB: the channel count names the model.
    card.setdefault("model", next(name for name, c in CHANNELS.items() if c == channels))
    card.setdefault("image_size", size)
    missing = [k for k in ("classes", "crop_size") if card.get(k) is None]
    if missing:
        flags = " ".join(f"--{k.replace('_', '-')}" for k in missing)
        raise ModelCardError(
            f"no model card (model.json) beside {model_path} gives {missing}: pass {flags} "
            f"(classes: one of {sorted(VARIANTS)}; crop_size: {DEFAULTS['crop_size']} in the paper)"
        )
    if "class_names" not in card or "classes" in overrides:
        card["class_names"] = list(get_variant(card["classes"]).class_names)
    card.setdefault("mode", "standard")
    _check_fits(card, model, model_path, channels, size)
    return {k: card[k] for k in KEYS}


def _input_geometry(model, model_path):
    shape = model.inputs[0].shape if len(model.inputs) == 1 else None
    if shape is None or len(shape) != 4 or shape[-1] not in (1, 3):
        raise ModelCardError(f"{model_path}: expected one image input (batch, H, W, 1 or 3), "
                             f"got {[tuple(t.shape) for t in model.inputs]}")
    return shape[-1], shape[1]


def _check_fits(card, model, model_path, channels, size):
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
