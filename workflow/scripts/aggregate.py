from pathlib import Path

from spiralarms import logs, summary

logs.to_file(snakemake.log[0])
summary.aggregate(snakemake.input.metrics, Path(snakemake.output.metrics).parent)
