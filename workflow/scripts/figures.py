from spiralarms import logs
from spiralarms.evaluation.experiment_figures import write_experiment_figures

logs.to_file(snakemake.log[0])
write_experiment_figures(
    snakemake.input.metrics,
    snakemake.input.predictions,
    snakemake.input.history or None,
    snakemake.input.images,
    snakemake.output.figures,
)
