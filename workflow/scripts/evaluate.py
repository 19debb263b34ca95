from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.evaluation.evaluate import run_evaluate

run_evaluate(
    snakemake.wildcards.experiment,
    snakemake.input.model,
    snakemake.input.shards,
    snakemake.input.labels,
    snakemake.params.subsets,
    snakemake.params.settings,
    snakemake.output.metrics,
    snakemake.output.predictions,
    n_boot=snakemake.params.bootstrap,
    threads=snakemake.threads,
)
