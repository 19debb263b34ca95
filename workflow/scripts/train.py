from spiralarms import logs, runtime
from spiralarms.data import shards
from spiralarms.training import train
from spiralarms.training.experiment import Experiment

logs.to_file(snakemake.log[0])
runtime.configure(snakemake.threads)
experiment = Experiment.parse(snakemake.wildcards.experiment)
train.train_experiment(
    experiment.model,
    experiment.variant,
    experiment.mode,
    experiment.seed,
    shards.shard_files(snakemake.input.shards, "train"),
    shards.shard_files(snakemake.input.shards, "val"),
    snakemake.params.settings,
    snakemake.input.weights or None,
    snakemake.output.model,
    snakemake.output.history,
    snakemake.params.work_dir,
    weights_source=snakemake.params.weights_source,
    synthetic=snakemake.params.synthetic,
    note=snakemake.params.note,
)
