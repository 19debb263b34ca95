from spiralarms import logs
from spiralarms.data.shards import run_shards

logs.to_file(snakemake.log[0])
run_shards(
    snakemake.input.labels,
    snakemake.input.images,
    snakemake.output.shards,
    shard_size=snakemake.params.size,
    workers=snakemake.threads,
    check=snakemake.params.check,
)
