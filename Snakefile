# Spiral-arm number classifier (rebuild of arXiv 2412.11696). Stages, one file each:
# acquire data -> labels -> shards -> train -> evaluate -> aggregate -> XAI -> report.
from snakemake.utils import min_version

min_version("9.0")


# The real run with no --configfile; a --configfile starts from the schema's defaults instead, never
# from the real run (config/README.md; `spiralarms config --configfile X` shows every value and
# where it came from). To change the real run, list it first: --configfile config/config.yaml X.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/names.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/xai.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/predict.smk"


rule all:
    default_target: True
    input:
        all_targets(),
