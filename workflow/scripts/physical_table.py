from spiralarms import acquire, logs

logs.job(snakemake)
acquire.physical_csv(snakemake.input.archive, snakemake.output.csv)
