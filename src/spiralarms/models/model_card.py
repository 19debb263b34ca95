"""The model card: model.json beside each model.keras, the one record of how to feed the model
(network, classes, image and crop size) and of what ran (weights, precision, batch, notes).

Evaluation, explanations and prediction preprocess with the card's sizes, not the config's: an
imported model keeps the preprocessing it was trained with.
"""

import json
from pathlib import Path

PREPROCESSING = ("image_size", "crop_size")


class ModelCardError(ValueError):
    """A model card that is unreadable or lacks what a stage needs."""


def card_path(model_path) -> Path:
    return Path(model_path).with_name("model.json")


def write(model_path, card: dict) -> Path:
    path = card_path(model_path)
    path.write_text(json.dumps(card, indent=1))
    return path


def read(model_path) -> dict:
    """model.json beside `model_path`, or {} when there is none."""
    path = card_path(model_path)
    if not path.exists():
        return {}
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelCardError(f"cannot read model card {path}: {error}") from error
    if not isinstance(card, dict):
        raise ModelCardError(f"model card {path} must hold a JSON object")
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
