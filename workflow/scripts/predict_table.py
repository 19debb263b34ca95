"""predict_table: the gathered predictions as a FITS binary table or a VOTable."""

from spiralarms import logs
from spiralarms.predict.astro_tables import run_predict_table

logs.job(snakemake)
run_predict_table(
    snakemake.input.predictions,
    snakemake.input.summary,
    snakemake.input.source,
    snakemake.output.table,
)
