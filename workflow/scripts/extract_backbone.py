from spiralarms import logs, models

logs.to_file(snakemake.log[0])
models.save_backbone(snakemake.input.model, snakemake.output.backbone)
