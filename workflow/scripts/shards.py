from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.data.shards import run_shards

run_shards(
    snakemake.input.labels,
    snakemake.input.images,
    snakemake.output.shards,
    shard_size=snakemake.params.size,
    workers=snakemake.threads,
    check=snakemake.params.check,
    votes=snakemake.params.votes,
)
