from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
acquire.fetch_kaggle_images(snakemake.params.dataset, snakemake.output.images)
