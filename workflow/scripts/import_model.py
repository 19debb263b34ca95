from pathlib import Path

from spiralarms import logs
from spiralarms.training.importer import import_model

logs.to_file(snakemake.log[0])
import_model(snakemake.params.source, Path(snakemake.output.model).parent, overwrite=True)
