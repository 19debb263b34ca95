from spiralarms import logs, runtime
from spiralarms.training.experiment import Experiment
from spiralarms.xai.stage import run_xai

logs.to_file(snakemake.log[0])
runtime.configure(snakemake.threads)
masks = snakemake.input.get("masks") or None  # absent or [] on real data
run_xai(
    Experiment.parse(snakemake.wildcards.experiment),
    snakemake.input.model,
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.params.settings,
    snakemake.params.xai,
    snakemake.output.xai,
    masks=masks,
)
