"""Tiny, learnable shards for training tests: three classes of stripe patterns as real JPEGs."""

import numpy as np
import pandas as pd
from PIL import Image

from spiralarms.data.shards import shard_files, write_shards


def _pattern(arm_class: int, rng) -> np.ndarray:
    y, x = np.mgrid[0:424, 0:424]
    phase = rng.uniform(0, 2 * np.pi)
    # Periods of ~75 px survive the 224 crop and the resize to 32 px.
    wave = {0: np.sin(y / 12 + phase), 1: np.sin(x / 12 + phase), 2: np.sin((x + y) / 12 + phase)}
    grey = 127 + 100 * wave[arm_class] + rng.normal(0, 20, (424, 424))
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def make_tiny_shards(root, per_class=24, seed=0) -> dict:
    """Write JPEGs, labels and shards under root; return {'train': files, 'val': files}."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for i in range(3 * per_class):
        arm_class = i % 3
        Image.fromarray(_pattern(arm_class, rng)).save(images / f"{i}.jpg", quality=90)
        rows.append({"dr7objid": 1000 + i, "asset_id": i, "arm_class": arm_class,
                     "arm_fraction": 0.9, "subset": "val" if i % 4 == 0 else "train",
                     "image": f"{i}.jpg"})
    write_shards(pd.DataFrame(rows), images, root / "shards", shard_size=16, workers=1)
    return {s: shard_files(root / "shards", s) for s in ("train", "val")}
