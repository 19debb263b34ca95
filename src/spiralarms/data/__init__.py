"""Stage `shards` and the input every later stage reads: class variants (the class map), image
reading and the model's view of an image, TFRecord shards, augmentation and the tf.data pipeline."""
