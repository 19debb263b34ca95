"""predict_gather: finished chunks -> parquet dataset, skipped list, summary and figure."""

from spiralarms import logs
from spiralarms.predict.chunks import run_predict_gather

logs.job(snakemake)
run_predict_gather(
    snakemake.input.plan,
    snakemake.input.chunks,
    snakemake.output.predictions,
    snakemake.output.skipped,
    snakemake.output.summary,
    snakemake.output.table,
    snakemake.output.figure,
    snakemake.wildcards.name,
)
