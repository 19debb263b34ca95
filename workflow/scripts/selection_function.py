from spiralarms import logs
from spiralarms.report.selection_function import run_selection_function

logs.job(snakemake)
run_selection_function(
    snakemake.input.predictions,
    snakemake.input.truth,
    snakemake.output.csv,
    snakemake.output.markdown,
    snakemake.output.figure,
)
