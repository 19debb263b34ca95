from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.models import timm_to_keras

timm_to_keras.convert(
    snakemake.input.state_dict,
    snakemake.output.weights,
    config_json=snakemake.input.config or None,
    channels=snakemake.params.channels,
    asked_by=snakemake.params.get("asked_by"),  # names the config key in errors
)
