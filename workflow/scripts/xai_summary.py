from spiralarms import logs
from spiralarms.report.attribution import run_xai_summary

logs.to_file(snakemake.log[0])
run_xai_summary(snakemake.input.xai, snakemake.output.csv, snakemake.output.markdown)
