"""predict_gather: finished chunks -> parquet dataset, skipped list, summary and figure."""

from spiralarms import logs
from spiralarms.predict.chunks import gather, read_plan

logs.to_file(snakemake.log[0])
out = snakemake.output
summary = gather(read_plan(snakemake.input.plan), snakemake.input.chunks, out.predictions,
                 out.skipped, out.summary, out.table, out.figure, snakemake.wildcards.name)
print(f"{summary['catalogue_rows']} rows: {summary['predicted']} predicted, "
      f"{summary['skipped']} skipped")
