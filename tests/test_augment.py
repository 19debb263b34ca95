"""Training augmentation as the notebook had it under Keras 2.11: mirror flips, any rotation angle."""

import numpy as np
import pytest

from spiralarms.data.augment import augmentation_layers, layer_seeds

SIZE = 41
CENTRE = (SIZE - 1) / 2


def blob(row, col):
    y, x = np.mgrid[:SIZE, :SIZE]
    return np.exp(-((y - row) ** 2 + (x - col) ** 2) / 2.0).astype("float32")


def chiral_image():
    """Channel 0: a blob at angle 0; channel 1: a blob 60 degrees counter-clockwise of it.
    A rotation keeps the +60 degree offset between them, a mirror turns it into -60."""
    a = blob(CENTRE, CENTRE + 12)
    angle = np.deg2rad(60)
    b = blob(CENTRE - 7 * np.sin(angle), CENTRE + 7 * np.cos(angle))
    return np.stack([a, b], axis=-1)


def angles(images):
    """Counter-clockwise angle (degrees) of each channel's intensity centroid, per image."""
    y, x = np.mgrid[:SIZE, :SIZE]
    weights = images / images.sum(axis=(1, 2), keepdims=True)
    cy = (weights * y[None, :, :, None]).sum(axis=(1, 2))
    cx = (weights * x[None, :, :, None]).sum(axis=(1, 2))
    return np.rad2deg(np.arctan2(CENTRE - cy, cx - CENTRE))


def augment(images, **settings):
    for layer in augmentation_layers(**settings):
        images = layer(images, training=True)
    return np.asarray(images)


def test_mirror_images_occur_and_rotation_angles_cover_the_circle():
    copies = np.repeat(chiral_image()[None], 400, axis=0)
    out = augment(copies, rotation=0.5, flip=True, zoom=0, seed=42)
    theta = angles(out)
    offset = (theta[:, 1] - theta[:, 0] + 180) % 360 - 180
    mirrored = offset < 0
    np.testing.assert_allclose(np.abs(offset), 60, atol=8)  # each copy is a rotation or a mirror
    assert 0.35 < mirrored.mean() < 0.65  # mirrors occur about half the time
    counts, _ = np.histogram(theta[:, 0] % 360, bins=12, range=(0, 360))
    assert (counts > 0).all(), f"rotation angles miss part of the circle: {counts}"


def test_the_two_flips_are_independent_of_each_other():
    image = chiral_image()[None]
    out = augment(np.repeat(image, 400, axis=0), rotation=0, flip=True, zoom=0, seed=7)
    h, v = image[:, :, ::-1], image[:, ::-1, :]
    kinds = [
        next(i for i, ref in enumerate([image, h, v, h[:, ::-1, :]]) if np.allclose(o, ref[0]))
        for o in out
    ]
    shares = np.bincount(kinds, minlength=4) / len(kinds)
    assert (shares > 0.15).all(), f"identity, h-mirror, v-mirror, 180 deg shares: {shares}"


def test_joint_flip_is_keras3s_180_degree_turn_and_never_a_mirror():
    image = chiral_image()[None]
    out = augment(np.repeat(image, 200, axis=0), rotation=0, flip="joint", zoom=0, seed=7)
    turned = image[:, ::-1, ::-1]
    is_turned = [np.allclose(o, turned[0]) for o in out]
    assert all(t or np.allclose(o, image[0]) for t, o in zip(is_turned, out))
    assert 0.3 < np.mean(is_turned) < 0.7


def test_each_layer_has_its_own_seed_derived_from_the_experiment_seed():
    layers = augmentation_layers(rotation=0.5, flip=True, zoom=0.2, seed=42)
    seeds = [layer.seed for layer in layers]
    assert len(layers) == 4 and len(set(seeds)) == 4
    assert seeds == [la.seed for la in augmentation_layers(seed=42)]
    assert seeds != [la.seed for la in augmentation_layers(seed=43)]
    assert layer_seeds(None, 3) == [None] * 3


def test_unknown_flip_setting_is_refused():
    with pytest.raises(ValueError, match="augment.flip"):
        augmentation_layers(flip="both")
