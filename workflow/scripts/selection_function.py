from spiralarms import logs
from spiralarms.report.selection_function import run_selection_function

logs.to_file(snakemake.log[0])
run_selection_function(
    snakemake.input.predictions,
    snakemake.input.truth,
    snakemake.output.csv,
    snakemake.output.markdown,
    snakemake.output.figure,
)
