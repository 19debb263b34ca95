from spiralarms import logs
from spiralarms.models import weights

logs.job(snakemake)
weights.fetch(snakemake.params.source, snakemake.output.weights, key=snakemake.params.key)
