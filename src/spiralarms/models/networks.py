"""The paper's two networks (docs/method.md: B0 and V2M rows), rebuilt with keras.applications.

- `b0`: EfficientNetB0 on 1-channel greyscale scaled to [0, 1] (Zoobot's B0 had no internal rescaling);
  backbone frozen when pretrained weights are given, trained when starting from scratch.
- `v2m`: EfficientNetV2M on RGB 0-255 with its built-in preprocessing, fully fine-tuned.
Both get the head GlobalAveragePooling -> Dense(1024, relu) -> Dense(N, softmax); a votes
experiment (issue 20) ends in Zoobot's Dirichlet head instead (spiralarms.models.votes).

Modes: `standard` keeps the augmentation layers inside the model (active in fit only); `xai` leaves
augmentation to the input pipeline, keeps the graph flat so `top_conv` is reachable, and freezes V2M's
batch-norm layers (section 5.4). The two modes' weights are not interchangeable (bug B11).
"""

from pathlib import Path

import keras

from spiralarms import atomic
from spiralarms.data.augment import augmentation_layers
from spiralarms.data.channels import CHANNELS
from spiralarms.models import MODES, votes, weights_card
from spiralarms.models.file_kinds import describe, is_hdf5

# The notebook's feature-map layers (section 7): lower, middle and upper depth of each backbone.
FEATURE_LAYERS = {
    "b0": ("block2a_activation", "block3a_activation", "block5a_activation"),
    "v2m": ("block2a_expand_activation", "block3a_expand_activation", "block5a_expand_activation"),
}


class WeightsFileError(ValueError):
    """A weights file that a backbone cannot load."""


def _backbone(model: str, inputs, weights):
    """The headless network on `inputs`, with the weights loaded (a file holds backbone-only weights)."""
    keras_weights = "imagenet" if weights == "imagenet" else None
    if model == "b0":
        backbone = keras.applications.EfficientNetB0(
            include_top=False, weights=keras_weights, input_tensor=inputs
        )
        # The pipeline feeds [0, 1] like Zoobot's B0; undo keras' built-in 1/255.
        next(la for la in backbone.layers if isinstance(la, keras.layers.Rescaling)).scale = 1.0
    elif model == "v2m":
        backbone = keras.applications.EfficientNetV2M(
            include_top=False, weights=keras_weights, input_tensor=inputs,
            include_preprocessing=True,
        )
    else:
        raise ValueError(f"unknown model {model!r}; choose 'b0' or 'v2m'")
    if weights not in (None, "imagenet"):
        path = Path(weights)
        if not path.exists():
            raise FileNotFoundError(
                f"weights file {path} (config models.{model}.weights) does not exist; give a Keras "
                "weights file for the backbone, 'imagenet', or null to train from scratch"
            )
        if not is_hdf5(path):  # else h5py's traceback, without the file's name
            raise WeightsFileError(
                f"weights file {path} (config models.{model}.weights) is not an HDF5/Keras "
                f"weights file: it is {describe(path)}. Expected the {model} backbone's weights "
                "as Keras writes them (backbone.save_weights('<name>.weights.h5'), a .h5 of "
                "keras.applications, or `spiralarms convert-weights`' output), 'imagenet', or "
                "null to train from scratch")
        # A file from `spiralarms convert-weights` (Zoobot's timm encoder) has a card beside it:
        # timm's numerics (batch-norm epsilon, symmetric padding) and its input range are set
        # before loading; its input mean/std come with the weights (Normalization layer).
        card = weights_card.read_card(path)
        if card is not None:
            weights_card.prepare_backbone(backbone, card)
        backbone.load_weights(path)
    return backbone


def build_model(
    model: str,
    n_classes: int,
    image_size: int,
    mode: str = "standard",
    weights=None,
    augment: dict | None = None,
    bn_momentum: float | None = None,
    seed: int | None = None,
    target: str = "labels",
) -> keras.Model:
    """Return an uncompiled classifier. `weights`: None (from scratch), 'imagenet' or a file path.

    `target` "labels" (the paper): a softmax over the classes. "votes": Zoobot's Dirichlet head
    (spiralarms.models.votes), the model's output the expected vote fraction of each class; its
    `vote_concentration` layer gives the concentrations the loss needs (`training_view`)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    inputs = keras.Input((image_size, image_size, CHANNELS[model]), name="image")
    x = inputs
    if mode == "standard":
        for layer in augmentation_layers(**(augment or {}), seed=seed):
            x = layer(x)
    pretrained = weights is not None

    if mode == "xai":
        # Flat graph: tf-keras-vis must reach `top_conv` and the block activations.
        backbone = _backbone(model, inputs, weights)
        features = backbone.output
    else:
        backbone = _backbone(model, keras.Input(inputs.shape[1:]), weights)
        # As the notebook, pretrained V2M runs with training=False: batch norm keeps its ImageNet
        # statistics while gamma/beta still train.
        features = backbone(x, training=False if (pretrained and model == "v2m") else None)

    if pretrained and model == "b0":
        backbone.trainable = False  # the paper trains only the head on Zoobot's weights
    if pretrained and model == "v2m" and mode == "xai":
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    if bn_momentum is not None and not pretrained:
        # From scratch, the default 0.99 lets BN running statistics lag the fast-moving weights
        # and validation sits at chance for ~10 epochs.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum

    return keras.Model(inputs, head(features, n_classes, target), name=f"{model}_{mode}")


def head(features, n_classes: int, target: str = "labels"):
    """The paper's head on backbone features: pooling, Dense(1024, relu), then a softmax
    (labels) or Zoobot's Dirichlet head ending in the expected vote fractions (votes)."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool_head")(features)
    x = keras.layers.Dense(1024, activation="relu", name="dense_head")(x)
    if target == "votes":
        logits = keras.layers.Dense(n_classes, dtype="float32", name="vote_logits")(x)
        return votes.ExpectedVoteFraction(dtype="float32", name="vote_fraction")(
            votes.concentrations(logits))
    # float32 softmax keeps probabilities stable under mixed precision.
    return keras.layers.Dense(n_classes, activation="softmax", dtype="float32",
                              name="softmax_output")(x)


def training_view(model: keras.Model, target: str = "labels") -> keras.Model:
    """The model the loss sees: the classifier itself for labels; for votes the same layers up to
    the concentrations (the Dirichlet-multinomial needs alpha, not the fractions)."""
    if target == "labels":
        return model
    return keras.Model(model.inputs, model.get_layer("vote_concentration").output,
                       name=f"{model.name}_concentrations")


TARGETS = ("labels", "votes")
HEAD_LAYERS = ("avg_pool_head", "dense_head", "softmax_output", "vote_logits")


def save_backbone(model_path, dest) -> Path:
    """The backbone of a trained classifier (either mode) as a `.weights.h5` that `build_model`
    loads with `weights=` — e.g. to train heads for other class variants on its frozen features."""
    trained = keras.models.load_model(model_path, safe_mode=True)
    nested = [la for la in trained.layers if isinstance(la, keras.Model)]
    if nested:  # standard mode: the backbone is one nested model
        (backbone,) = nested
    else:  # xai mode: a flat graph; the backbone is everything before the head
        name = trained.name.split("_")[0]
        backbone = _backbone(name, keras.Input(trained.input_shape[1:]), None)
        source = [la for la in trained.layers if la.weights and la.name not in HEAD_LAYERS]
        target = [la for la in backbone.layers if la.weights]
        if len(source) != len(target):
            raise ValueError(f"{model_path}: {len(source)} backbone layers with weights, "
                             f"expected {len(target)} for {name}")
        for src, dst in zip(source, target):
            dst.set_weights(src.get_weights())
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(dest, suffix=".weights.h5") as partial:  # Keras insists on it
        backbone.save_weights(partial)
    return dest
