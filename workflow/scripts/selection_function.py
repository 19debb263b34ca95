from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.report.selection_function import run_selection_function

run_selection_function(
    snakemake.input.predictions,
    snakemake.input.truth,
    snakemake.output.csv,
    snakemake.output.markdown,
    snakemake.output.figure,
)
