"""predict_split: the catalogue (or folder) -> normalised catalogue + chunk plan."""

from spiralarms import logs
from spiralarms.predict.chunks import run_predict_split

logs.job(snakemake)
run_predict_split(
    snakemake.input.source,
    snakemake.params.settings,
    snakemake.output.catalog,
    snakemake.output.plan,
)
