"""The card of a converted weights file: what every b0 build with such a file reads.

A converter (`timm_to_keras` for Zoobot's timm encoder, `tf_checkpoint` for a legacy Zoobot TF
checkpoint) writes a Keras `.weights.h5` for `converted_backbone` and a card saying how the numbers
were mapped: `<name>.json` beside `<name>.weights.h5`, and a copy inside the file (HDF5 root
attribute), so the file alone still says it. `spiralarms.models.networks._backbone` reads the card
(`read_card`) and sets the backbone up to compute what the source network computed
(`prepare_backbone`): timm's batch-norm epsilon and symmetric padding (`apply_timm_numerics`) and
the input range. docs/zoobot-weights.md explains the choices.
"""

from __future__ import annotations

import json
from pathlib import Path

from spiralarms import atomic
from spiralarms.models.file_kinds import is_hdf5

# The name predates the split of the converter into modules; cards already written carry it.
CARD_FORMAT = "spiralarms.timm_convert/1"
CARD_ATTRIBUTE = "spiralarms_card"  # HDF5 root attribute of a converted weights file
WEIGHTS_SUFFIX = ".weights.h5"
TIMM_BN_EPSILON = 1e-5
KERAS_BN_EPSILON = 1e-3
KERAS_MODEL = "keras.applications.EfficientNetB0(include_top=False, weights=None)"


class ConversionError(ValueError):
    """A source that cannot become a converted weights file (unreadable, missing or unexpected
    key, wrong shape), or a destination that cannot take one."""


def converted_backbone(channels: int, size: int = 224):
    """The Keras network (KERAS_MODEL) a converted weights file is for."""
    import keras

    return keras.applications.EfficientNetB0(include_top=False, weights=None,
                                             input_shape=(size, size, channels))


def check_destination(dest: Path) -> None:
    if not dest.name.endswith(WEIGHTS_SUFFIX):
        raise ConversionError(f"{dest}: the destination must end in {WEIGHTS_SUFFIX}")


def save(model, dest: Path, card: dict) -> None:
    """Weights (with the card inside), then the card beside them, each complete or not at all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    import h5py

    with atomic.replacing(dest, suffix=WEIGHTS_SUFFIX) as partial:  # Keras insists on it
        model.save_weights(partial)
        with h5py.File(partial, "a") as h5:  # the card also travels inside the weights file
            h5.attrs[CARD_ATTRIBUTE] = json.dumps(card)
    atomic.write_json(card_path(dest), card)


def card_path(weights_path) -> Path:
    """`<name>.json` beside `<name>.weights.h5`."""
    path = Path(weights_path)
    stem = path.name[: -len(WEIGHTS_SUFFIX)] if path.name.endswith(WEIGHTS_SUFFIX) else path.stem
    return path.with_name(stem + ".json")


def read_card(weights_path) -> dict | None:
    """The converter's card for a weights file: the `<name>.json` beside it, else the copy inside
    the file; None for a plain Keras weights file."""
    path = card_path(weights_path)
    text = path.read_text() if path.is_file() else None
    if text is None and is_hdf5(weights_path):
        import h5py

        with h5py.File(weights_path, "r") as h5:
            text = h5.attrs.get(CARD_ATTRIBUTE)
    try:
        card = json.loads(text) if text else None
    except ValueError:
        return None
    return card if isinstance(card, dict) and card.get("format") == CARD_FORMAT else None


def apply_timm_numerics(backbone, bn_epsilon: float = TIMM_BN_EPSILON) -> dict:
    """Make a built Keras EfficientNetB0 compute like timm's efficientnet_b0 (in place).

    Sets every BatchNormalization epsilon to 1e-5, and pads every stride-2 ZeroPadding2D layer
    symmetrically (k // 2 on each side, PyTorch's padding) instead of `correct_pad`'s one pixel
    less at the top/left on even sizes. The valid stride-2 convolution after it then sees the
    same windows as PyTorch's and the output grid keeps its size. Returns what changed.
    """
    import keras

    changed = {"bn_epsilon": bn_epsilon, "batch_norm_layers": 0, "padding": {}}
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = float(bn_epsilon)
            changed["batch_norm_layers"] += 1
        elif isinstance(layer, keras.layers.ZeroPadding2D):
            conv = backbone.get_layer(layer.name.removesuffix("_pad"))
            if tuple(conv.strides) != (2, 2) or conv.padding != "valid":
                raise ValueError(f"{layer.name} does not feed a valid stride-2 convolution")
            (kh, kw) = conv.kernel_size
            layer.padding = ((kh // 2, kh // 2), (kw // 2, kw // 2))
            changed["padding"][layer.name] = [list(p) for p in layer.padding]
    return changed


def prepare_backbone(backbone, card: dict) -> None:
    """Set a Keras b0 backbone up for a converted weights file, before `load_weights`: the
    card's numerics and input range. The Normalization mean/variance come with the weights."""
    import keras

    if backbone.name != "efficientnetb0":
        raise ValueError(f"the weights card is for EfficientNetB0; this backbone is "
                         f"{backbone.name}")
    channels = backbone.input_shape[-1]
    if card.get("channels") != channels:
        raise ValueError(f"the weights were converted for {card.get('channels')} input channels; "
                         f"this backbone takes {channels}")
    if card.get("padding") == "pytorch_symmetric":
        apply_timm_numerics(backbone, card["bn_epsilon"])
    elif card.get("padding") != "keras_correct_pad" or card.get("bn_epsilon") != KERAS_BN_EPSILON:
        raise ValueError(f"unknown numerics in the weights card: padding {card.get('padding')}, "
                         f"epsilon {card.get('bn_epsilon')}")
    low, high = card["input_scaling"]["range"]
    if low != 0:
        raise ValueError(f"input range {low}..{high} is not supported (the pipeline feeds [0, 1])")
    rescaling = next(la for la in backbone.layers if isinstance(la, keras.layers.Rescaling))
    rescaling.scale = float(high)  # the pipeline feeds [0, 1]
