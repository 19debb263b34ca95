from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.report.aggregate import run_aggregate

run_aggregate(
    snakemake.input.metrics,
    snakemake.input.predictions,
    snakemake.output.metrics,
    list(snakemake.output),
    comparisons=snakemake.params.comparisons,
    n_boot=snakemake.params.bootstrap,
    subsets=snakemake.params.subsets,
    truth_path=snakemake.input.truth[0] if snakemake.input.truth else None,
)
