"""predict_cutouts: predict.<name>.positions -> cut-outs, journal and manifest in one folder."""

from pathlib import Path

from spiralarms import logs
from spiralarms.acquire.cutouts import run_predict_cutouts

logs.job(snakemake)
run_predict_cutouts(
    snakemake.input.positions,
    Path(snakemake.output.manifest).parent,
    snakemake.params.entry,
)
