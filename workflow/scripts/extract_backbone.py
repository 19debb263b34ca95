from spiralarms import logs
from spiralarms.models import networks

logs.job(snakemake)
networks.save_backbone(snakemake.input.model, snakemake.output.backbone)
