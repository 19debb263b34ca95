# Spiral-arm number classifier (rebuild of arXiv 2412.11696). Stages, one file each:
# acquire data -> labels -> shards -> train -> evaluate -> aggregate -> XAI -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
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
