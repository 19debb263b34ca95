from spiralarms import logs
from spiralarms.report.attribution import write_summary

logs.to_file(snakemake.log[0])
table = write_summary(snakemake.input.xai, snakemake.output.csv, snakemake.output.markdown)
print(f"attribution summary: {table['experiment'].nunique()} experiment(s), "
      f"{int((table['status'] == 'measured').sum())} measured row(s)")
