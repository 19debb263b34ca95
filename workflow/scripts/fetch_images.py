from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
images = acquire.fetch_kaggle_images(snakemake.params.dataset, snakemake.output.images)
# Missing images are counted again by the labels stage; here the log says it early.
acquire.check_image_count(images, snakemake.input.mapping)
