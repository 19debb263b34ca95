from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.data.synthesize import run_synthesize

run_synthesize(
    snakemake.output.catalog,
    snakemake.output.physical,
    snakemake.output.sheet,
    snakemake.output.model_view,
    snakemake.params.settings,
    snakemake.params.model_view,
    workers=snakemake.threads,
)
