from pathlib import Path

from spiralarms import logs
from spiralarms.report import summary

logs.to_file(snakemake.log[0])
# Each predictions folder is results/experiments/<experiment>/predictions.
predictions = {Path(p).parent.name: p for p in snakemake.input.predictions}
written = summary.aggregate(
    snakemake.input.metrics,
    Path(snakemake.output.metrics).parent,
    comparisons=snakemake.params.comparisons,
    predictions_dirs=predictions,
    n_boot=snakemake.params.bootstrap,
)
# Every file written is a declared output (Snakemake itself reports declared ones not written).
undeclared = sorted({str(path) for path in written} - set(snakemake.output))
if undeclared:
    raise RuntimeError(f"aggregate wrote {undeclared}, which workflow/rules/aggregate.smk does "
                       "not declare: add them to the rule's output")
