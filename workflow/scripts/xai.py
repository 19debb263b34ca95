from spiralarms import logs
from spiralarms.xai.stage import run_xai

logs.to_file(snakemake.log[0])
run_xai(
    snakemake.wildcards.experiment,
    snakemake.input.model,
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.params.settings,
    snakemake.params.xai,
    snakemake.output.xai,
    masks=snakemake.input.get("masks"),  # absent or [] on real data
    threads=snakemake.threads,
)
