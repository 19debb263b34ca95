"""Input pipeline from TFRecord shards: interleave, decode, crop, resize, colour, batch, prefetch.

Preprocessing follows original-method.md section 2: central crop of `crop_size` px out of the 424
frame (224 in the paper, no resize), optionally resized to `image_size`; B0 gets the channel mean
scaled to [0, 1], V2M gets RGB floats 0-255. Training-time augmentation runs here only in `xai`
mode (the model carries it in `standard` mode).
"""

import tensorflow as tf

from spiralarms.data.augment import augmentation_layers
from spiralarms.data.channels import CHANNELS
from spiralarms.data.shards import parse_example
from spiralarms.data.variants import DROPPED

FRAME = 424  # GZ2 cut-outs are 424 x 424


def preprocess(image, model: str, image_size: int, crop_size: int = 224):
    """uint8 HxWx3 (any size) -> float32 image_size^2 x channels, as the model expects it."""
    image = tf.image.convert_image_dtype(image, tf.float32)  # [0, 1]
    if crop_size:
        image = tf.image.central_crop(image, min(1.0, crop_size / FRAME))
    # Identity when the crop already has the model's size (the paper's 224 crop feeds 224 as is);
    # images of other sizes (prediction on new galaxies) land on the same grid.
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    if CHANNELS[model] == 1:
        return tf.reduce_mean(image, axis=-1, keepdims=True)  # Zoobot's greyscale: channel mean
    return image * 255.0  # keras' EfficientNetV2 rescales 0-255 internally


def decode(jpeg_bytes, model: str, image_size: int, crop_size: int = 224):
    image = tf.io.decode_jpeg(jpeg_bytes, channels=3)
    return preprocess(image, model, image_size, crop_size)


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
) -> tf.data.Dataset:
    """Batches of (image, one-hot target) — or (image, target, ids) with `with_ids` for prediction.

    Order is deterministic: files interleave in a fixed cycle and parallel maps keep their order,
    so the same seed gives the same batches.
    """
    table = target_table(variant)
    ds = tf.data.Dataset.from_tensor_slices(list(map(str, files)))
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda ex: {**ex, "target": table.lookup(ex["arm_class"])})
    ds = ds.filter(lambda ex: ex["target"] != DROPPED)
    if count is not None:  # a known length lets Keras size epochs from the first one
        ds = ds.apply(tf.data.experimental.assert_cardinality(int(count)))

    def load(ex):
        image = decode(ex["image"], model, image_size, crop_size)
        ids = {"dr7objid": ex["dr7objid"], "asset_id": ex["asset_id"],
               "arm_fraction": ex["arm_fraction"], "arm_class": ex["arm_class"]}
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
