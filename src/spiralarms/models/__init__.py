"""The networks and what defines a trained model: B0/V2M builders, weight sources (stages
`download_weights`, `convert_weights`, `extract_backbone`), timm conversion and the model card."""

# The two ways a network is built (spiralarms.models.networks), here so that experiment names
# (spiralarms.training.experiment, read while Snakemake builds the DAG) take them without TensorFlow.
MODES = ("standard", "xai")
