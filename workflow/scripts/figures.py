from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.evaluation.experiment_figures import write_experiment_figures

write_experiment_figures(
    snakemake.input.metrics,
    snakemake.input.predictions,
    snakemake.input.history or None,
    snakemake.input.images,
    snakemake.output.figures,
)
