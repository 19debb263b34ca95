from pathlib import Path

from spiralarms import logs
from spiralarms.training.importer import import_model

logs.job(snakemake)
import_model(snakemake.params.source, Path(snakemake.output.model).parent, overwrite=True)
