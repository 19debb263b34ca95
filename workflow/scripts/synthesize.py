from spiralarms import logs
from spiralarms.data.synthesize import run_synthesize

logs.to_file(snakemake.log[0])
run_synthesize(
    snakemake.output.catalog,
    snakemake.output.physical,
    snakemake.output.sheet,
    snakemake.output.model_view,
    snakemake.params.settings,
    snakemake.params.model_view,
    workers=snakemake.threads,
)
