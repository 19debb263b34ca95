"""predict_split: the catalogue (or folder) -> normalised catalogue + chunk plan."""

from spiralarms import logs
from spiralarms.predict.chunks import plan_chunks, read_input, write_split

logs.to_file(snakemake.log[0])
settings = snakemake.params.settings
table = read_input(snakemake.input.source, settings["id_column"], settings["file_column"],
                   settings["size_column"], settings["pixel_scale"])
plan = plan_chunks(table, settings["chunk_size"])
write_split(table, plan, snakemake.output.catalog, snakemake.output.plan)
print(f"{len(table)} rows in {len(plan['chunks'])} chunks of up to {settings['chunk_size']}")
