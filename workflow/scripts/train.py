from spiralarms import logs
from spiralarms.training.train import run_train

logs.to_file(snakemake.log[0])
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
)
