from spiralarms import logs
from spiralarms.report.aggregate import run_aggregate

logs.to_file(snakemake.log[0])
run_aggregate(
    snakemake.input.metrics,
    snakemake.input.predictions,
    snakemake.output.metrics,
    list(snakemake.output),
    comparisons=snakemake.params.comparisons,
    n_boot=snakemake.params.bootstrap,
)
