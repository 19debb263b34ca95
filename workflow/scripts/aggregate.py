from pathlib import Path

from spiralarms import logs
from spiralarms.report import summary

logs.to_file(snakemake.log[0])
# Each predictions folder is results/experiments/<experiment>/predictions.
predictions = {Path(p).parent.name: p for p in snakemake.input.predictions}
summary.aggregate(
    snakemake.input.metrics,
    Path(snakemake.output.metrics).parent,
    comparisons=snakemake.params.comparisons,
    predictions_dirs=predictions,
    n_boot=snakemake.params.bootstrap,
)
