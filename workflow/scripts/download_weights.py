from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.models import weights

weights.fetch(snakemake.params.source, snakemake.output.weights, key=snakemake.params.key)
