"""A tiny saved model with its card and a folder of good and broken images, for prediction tests."""

import keras
import numpy as np
from PIL import Image

from spiralarms.data.variants import VARIANTS
from spiralarms.models import model_card
from spiralarms.models.networks import build_model

IMAGE_SIZE = 32
CARD_SETTINGS = {"image_size": IMAGE_SIZE, "crop_size": 224}
GOOD = ["galaxy.jpg", "grey.png", "palette.png", "rgba.png", "upper.JPEG"]
BAD = ["corrupt.jpg", "notes.png"]


def save_tiny_model(folder, variant="6class"):
    """An untrained B0 at 32 px with its model card, as training leaves it."""
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model("b0", VARIANTS[variant].n_classes, IMAGE_SIZE, "standard")
    path = folder / "model.keras"
    model.save(path)
    model_card.write(path, "b0", VARIANTS[variant], "standard", CARD_SETTINGS)
    return path


def save_small_network(folder, variant="6class"):
    """A few-layer network in b0's input format (32 px, one channel) with its card, for tests of
    what surrounds a model (files, transport, tables): a B0 takes ~15 s to load and trace."""
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    network = keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(VARIANTS[variant].n_classes, activation="softmax")])
    path = folder / "model.keras"
    network.save(path)
    model_card.write(path, "b0", VARIANTS[variant], "standard", CARD_SETTINGS)
    return path


def galaxy_pixels(size=424, seed=0):
    """A smooth, bright-centred blob with noise: JPEG-like content, not a flat field."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size / 2
    blob = 255 * np.exp(-(x**2 + y**2) / (2 * (size / 6) ** 2))
    rgb = np.stack([blob, 0.8 * blob, 0.6 * blob], -1) + rng.normal(0, 12, (size, size, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_images(folder):
    """The good images of GOOD, the broken files of BAD, and a text file that is not scanned."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(galaxy_pixels()).save(folder / "galaxy.jpg", quality=90)
    Image.fromarray(galaxy_pixels(200, 1)).save(folder / "upper.JPEG")
    rgba = np.dstack([galaxy_pixels(424, 2)[:60, :100], np.full((60, 100), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(galaxy_pixels(80, 3)[..., 0], "L").save(folder / "grey.png")
    Image.fromarray(galaxy_pixels(90, 4)).convert("P").save(folder / "palette.png")
    whole = (folder / "galaxy.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(whole[: len(whole) // 3])  # truncated download
    (folder / "notes.png").write_text("not an image\n")
    (folder / "readme.txt").write_text("ignored: not an image suffix\n")
    return folder
