"""Tiny, learnable shards for training tests: three classes of stripe patterns as real JPEGs."""

import numpy as np
import pandas as pd
from PIL import Image

from spiralarms.data.shards import shard_files, write_shards
from spiralarms.gz2.catalog import ARM_COUNT as VOTE_COLUMNS


def _pattern(arm_class: int, rng) -> np.ndarray:
    y, x = np.mgrid[0:424, 0:424]
    phase = rng.uniform(0, 2 * np.pi)
    # Periods of ~75 px survive the 224 crop and the resize to 32 px.
    wave = {0: np.sin(y / 12 + phase), 1: np.sin(x / 12 + phase), 2: np.sin((x + y) / 12 + phase)}
    grey = 127 + 100 * wave[arm_class % 3] + rng.normal(0, 20, (424, 424))
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _arm_classes(per_class) -> list:
    """Arm class of each galaxy in order: classes taken in turn until each count is used up."""
    if isinstance(per_class, int):
        return [i % 3 for i in range(3 * per_class)]
    left, order = list(per_class), []
    while any(left):
        for arm_class, n in enumerate(left):
            if n:
                order.append(arm_class)
                left[arm_class] -= 1
    return order


def make_tiny_shards(root, per_class=24, seed=0, votes=False) -> dict:
    """Write JPEGs, labels and shards under root; return {'train': files, 'val': files}.

    `per_class`: galaxies of each of the three stripe classes, or a list of counts per arm class
    (any number of classes; class k draws the stripes of class k % 3). Every fourth galaxy is in
    `val`. `votes`: vote shards, each galaxy with six t11 vote counts (most for its class, a few
    for the next, galaxy 5 none at all), the labels also written to root/labels.parquet."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for i, arm_class in enumerate(_arm_classes(per_class)):
        Image.fromarray(_pattern(arm_class, rng)).save(images / f"{i}.jpg", quality=90)
        rows.append({"dr7objid": 1000 + i, "asset_id": i, "arm_class": arm_class,
                     "arm_fraction": 0.9, "subset": "val" if i % 4 == 0 else "train",
                     "image": f"{i}.jpg"})
    labels = pd.DataFrame(rows)
    if votes:
        counts = np.zeros((len(rows), 6), np.int64)
        for i, arm_class in enumerate(labels["arm_class"]):
            counts[i, arm_class] = 8 + i % 5
            counts[i, (arm_class + 1) % 6] = i % 3
        counts[5] = 0  # a galaxy no volunteer answered: contributes nothing to the loss
        labels[VOTE_COLUMNS] = counts
        labels.to_parquet(root / "labels.parquet", index=False)
    write_shards(labels, images, root / "shards", shard_size=16, workers=1, votes=votes)
    return {s: shard_files(root / "shards", s) for s in ("train", "val")}


def read_arm_classes(files) -> list:
    """arm_class of every record in the shard files, read straight from the TFRecords."""
    import tensorflow as tf

    spec = {"arm_class": tf.io.FixedLenFeature([], tf.int64)}
    return [int(tf.io.parse_single_example(record, spec)["arm_class"])
            for record in tf.data.TFRecordDataset(list(map(str, files)))]
