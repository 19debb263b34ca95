"""Input pipeline from TFRecord shards: interleave, decode, crop, resize, colour, batch, prefetch.

Decoding and preprocessing are `spiralarms.data.images.decode` (central crop, resize, colour: see
there and docs/method.md). Training-time augmentation runs here only in `xai` mode (the model
carries it in `standard` mode).
"""

import tensorflow as tf

from spiralarms.data.augment import augmentation_layers
from spiralarms.data.images import decode
from spiralarms.data.shards import parse_example
from spiralarms.data.variants import DROPPED


def target_table(variant) -> tf.lookup.StaticHashTable:
    """arm_class -> target index (`Variant.lookup`), DROPPED for classes the variant drops."""
    keys = tf.constant(list(range(len(variant.lookup))), tf.int64)
    values = tf.constant(variant.lookup, tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), DROPPED)


def make_dataset(
    files,
    model: str,
    variant,
    image_size: int,
    crop_size: int = 224,
    batch_size: int = 16,
    shuffle: bool = False,
    augment: dict | None = None,
    cache: bool = False,
    seed: int = 0,
    with_ids: bool = False,
    count: int | None = None,
    target: str = "labels",
) -> tf.data.Dataset:
    """Batches of (image, one-hot target) — or (image, target, ids) with `with_ids` for prediction.

    `target` "votes" (vote shards, issue 20): the target is the galaxy's t11 vote counts merged
    into the variant's classes (`Variant.vote_matrix`: merged answers summed, dropped answers
    discarded) instead of the one-hot label; which galaxies a variant keeps is decided by their
    label in both cases, so both targets see the same galaxies.

    Order is deterministic: files interleave in a fixed cycle and parallel maps keep their order,
    so the same seed gives the same batches.
    """
    table = target_table(variant)
    ds = tf.data.Dataset.from_tensor_slices(list(map(str, files)))
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    votes = target == "votes"
    ds = ds.map(lambda record: parse_example(record, votes=votes),
                num_parallel_calls=tf.data.AUTOTUNE)
    vote_matrix = tf.constant(variant.vote_matrix)
    ds = ds.map(lambda ex: {**ex, "target": table.lookup(ex["arm_class"])})
    ds = ds.filter(lambda ex: ex["target"] != DROPPED)
    if count is not None:  # a known length lets Keras size epochs from the first one
        ds = ds.apply(tf.data.experimental.assert_cardinality(int(count)))

    def load(ex):
        image = decode(ex["image"], model, image_size, crop_size)
        ids = {"dr7objid": ex["dr7objid"], "asset_id": ex["asset_id"],
               "arm_fraction": ex["arm_fraction"], "arm_class": ex["arm_class"]}
        if votes:
            counts = tf.cast(ex["arm_votes"], tf.float32)[None, :]
            return image, tf.matmul(counts, vote_matrix)[0], ids
        return image, tf.one_hot(ex["target"], variant.n_classes), ids

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(2048, seed=seed, reshuffle_each_iteration=True)  # bug B6 fix, optional
    ds = ds.batch(batch_size)
    if augment is not None:
        layers = augmentation_layers(**augment, seed=seed)

        def augment_batch(images, targets, ids):
            for layer in layers:
                images = layer(images, training=True)
            return images, targets, ids

        ds = ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    if not with_ids:
        ds = ds.map(lambda images, targets, ids: (images, targets))
    return ds.prefetch(tf.data.AUTOTUNE)
