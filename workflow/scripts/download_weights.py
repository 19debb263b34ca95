from spiralarms import logs
from spiralarms.models import weights

logs.to_file(snakemake.log[0])
weights.fetch(snakemake.params.source, snakemake.output.weights, key=snakemake.params.key)
