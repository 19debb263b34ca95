from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
acquire.run_fetch_images(snakemake.params.dataset, snakemake.output.images, snakemake.input.mapping)
