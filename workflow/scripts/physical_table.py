from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
acquire.physical_csv(snakemake.input.archive, snakemake.output.csv)
