"""Stage `aggregate`: the summary tables over experiments, seeds and splits (summary), the
comparison with the notebook (summary), the config's paired comparisons (comparisons), labels
against votes for each pair differing only by target (targets) and the overview figure
(overview), written into results/summary/."""

from pathlib import Path

from spiralarms.report.comparisons import run_comparisons, write_comparisons
from spiralarms.report.overview import write_overview
from spiralarms.report.summary import collect, write_comparison, write_tables
from spiralarms.report.targets import run_target_comparisons, write_targets
from spiralarms.training.experiment import target_pairs

OVERVIEW_FILE = "overview_f1.png"


def aggregate(metrics_paths, out_dir, comparisons=(), predictions_dirs=None, n_boot=1000,
              seed=0, subsets=("val",), truth_path=None) -> list:
    """The summary stage: metrics.{csv,md,tex}, seeds.{csv,md,tex}, comparison.{csv,md} (beside
    the notebook), comparisons.{csv,md} (the config's paired comparisons, from the experiments'
    `predictions_dirs`: name -> folder), targets.{csv,md} (labels against votes on `subsets`,
    against truth.csv at `truth_path` on synthetic data) and the overview figure overview_f1.png."""
    out_dir = Path(out_dir)
    predictions_dirs = predictions_dirs or {}
    table = collect(metrics_paths)
    written = write_tables(table, out_dir) + write_comparison(table, out_dir)
    paired = run_comparisons(list(comparisons), predictions_dirs, n_boot=n_boot, seed=seed)
    written += write_comparisons(paired, out_dir)
    names = [Path(p).parent.name for p in metrics_paths]
    by_target = run_target_comparisons(target_pairs(names), predictions_dirs, list(subsets),
                                       truth_path, n_boot=n_boot, seed=seed)
    written += write_targets(by_target, out_dir)
    write_overview(table, out_dir / OVERVIEW_FILE)
    return written + [out_dir / OVERVIEW_FILE]


def run_aggregate(metrics_paths, predictions_dirs, metrics_csv, declared_outputs,
                  comparisons=(), n_boot=1000, subsets=("val",), truth_path=None) -> list:
    """The `aggregate` rule: `aggregate` into the folder of `metrics_csv`; each of
    `predictions_dirs` is results/experiments/<experiment>/predictions. Every file written must be
    one of `declared_outputs` (Snakemake itself reports declared ones not written)."""
    written = aggregate(
        metrics_paths,
        Path(metrics_csv).parent,
        comparisons=comparisons,
        predictions_dirs={Path(p).parent.name: p for p in predictions_dirs},
        n_boot=n_boot,
        subsets=subsets,
        truth_path=truth_path,
    )
    undeclared = sorted({str(path) for path in written} - {str(p) for p in declared_outputs})
    if undeclared:
        raise RuntimeError(f"aggregate wrote {undeclared}, which workflow/rules/aggregate.smk does "
                           "not declare: add them to the rule's output")
    return written
