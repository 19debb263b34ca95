from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.report.attribution import run_xai_summary

run_xai_summary(snakemake.input.xai, snakemake.output.csv, snakemake.output.markdown)
