import pandas as pd

from spiralarms import logs, runtime
from spiralarms.data import shards
from spiralarms.evaluation import evaluate
from spiralarms.training.experiment import Experiment

logs.to_file(snakemake.log[0])
runtime.configure(snakemake.threads)
labels = pd.read_parquet(snakemake.input.labels)
physical = [c for c in ("log_mass", "sfr") if c in labels]
evaluate.evaluate_experiment(
    Experiment.parse(snakemake.wildcards.experiment),
    snakemake.input.model,
    shards.subset_files(snakemake.input.shards, snakemake.params.subsets),
    snakemake.params.settings,
    snakemake.output.metrics,
    snakemake.output.predictions,
    n_boot=snakemake.params.bootstrap,
    physical=labels[["dr7objid", *physical]] if physical else None,
)
