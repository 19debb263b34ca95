"""A legacy Zoobot TF checkpoint (the paper's `replicated_train_only_greyscale_tf`) -> weights for
our Keras `b0` backbone, mapped by variable name; `convert_tf_checkpoint` says what is verified.
The result is a converted weights file with its card (`weights_card`), like timm's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spiralarms.acquire import sha256_of
from spiralarms.models.weights_card import (
    CARD_FORMAT,
    KERAS_BN_EPSILON,
    KERAS_MODEL,
    ConversionError,
    check_destination,
    converted_backbone,
    save,
)

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
    check_destination(dest)
    try:
        reader = tf.train.load_checkpoint(str(source))
    except (tf.errors.OpError, ValueError) as error:
        raise ConversionError(f"{source}: not a TF checkpoint ({error})") from None
    names = _checkpoint_names(reader, source)
    shapes = reader.get_variable_to_shape_map()
    model = converted_backbone(1)
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
                   "sha256": sha256_of(index) if index.is_file() else None,
                   "sha256_of": index.name if index.is_file() else None,
                   "config_json": None, "config_sha256": None},
        "architecture": "zoobot_tf_efficientnet_b0",
        "architecture_from": "legacy Zoobot TF checkpoint (variable names)",
        "keras_model": KERAS_MODEL,
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
    save(model, dest, card)
    return card


def is_tf_checkpoint(path) -> bool:
    """A TF checkpoint prefix (`<prefix>.index` exists) or a folder with a `checkpoint` file."""
    path = Path(path)
    return Path(str(path) + ".index").is_file() or (path / "checkpoint").is_file()
