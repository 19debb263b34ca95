"""timm's `efficientnet_b0` weights (Zoobot's v2 encoder) -> weights for our Keras `b0` backbone.

Zoobot publishes its EfficientNetB0 encoder as the timm model
`mwalmsley/zoobot-encoder-efficientnet_b0`: `pytorch_model.bin` (a pickled PyTorch state_dict,
3 input channels) and `config.json` (timm's pretrained_cfg). `convert` writes a Keras
`.weights.h5` that `keras.applications.EfficientNetB0(include_top=False, weights=None)` loads, and
a card saying how the numbers were mapped: `<name>.json` beside `<name>.weights.h5`, and a copy
inside the file (`weights_card`, which every b0 build with such a file reads).
docs/zoobot-weights.md explains the choices.

- Safety: the state_dict is a pickle from the internet, read by `torch_pickle.read_state_dict`
  (no pickled code runs, torch is not needed).
- Layout: PyTorch kernels are OIHW (depthwise (C, 1, k, k)), Keras HWIO (depthwise (k, k, C, 1)).
- Numerics: timm's `efficientnet_b0` uses batch-norm epsilon 1e-5 and PyTorch's symmetric padding;
  Keras' EfficientNetB0 uses epsilon 1e-3 and `ZeroPadding2D(correct_pad)` before its valid stride-2
  convolutions, which pads one pixel less at the top/left on even sizes.
  `weights_card.apply_timm_numerics` makes a built Keras backbone compute what timm computes.
  (`tf_efficientnet_b0` already uses Keras' numerics: TF 'SAME' padding equals `correct_pad`,
  epsilon 1e-3.)
- Input scaling: timm networks do not normalise inside; timm users normalise outside with the
  config's mean/std. Zoobot's own training pipeline fed RGB scaled to [0, 1] and no mean/std
  (`scaling="zoobot"`, the default; `estimate_input_scale` checks it on a real file);
  `scaling="config"` applies config.json's mean/std instead. Our
  pipeline feeds [0, 1]; a needed mean/std goes into the Keras `Normalization` layer's weights.
- Greyscale (`channels=1`): the stem kernel is summed over its three input channels. The 1-channel
  network on a grey image g then computes exactly what the colour network computes on the image
  (g, g, g) with g in every channel; it is not the colour network on the colour image the grey was
  made from (the two agree only if the stem's three channel kernels are equal). With a per-channel
  mean/std the kernel is summed with weights 1/std and the mean folded into the stem batch norm;
  that is exact when the channel means are equal, else exact except for the first row and column of
  the stem output (see `_greyscale_stem`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from spiralarms.acquire import sha256_of
from spiralarms.models.torch_pickle import read_state_dict
from spiralarms.models.weights_card import (
    CARD_FORMAT,
    KERAS_BN_EPSILON,
    KERAS_MODEL,
    TIMM_BN_EPSILON,
    ConversionError,
    check_destination,
    converted_backbone,
    save,
)

SCALINGS = ("zoobot", "config")
# timm architectures with the state_dict layout of efficientnet_b0 -> (padding, bn epsilon).
ARCHITECTURES = {
    "efficientnet_b0": ("pytorch_symmetric", TIMM_BN_EPSILON),
    "tf_efficientnet_b0": ("keras_correct_pad", KERAS_BN_EPSILON),
}
ZOOBOT_SCALING_SOURCE = (
    "Zoobot's training input: RGB floats in [0, 1], no mean/std normalisation (galaxy-datasets "
    "transforms end in ToDtype(float32, scale=True) with normalize=False; Zoobot's "
    "docs/guides/loading_data.rst: 'Values should be floats normalized from 0 to 1'; "
    "train_with_pytorch_lightning asserts 0 <= image <= 1 since March 2024)"
)


def read_timm_config(path) -> dict:
    """timm's config.json (as pushed to the Hugging Face hub): architecture and pretrained_cfg."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot read the timm config ({error})") from None
    cfg = config.get("pretrained_cfg") or {}
    architecture = config.get("architecture") or cfg.get("architecture")
    return {"architecture": architecture, "mean": cfg.get("mean"), "std": cfg.get("std"),
            "input_size": cfg.get("input_size"), "num_features": config.get("num_features")}


def estimate_input_scale(state: dict, images: np.ndarray) -> float:
    """How the input scale the network was trained on compares with `images` (NHWC in [0, 1];
    1 channel is replicated to the stem's 3).

    The stem batch norm's running variance is the variance of the stem convolution's output over
    the training images. Returns the median over stem channels of sqrt(running_var) / std of the
    stem output on `images`: about 1 when training saw inputs scaled like `images`, about 1/255
    when it saw them divided by 255 once more. The mean/std normalisation is not taken into
    account (Zoobot used none). Needs galaxy images like the training set for a fair answer.
    """
    kernel = np.asarray(state["conv_stem.weight"], np.float64)
    images = np.asarray(images, np.float64)
    if images.shape[-1] == 1:
        images = np.repeat(images, kernel.shape[1], axis=-1)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))[:, ::2, ::2]
    out = np.einsum("nhwcij,ocij->nhwo", windows, kernel)
    spread = out.reshape(-1, out.shape[-1]).std(axis=0)
    trained = np.sqrt(np.asarray(state["bn1.running_var"], np.float64))
    live = spread > 1e-12
    return float(np.median(trained[live] / spread[live]))


# Keras block layer suffix -> timm block module, for timm's DepthwiseSeparable (block1a, no
# expansion) and InvertedResidual blocks.
_DS_BLOCK = {"dwconv": "conv_dw", "bn": "bn1", "se_reduce": "se.conv_reduce",
             "se_expand": "se.conv_expand", "project_conv": "conv_pw", "project_bn": "bn2"}
_IR_BLOCK = {"expand_conv": "conv_pw", "expand_bn": "bn1", "dwconv": "conv_dw", "bn": "bn2",
             "se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand",
             "project_conv": "conv_pwl", "project_bn": "bn3"}
_TOP = {"stem_conv": "conv_stem", "stem_bn": "bn1", "top_conv": "conv_head", "top_bn": "bn2"}
_BN = ("weight", "bias", "running_mean", "running_var")  # Keras: gamma, beta, moving_*
IGNORED = re.compile(r"(.*\.num_batches_tracked|classifier\.(weight|bias))")


def _timm_module(model, layer) -> str | None:
    """timm module name of a Keras EfficientNetB0 layer with weights (None for Normalization)."""
    if layer.name in _TOP:
        return _TOP[layer.name]
    match = re.fullmatch(r"block(\d)([a-z])_(\w+)", layer.name)
    if not match:
        return None
    stage, index, part = int(match[1]) - 1, ord(match[2]) - 97, match[3]
    expands = any(la.name == f"block{match[1]}{match[2]}_expand_conv" for la in model.layers)
    table = _IR_BLOCK if expands else _DS_BLOCK
    return f"blocks.{stage}.{index}.{table[part]}"


def _to_keras(array: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":  # OIHW -> HWIO
        return array.transpose(2, 3, 1, 0)
    if kind == "dwconv":  # (C, 1, k, k) -> (k, k, C, 1)
        return array.transpose(2, 3, 0, 1)
    return array


def _timm_shape(shape: tuple, kind: str) -> tuple:
    if kind == "conv":
        return (shape[3], shape[2], shape[0], shape[1])
    if kind == "dwconv":
        return (shape[2], shape[3], shape[0], shape[1])
    return tuple(shape)


def _layer_tensors(model, state: dict, source) -> tuple[dict, set]:
    """Keras layer name -> arrays in `layer.weights` order (stem left in timm layout), and the
    state_dict keys used. Raises ConversionError naming the first missing or misshapen key."""
    import keras

    assignments, used = {}, set()

    def take(key, want_shape, kind, layer):
        if key not in state:
            near = [k for k in state if k.endswith("." + key)]
            hint = (f"; the keys carry a prefix ({near[0][: -len(key)]!r}): strip it first"
                    if near else "; is this timm's efficientnet_b0 (see config.json "
                    "architecture)?")
            raise ConversionError(f"{source}: state_dict lacks {key!r} (for Keras layer "
                                  f"{layer.name}){hint}")
        value = np.asarray(state[key])
        used.add(key)
        if want_shape is not None and tuple(value.shape) != tuple(want_shape):
            raise ConversionError(f"{source}: {key!r} has shape {tuple(value.shape)}, expected "
                                  f"{tuple(want_shape)} for Keras layer {layer.name}")
        return value

    for layer in model.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        module = _timm_module(model, layer)
        if module is None:
            raise ConversionError(f"no timm counterpart for Keras layer {layer.name}")
        shapes = [tuple(w.shape) for w in layer.weights]
        if isinstance(layer, keras.layers.BatchNormalization):
            values = [take(f"{module}.{p}", shapes[i], "vector", layer) for i, p in enumerate(_BN)]
        elif layer.name == "stem_conv":  # input channels handled by the caller
            kernel = take(f"{module}.weight", None, "conv", layer)
            want = _timm_shape(shapes[0], "conv")
            if kernel.ndim != 4 or kernel.shape[0] != want[0] or kernel.shape[2:] != want[2:]:
                raise ConversionError(f"{source}: {module}.weight has shape {kernel.shape}, "
                                      f"expected ({want[0]}, 3, {want[2]}, {want[3]})")
            values = [kernel]
        else:
            kind = "dwconv" if isinstance(layer, keras.layers.DepthwiseConv2D) else "conv"
            values = [_to_keras(take(f"{module}.weight", _timm_shape(shapes[0], kind), kind,
                                     layer), kind)]
            if len(shapes) == 2:
                values.append(take(f"{module}.bias", shapes[1], "vector", layer))
        assignments[layer.name] = values
    return assignments, used


def _greyscale_stem(kernel: np.ndarray, mean: np.ndarray, std: np.ndarray):
    """A 3-channel stem (OIHW) and its input normalisation folded into 1 input channel.

    timm computes, before the stem batch norm, y = sum_c W_c * (x_c - m_c) / s_c with zero padding
    in that normalised space. With x_c = g for every c (the grey image replicated) and our Keras
    input u = (g - mu) / sigma, the kernel K = sigma * sum_c W_c / s_c gives
    y = K * u - delta with delta_o = sum_{c,taps} W_oc (m_c - mu) / s_c, which the caller adds to
    the stem batch norm's moving mean. Both sides pad with zeros after normalising; the taps that
    fall on padding add nothing in timm but are counted in delta, so the result is exact wherever
    no tap is padded, and everywhere when all m_c are equal (then mu = m and delta = 0). With
    PyTorch's symmetric padding of 1 on the stride-2 stem and an even input size only the first
    output row and column have padded taps. mu is the 1/s-weighted mean of m_c and sigma the
    harmonic mean of s_c, so zero mean and unit std give the plain sum over input channels.
    """
    inverse = 1.0 / std
    mu = float((mean * inverse).sum() / inverse.sum())
    sigma = float(len(std) / inverse.sum())
    folded = sigma * (kernel * inverse[None, :, None, None]).sum(axis=1, keepdims=True)
    delta = (kernel * ((mean - mu) * inverse)[None, :, None, None]).sum(axis=(1, 2, 3))
    exact = bool(np.allclose(mean, mean[0], rtol=0, atol=1e-12))
    return folded, mu, sigma, delta, exact


def _scaling(scaling: str, config: dict | None, channels_in: int):
    """(mean, std, note) of timm's input normalisation x = (r - mean) / std for r in [0, 1]."""
    if scaling not in SCALINGS:
        raise ConversionError(f"scaling {scaling!r}: choose one of {SCALINGS}")
    if scaling == "zoobot":
        return np.zeros(channels_in), np.ones(channels_in), ZOOBOT_SCALING_SOURCE
    if not config or config.get("mean") is None or config.get("std") is None:
        raise ConversionError("scaling='config' needs a config.json with pretrained_cfg "
                              "mean and std")
    mean = np.asarray(config["mean"], np.float64)
    std = np.asarray(config["std"], np.float64)
    if mean.shape != (channels_in,) or std.shape != (channels_in,) or (std <= 0).any():
        raise ConversionError(f"config mean {config['mean']} / std {config['std']} do not fit "
                              f"{channels_in} input channels")
    return mean, std, "config.json pretrained_cfg mean/std (timm's resolve_data_config)"


def convert(state_dict_path, dest, config_json=None, channels: int = 1,
            scaling: str = "zoobot", asked_by: str | None = None) -> dict:
    """Write `dest` (a Keras `.weights.h5` for our b0 backbone with `channels` inputs) from timm's
    efficientnet_b0 state_dict, and the card `<dest name>.json` beside it. Returns the card.

    config_json: timm's config.json; its architecture picks the numerics (efficientnet_b0:
    epsilon 1e-5, symmetric padding; tf_efficientnet_b0: Keras' own) and its mean/std are used
    when scaling='config'. Without it the state_dict is taken to be efficientnet_b0.
    channels: 1 sums the stem over its input channels (see the module docstring), 3 keeps colour.
    scaling: 'zoobot' (default): inputs in [0, 1] without mean/std, as Zoobot trained its encoder;
    'config': the config's mean/std, put into the Keras Normalization layer.
    asked_by: what wanted the file (e.g. "config models.b0.weights='hf_hub:...'"), for errors.
    """
    source, dest = Path(state_dict_path), Path(dest)
    check_destination(dest)
    if channels not in (1, 3):
        raise ConversionError(f"channels={channels}: choose 1 (greyscale) or 3 (colour)")
    config = read_timm_config(config_json) if config_json else None
    architecture = (config or {}).get("architecture") or "efficientnet_b0"
    if architecture not in ARCHITECTURES:
        raise ConversionError(f"{config_json}: architecture {architecture!r} is not supported; "
                              f"this converter maps {sorted(ARCHITECTURES)}")
    padding, epsilon = ARCHITECTURES[architecture]
    state = read_state_dict(source, asked_by)

    model = converted_backbone(channels)
    assignments, used = _layer_tensors(model, state, source)
    unexpected = sorted(k for k in set(state) - used if not IGNORED.fullmatch(k))
    if unexpected:
        raise ConversionError(f"{source}: unexpected keys {unexpected[:5]}"
                              f"{' ...' if len(unexpected) > 5 else ''}: not timm's "
                              f"efficientnet_b0 layout")

    stem = np.asarray(assignments["stem_conv"][0], np.float64)
    channels_in = stem.shape[1]
    mean, std, scaling_source = _scaling(scaling, config, channels_in)
    greyscale = None
    if channels == channels_in:
        kernel, norm_mean, norm_var = stem, mean, std**2
    elif channels == 1 and channels_in == 3:
        kernel, mu, sigma, delta, exact = _greyscale_stem(stem, mean, std)
        norm_mean, norm_var = np.array([mu]), np.array([sigma**2])
        bn = assignments["stem_bn"]
        bn[2] = (np.asarray(bn[2], np.float64) + delta).astype(np.float32)
        greyscale = {
            "method": "stem kernel summed over its 3 input channels, each weighted by 1/std "
                      "and scaled by the harmonic mean of std (a plain sum for mean 0, std 1); "
                      "the mean offset folded into stem_bn's moving mean",
            "equivalent_to": "the colour network fed the grey image replicated to all three "
                             "channels (not the colour image the grey came from)",
            "exact": exact,
            "inexact_where": None if exact else (
                "channel means differ: stem output positions whose window touches the zero "
                "padding (for even input sizes the "
                f"{'first' if padding == 'pytorch_symmetric' else 'last'} row and column) "
                "differ from timm's; all other positions are exact"),
        }
    else:
        raise ConversionError(f"{source}: stem has {channels_in} input channels; cannot make "
                              f"{channels} from it")
    assignments["stem_conv"] = [_to_keras(kernel, "conv").astype(np.float32)]

    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.set_weights([norm_mean.astype(np.float32), norm_var.astype(np.float32),
                               np.zeros((), "int64")])
        elif layer.name in assignments:
            layer.set_weights([np.asarray(v, np.float32) for v in assignments[layer.name]])
    card = {
        "format": CARD_FORMAT,
        "source": {"file": source.name, "sha256": sha256_of(source),
                   "config_json": Path(config_json).name if config_json else None,
                   "config_sha256": sha256_of(config_json) if config_json else None},
        "architecture": architecture,
        "architecture_from": "config.json" if config else "assumed (no config.json given)",
        "keras_model": KERAS_MODEL,
        "keras_version": keras.__version__,
        "channels": channels,
        "bn_epsilon": epsilon,
        "padding": padding,
        "input_scaling": {
            "scheme": scaling,
            "range": [0.0, 1.0],
            "timm_mean": mean.tolist(), "timm_std": std.tolist(),
            "keras_normalization": {"mean": norm_mean.tolist(),
                                    "variance": norm_var.tolist()},
            "config_mean": (config or {}).get("mean"), "config_std": (config or {}).get("std"),
            "source": scaling_source,
            "note": ("config.json's mean/std are recorded, not applied: timm's ImageNet "
                     "defaults in pretrained_cfg, which Zoobot's training pipeline never used"
                     if scaling == "zoobot" and (config or {}).get("mean") else None),
        },
        "greyscale": greyscale,
        "tensors": len(used),
        "ignored_keys": sorted(set(state) - used),
    }
    save(model, dest, card)
    return card
