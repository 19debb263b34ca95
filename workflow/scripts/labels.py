from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.gz2 import selection

selection.run_labels(
    snakemake.input.catalog,
    snakemake.input.mapping,
    snakemake.input.images,
    snakemake.params.settings,
    snakemake.output.labels,
    snakemake.output.report,
    physical_path=snakemake.input.physical[0] if snakemake.input.physical else None,
)
