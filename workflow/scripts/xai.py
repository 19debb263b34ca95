from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.xai.stage import run_xai

run_xai(
    snakemake.wildcards.experiment,
    snakemake.input.model,
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.params.settings,
    snakemake.params.xai,
    snakemake.output.xai,
    masks=snakemake.input.get("masks"),  # absent or [] on real data
    threads=snakemake.threads,
)
