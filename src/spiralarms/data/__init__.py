"""Stage `shards` and the input every later stage reads: class variants (the class map), image
reading and the model's view of an image, TFRecord shards, augmentation and the tf.data pipeline.
Also the `synthesize` rule's function (`synthesize.run_synthesize`): its second contact sheet is
the model's view, which `synthetic/` (a layer below) cannot import."""
