"""Stages `train` and `import_model`: experiment names and their settings, training, and importing
a model trained elsewhere."""
