from spiralarms import logs
from spiralarms.models import timm_convert

logs.to_file(snakemake.log[0])
timm_convert.convert(
    snakemake.input.state_dict,
    snakemake.output.weights,
    config_json=snakemake.input.config or None,
    channels=snakemake.params.channels,
)
