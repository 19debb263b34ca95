"""predict_chunk: one chunk of a prediction job -> its parquet file (every row)."""

from spiralarms import logs
from spiralarms.predict.chunks import run_predict_chunk  # no TensorFlow: that starts in the call

logs.job(snakemake)  # before TensorFlow starts: its start-up lines go to the log too
run_predict_chunk(
    snakemake.input.model,
    snakemake.input.catalog,
    snakemake.input.plan,
    snakemake.wildcards.chunk,
    snakemake.output.chunk,
    snakemake.config["predict"][snakemake.wildcards.name],
    threads=snakemake.threads,
)
