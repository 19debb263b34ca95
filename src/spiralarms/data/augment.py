"""Training-time augmentation (the paper's section 3): rotation, mirror flips, zoom.

One set of layers for both places augmentation runs: inside the network in `standard` mode
(`models.networks.build_model`, active in fit only) and in the input pipeline in `xai` mode
(`data.dataset.make_dataset`), so the two modes augment alike.
"""

import keras
import numpy as np

FLIPS = {True: ("horizontal", "vertical"), "joint": ("horizontal_and_vertical",), False: ()}


def augmentation_layers(rotation=0.5, flip=True, zoom=0.2, seed=None) -> list:
    """Section 3: any angle with reflect fill, mirror flips, independent height/width zoom.

    `flip: true` mirrors each axis independently, as Keras 2.11's RandomFlip did for the notebook.
    Keras 3's RandomFlip("horizontal_and_vertical") draws one mask for both axes, so its flip is
    always a 180-degree rotation and never a mirror; `flip: joint` keeps that behaviour on request.
    Each layer gets its own seed derived from `seed`: layers sharing an integer seed draw
    correlated numbers (the flip would follow the sign of the rotation angle).
    """
    if flip not in FLIPS:
        raise ValueError(f"augment.flip={flip!r} must be true, false or 'joint'")
    seeds = iter(layer_seeds(seed))
    layers = []
    if rotation:
        layers.append(
            keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=next(seeds))
        )
    for axis in FLIPS[flip]:
        layers.append(keras.layers.RandomFlip(axis, seed=next(seeds)))
    if zoom:
        layers.append(
            keras.layers.RandomZoom(
                (-zoom, zoom), (-zoom, zoom), fill_mode="reflect", seed=next(seeds)
            )
        )
    return layers


def layer_seeds(seed, count: int = 4) -> list:
    """Independent integer seeds, one per augmentation layer, from the experiment seed."""
    if seed is None:
        return [None] * count
    children = np.random.SeedSequence(int(seed)).spawn(count)
    return [int(child.generate_state(1)[0] % 2**31) for child in children]
