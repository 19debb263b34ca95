"""timm's `efficientnet_b0` weights (Zoobot's v2 encoder) -> weights for our Keras `b0` backbone.

Zoobot publishes its EfficientNetB0 encoder as the timm model
`mwalmsley/zoobot-encoder-efficientnet_b0`: `pytorch_model.bin` (a pickled PyTorch state_dict,
3 input channels) and `config.json` (timm's pretrained_cfg). `convert` writes a Keras
`.weights.h5` that `keras.applications.EfficientNetB0(include_top=False, weights=None)` loads, and
a card saying how the numbers were mapped: `<name>.json` beside `<name>.weights.h5`, and a copy
inside the file.
`spiralarms.models.networks._backbone` reads that card and sets the backbone up to match
(`prepare_backbone`). docs/zoobot-weights.md explains the choices.

- Safety: the state_dict is a pickle from the internet. `read_state_dict` reads torch's zip format
  with a restricted unpickler that only rebuilds plain tensors (into numpy) and refuses every other
  global, so no pickled code runs and torch is not needed.
- Layout: PyTorch kernels are OIHW (depthwise (C, 1, k, k)), Keras HWIO (depthwise (k, k, C, 1)).
- Numerics: timm's `efficientnet_b0` uses batch-norm epsilon 1e-5 and PyTorch's symmetric padding;
  Keras' EfficientNetB0 uses epsilon 1e-3 and `ZeroPadding2D(correct_pad)` before its valid stride-2
  convolutions, which pads one pixel less at the top/left on even sizes. `apply_timm_numerics`
  makes a built Keras backbone compute what timm computes. (`tf_efficientnet_b0` already uses
  Keras' numerics: TF 'SAME' padding equals `correct_pad`, epsilon 1e-3.)
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

`convert_tf_checkpoint` maps a legacy Zoobot TF checkpoint (the paper's
`replicated_train_only_greyscale_tf`) by variable name; see its docstring for what is verified.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

CARD_FORMAT = "spiralarms.timm_convert/1"
CARD_ATTRIBUTE = "spiralarms_card"  # HDF5 root attribute of a converted weights file
WEIGHTS_SUFFIX = ".weights.h5"
TIMM_BN_EPSILON = 1e-5
KERAS_BN_EPSILON = 1e-3
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
MAX_PICKLE_BYTES = 64 * 2**20  # a state_dict's data.pkl is tens of kB


class ConversionError(ValueError):
    """The file is not timm's efficientnet_b0 state_dict (missing/unexpected key, wrong shape)."""


class UnsafePickleError(ConversionError):
    """The pickle asks for something a state_dict of tensors never needs."""


# --- reading a PyTorch state_dict without torch and without running pickled code ----------------

class _StorageType:
    """Stands in for `torch.FloatStorage` & co.: a dtype, nothing callable."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: str):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
_STORAGES = {name: _StorageType(name, dtype) for name, dtype in _DTYPES.items()}
# Identity -> dtype, so a pickle that edits a stand-in's attributes cannot change its dtype.
_STORAGE_DTYPES = {id(storage): (name, np.dtype(_DTYPES[name]))
                   for name, storage in _STORAGES.items()}


class _Storage:
    """One `data/<key>` record of the archive as a flat numpy array."""

    __slots__ = ("array", "bfloat16")

    def __init__(self, array: np.ndarray, bfloat16: bool):
        self.array, self.bfloat16 = array, bfloat16


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """numpy version of torch._utils._rebuild_tensor_v2, bounds-checked (a strided view past the
    storage would read foreign memory)."""
    if not (isinstance(storage, _Storage) and isinstance(storage.array, np.ndarray)):
        raise UnsafePickleError(f"a tensor is built from {type(storage).__name__}, not a storage")
    ints = (storage_offset, *size, *stride)
    if not all(type(v) is int for v in ints) or len(size) != len(stride) or min(ints, default=0) < 0:
        raise ConversionError(f"malformed tensor: offset {storage_offset}, size {size}, "
                              f"stride {stride}")
    flat = storage.array
    if 0 in size:
        out = np.zeros(size, flat.dtype)
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise ConversionError(f"tensor of size {tuple(size)} reads past its storage "
                                  f"({flat.size} elements)")
        out = np.lib.stride_tricks.as_strided(
            flat[storage_offset:], shape=tuple(size),
            strides=tuple(s * flat.itemsize for s in stride), writeable=False).copy()
    if storage.bfloat16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): storage for name, storage in _STORAGES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.source = archive, prefix, source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol-2 name
        alias = f" (os.{name})" if module in ("posix", "nt") else ""
        raise UnsafePickleError(
            f"{self.source}: refused to load: the pickle asks for {module}.{name}{alias}, which a "
            f"weights file never needs; a state_dict of tensors only uses "
            f"{', '.join(sorted({f'{m}.{n}' for m, n in _ALLOWED if m != 'torch'}))} and torch "
            f"storage types. Do not open this file with torch.load or pickle either."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and id(pid[1]) in _STORAGE_DTYPES and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise UnsafePickleError(f"{self.source}: refused to load: unexpected persistent id "
                                    f"{str(pid)[:80]}")
        _, kind, key, _location, numel = pid
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise UnsafePickleError(f"{self.source}: refused to load: storage key {key!r}")
        kind_name, dtype = _STORAGE_DTYPES[id(kind)]
        entry = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(entry)
        except KeyError:
            raise ConversionError(f"{self.source}: archive lacks storage {entry}") from None
        if info.file_size != numel * dtype.itemsize:
            raise ConversionError(f"{self.source}: storage {entry} holds {info.file_size} bytes, "
                                  f"expected {numel} x {dtype.itemsize}")
        array = np.frombuffer(self.archive.read(entry), dtype=dtype)
        return _Storage(array, kind_name == "BFloat16Storage")


def read_state_dict(path) -> dict[str, np.ndarray]:
    """Tensors of a `torch.save`d state_dict (torch's zip format, torch >= 1.6) as numpy arrays.

    Reads `<archive>/data.pkl` with an unpickler that allows only collections.OrderedDict,
    torch._utils._rebuild_tensor_v2 and torch storage types, each replaced by our own numpy code,
    and maps the storages `<archive>/data/<n>` into numpy. Any other global is refused
    (`UnsafePickleError`) before anything runs. torch is not imported.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(16)
        kind = ("torch's legacy (pre-1.6) format" if head[:2] == b"\x80\x02"
                else "a safetensors file" if head[8:9] == b"{" else "not a torch zip archive")
        raise ConversionError(f"{path}: {kind}; expected a state_dict saved by torch.save "
                              f"(zip format, torch >= 1.6)")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")
                   and n.count("/") == 1]
        if len(pickles) != 1:
            raise ConversionError(f"{path}: expected one <archive>/data.pkl, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist():
            order = archive.read(prefix + "byteorder").decode().strip()
            if order != "little":
                raise ConversionError(f"{path}: byte order {order!r} is not supported")
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise ConversionError(f"{path}: data.pkl is implausibly large for a state_dict")
        unpickler = _StateDictUnpickler(archive.read(pickles[0]), archive, prefix, path)
        try:
            state = unpickler.load()
        except ConversionError:
            raise
        except Exception as error:  # noqa: BLE001 - a pickle misusing the allowed objects
            raise UnsafePickleError(f"{path}: refused to load: not a plain state_dict "
                                    f"({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
            for k, v in state.items()):
        raise ConversionError(f"{path}: the pickle is not a mapping of names to tensors")
    return dict(state)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- state_dict -> Keras layers ------------------------------------------------------------------

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


def _keras_b0(channels: int, size: int = 224):
    import keras

    return keras.applications.EfficientNetB0(include_top=False, weights=None,
                                             input_shape=(size, size, channels))


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
            scaling: str = "zoobot") -> dict:
    """Write `dest` (a Keras `.weights.h5` for our b0 backbone with `channels` inputs) from timm's
    efficientnet_b0 state_dict, and the card `<dest name>.json` beside it. Returns the card.

    config_json: timm's config.json; its architecture picks the numerics (efficientnet_b0:
    epsilon 1e-5, symmetric padding; tf_efficientnet_b0: Keras' own) and its mean/std are used
    when scaling='config'. Without it the state_dict is taken to be efficientnet_b0.
    channels: 1 sums the stem over its input channels (see the module docstring), 3 keeps colour.
    scaling: 'zoobot' (default): inputs in [0, 1] without mean/std, as Zoobot trained its encoder;
    'config': the config's mean/std, put into the Keras Normalization layer.
    """
    source, dest = Path(state_dict_path), Path(dest)
    if not dest.name.endswith(WEIGHTS_SUFFIX):
        raise ConversionError(f"{dest}: the destination must end in {WEIGHTS_SUFFIX}")
    if channels not in (1, 3):
        raise ConversionError(f"channels={channels}: choose 1 (greyscale) or 3 (colour)")
    config = read_timm_config(config_json) if config_json else None
    architecture = (config or {}).get("architecture") or "efficientnet_b0"
    if architecture not in ARCHITECTURES:
        raise ConversionError(f"{config_json}: architecture {architecture!r} is not supported; "
                              f"this converter maps {sorted(ARCHITECTURES)}")
    padding, epsilon = ARCHITECTURES[architecture]
    state = read_state_dict(source)

    model = _keras_b0(channels)
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
        "source": {"file": source.name, "sha256": _sha256(source),
                   "config_json": Path(config_json).name if config_json else None,
                   "config_sha256": _sha256(Path(config_json)) if config_json else None},
        "architecture": architecture,
        "architecture_from": "config.json" if config else "assumed (no config.json given)",
        "keras_model": "keras.applications.EfficientNetB0(include_top=False, weights=None)",
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
    _save(model, dest, card)
    return card


def _save(model, dest: Path, card: dict) -> None:
    """Weights, then card, each written to a temporary name and renamed into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    import h5py

    partial = dest.with_name(f".{dest.name[: -len(WEIGHTS_SUFFIX)]}.partial{WEIGHTS_SUFFIX}")
    model.save_weights(partial)
    with h5py.File(partial, "a") as h5:  # the card also travels inside the weights file
        h5.attrs[CARD_ATTRIBUTE] = json.dumps(card)
    os.replace(partial, dest)
    card_file = card_path(dest)
    partial_card = card_file.with_name(f".{card_file.name}.partial")
    partial_card.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(partial_card, card_file)


# --- using a converted file ----------------------------------------------------------------------

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
    if text is None and _is_h5(weights_path):
        import h5py

        with h5py.File(weights_path, "r") as h5:
            text = h5.attrs.get(CARD_ATTRIBUTE)
    try:
        card = json.loads(text) if text else None
    except ValueError:
        return None
    return card if isinstance(card, dict) and card.get("format") == CARD_FORMAT else None


def _is_h5(path) -> bool:
    if not Path(path).is_file():
        return False
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


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


# --- legacy Zoobot TF checkpoint -----------------------------------------------------------------

# Keras 3 weight name -> tf.keras 2 variable name where they differ.
_LEGACY_WEIGHT_NAMES = {("DepthwiseConv2D", "kernel"): "depthwise_kernel"}


def _checkpoint_names(reader, source) -> dict[str, str]:
    """Variable name (`stem_conv/kernel`) -> checkpoint key, from the object graph's full names."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    if not reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):  # TF1 Saver: keys are the names
        return {key: key for key in reader.get_variable_to_shape_map()}
    graph_bytes = reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(graph_bytes)
    names: dict[str, str] = {}
    for node in graph.nodes:
        for attribute in node.attributes:
            name = attribute.full_name.removesuffix(":0")
            if not name:
                continue
            if names.get(name, attribute.checkpoint_key) != attribute.checkpoint_key:
                raise ConversionError(f"{source}: variable {name} appears twice")
            names[name] = attribute.checkpoint_key
    return names


def convert_tf_checkpoint(checkpoint, dest) -> dict:
    """Map a legacy Zoobot TF EfficientNetB0 checkpoint onto our 1-channel b0 by variable name.

    Zoobot (TF, e.g. commit e6253b7) builds its own copy of qubvel's EfficientNet with the Keras
    layer names (`stem_conv`, `block1a_dwconv`, `block2a_expand_bn`, `top_conv`, ...) inside
    `Sequential([augmentations..., Sequential([EfficientNet]), pooling, dropout, Dense])` and saves
    with `save_weights` (an object-based checkpoint). Its keys are object paths
    (`layer_with_weights-0/layer_with_weights-0/layer_with_weights-5/gamma/.ATTRIBUTES/
    VARIABLE_VALUE`), but the checkpoint's object graph keeps each variable's name as `full_name`
    (`stem_bn/gamma`), which is what this maps on. Kernels are HWIO in both, so nothing is
    transposed. Its numerics are Keras' own: 'same' padding on the stride-2 layers (TF SAME pads
    exactly like `correct_pad` + valid), epsilon 1e-3, no input rescaling: 1 channel in [0, 1].
    The head (Dense) and optimizer slots are ignored.

    Verified here only against checkpoints written with that naming (tests); the paper's own file
    was not available to check its names.
    """
    import keras
    import tensorflow as tf

    source, dest = Path(checkpoint), Path(dest)
    if not dest.name.endswith(WEIGHTS_SUFFIX):
        raise ConversionError(f"{dest}: the destination must end in {WEIGHTS_SUFFIX}")
    try:
        reader = tf.train.load_checkpoint(str(source))
    except (tf.errors.OpError, ValueError) as error:
        raise ConversionError(f"{source}: not a TF checkpoint ({error})") from None
    names = _checkpoint_names(reader, source)
    shapes = reader.get_variable_to_shape_map()
    model = _keras_b0(1)
    used = set()
    for layer in model.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        values = []
        for weight in layer.weights:
            short = weight.name.rsplit("/", 1)[-1]
            legacy = _LEGACY_WEIGHT_NAMES.get((type(layer).__name__, short), short)
            name = f"{layer.name}/{legacy}"
            if name not in names:
                raise ConversionError(f"{source}: checkpoint lacks variable {name!r} (for Keras "
                                      f"layer {layer.name}); not Zoobot's TF EfficientNetB0?")
            key = names[name]
            if tuple(shapes[key]) != tuple(weight.shape):
                raise ConversionError(f"{source}: {name!r} has shape {tuple(shapes[key])}, "
                                      f"expected {tuple(weight.shape)}")
            values.append(reader.get_tensor(key))
            used.add(name)
        layer.set_weights(values)
    norm = next(la for la in model.layers if isinstance(la, keras.layers.Normalization))
    norm.set_weights([np.zeros(1, np.float32), np.ones(1, np.float32), np.zeros((), "int64")])
    index = Path(str(source) + ".index")
    card = {
        "format": CARD_FORMAT,
        "source": {"file": source.name,
                   "sha256": _sha256(index) if index.is_file() else None,
                   "sha256_of": index.name if index.is_file() else None,
                   "config_json": None, "config_sha256": None},
        "architecture": "zoobot_tf_efficientnet_b0",
        "architecture_from": "legacy Zoobot TF checkpoint (variable names)",
        "keras_model": "keras.applications.EfficientNetB0(include_top=False, weights=None)",
        "keras_version": keras.__version__,
        "channels": 1,
        "bn_epsilon": KERAS_BN_EPSILON,
        "padding": "keras_correct_pad",
        "input_scaling": {
            "scheme": "zoobot_tf", "range": [0.0, 1.0], "timm_mean": None, "timm_std": None,
            "keras_normalization": {"mean": [0.0], "variance": [1.0]},
            "config_mean": None, "config_std": None,
            "source": "legacy Zoobot: greyscale in [0, 1], no rescaling inside the network",
            "note": None,
        },
        "greyscale": {"method": "native (trained on greyscale)", "exact": True,
                      "equivalent_to": "the checkpoint as trained", "inexact_where": None},
        "tensors": len(used),
        "ignored_keys": sorted(set(names) - used),
    }
    _save(model, dest, card)
    return card


def is_tf_checkpoint(path) -> bool:
    """A TF checkpoint prefix (`<prefix>.index` exists) or a folder with a `checkpoint` file."""
    path = Path(path)
    return Path(str(path) + ".index").is_file() or (path / "checkpoint").is_file()


__all__ = [
    "ConversionError", "UnsafePickleError", "apply_timm_numerics", "card_path", "convert",
    "convert_tf_checkpoint", "estimate_input_scale", "is_tf_checkpoint", "prepare_backbone",
    "read_card",
    "read_state_dict", "read_timm_config",
]
