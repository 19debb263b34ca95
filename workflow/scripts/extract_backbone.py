from spiralarms import logs
from spiralarms.models import networks

logs.to_file(snakemake.log[0])
networks.save_backbone(snakemake.input.model, snakemake.output.backbone)
