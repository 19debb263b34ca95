from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.training.train import run_train

run_train(
    snakemake.wildcards.experiment,
    snakemake.input.shards,
    snakemake.params.settings,
    snakemake.input.weights or None,
    snakemake.output.model,
    snakemake.output.history,
    snakemake.params.work_dir,
    weights_source=snakemake.params.weights_source,
    synthetic=snakemake.params.synthetic,
    note=snakemake.params.note,
    threads=snakemake.threads,
    vote_report=snakemake.input.vote_report or None,
)
