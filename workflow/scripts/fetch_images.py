from spiralarms import acquire, logs

logs.job(snakemake)
acquire.run_fetch_images(snakemake.params.dataset, snakemake.output.images, snakemake.input.mapping)
