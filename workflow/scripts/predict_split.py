"""predict_split: the catalogue (or folder) -> normalised catalogue + chunk plan."""

from spiralarms import logs
from spiralarms.predict.chunks import run_predict_split

logs.to_file(snakemake.log[0])
run_predict_split(
    snakemake.input.source,
    snakemake.params.settings,
    snakemake.output.catalog,
    snakemake.output.plan,
)
