from pathlib import Path

from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.training.importer import import_model

import_model(snakemake.params.source, Path(snakemake.output.model).parent, overwrite=True)
