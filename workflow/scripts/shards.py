import pandas as pd

from spiralarms import logs
from spiralarms.data import shards

logs.to_file(snakemake.log[0])
shards.write_shards(
    pd.read_parquet(snakemake.input.labels),
    snakemake.input.images,
    snakemake.output.shards,
    shard_size=snakemake.params.size,
    workers=snakemake.threads,
    check=snakemake.params.check,
)
