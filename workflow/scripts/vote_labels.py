from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.gz2 import selection

selection.run_vote_labels(
    snakemake.input.catalog,
    snakemake.input.mapping,
    snakemake.input.images,
    snakemake.input.labels,
    snakemake.params.settings,
    snakemake.params.votes,
    snakemake.output.labels,
    snakemake.output.report,
)
