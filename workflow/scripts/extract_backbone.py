from spiralarms import logs

logs.job(snakemake)  # first, before TensorFlow is imported (spiralarms.logs)
from spiralarms.models import networks

networks.save_backbone(snakemake.input.model, snakemake.output.backbone)
