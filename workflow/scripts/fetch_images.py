from spiralarms import acquire, logs

logs.job(snakemake)
if snakemake.input.get("archive"):  # data.images is the URL of a zip (Zenodo's images_gz2.zip)
    acquire.run_extract_images(snakemake.input.archive, snakemake.output.images,
                               snakemake.input.mapping)
else:
    acquire.run_fetch_images(snakemake.params.dataset, snakemake.output.images,
                             snakemake.input.mapping)
