"""Aggregate tables over experiments: one row per experiment and subset, mean ± std over seeds
(bug B15: one run per configuration says little), and our B0 6-class validation numbers beside the
notebook's published run.

Input: `metrics.json` files, one per experiment, as `evaluate` writes them:
  {"experiment": "b0_6class_standard_s42", "training": {...},
   "subsets": {"val": {<compute_metrics output>}, "test": {...}}}
Each subset's metrics need `class_names` (compute_metrics writes it). Metrics written before the
ordinal view and the per-class F1 intervals existed leave those columns empty.

The ordinal columns (within_one, mae_arms, qwk with intervals, ordinal_n) are spiralarms.evaluation.metrics'
`ordinal_metrics`: on galaxies with an arm count only ("can't tell" left out), "5+" = 5 arms and
a merged class its midpoint ("3-4" = 3.5, "4+" = 4.5).
"""

import json
import logging
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import atomic
from spiralarms.report.tables import count, mean_std, number, to_latex, to_markdown, with_interval
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

# target: labels and votes twins (issue 20) are kept apart, never averaged as "seeds"
KEYS = ["model", "classes", "mode", "target", "subset"]
HEADLINE = ["accuracy", "macro_f1", "weighted_f1", "ece"]
# The ordinal view of arm number (spiralarms.evaluation.metrics.ordinal_metrics), each with an interval.
ORDINAL = ["within_one", "mae_arms", "qwk"]
ORDINAL_LABELS = {"within_one": "within 1 arm", "mae_arms": "MAE (arms)", "qwk": "QWK"}
SUMMARISED = ["accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "ece",
              *ORDINAL]
REQUIRED = ["accuracy", "macro_f1", "weighted_f1", "per_class", "class_names"]
REFERENCE_FILE = "notebook_b0_6class_val.json"
# Rows of the comparison that say what ran before the numbers.
PROVENANCE = ["weights", "paper_weights"]


# --- reading metrics.json ---------------------------------------------------------------------

def experiment_columns(name) -> dict:
    """The identifying columns of experiment `name` (read by Experiment.parse): model, classes,
    mode, target (labels or votes), seed and split ('base' for the split of selection.seed,
    'split7' for `_split7`)."""
    experiment = Experiment.parse(str(name))
    return {"model": experiment.model, "classes": experiment.classes, "mode": experiment.mode,
            "target": experiment.target, "seed": experiment.seed,
            "split": "base" if experiment.split is None else f"split{experiment.split}"}


def read_metrics(path) -> list:
    """(experiment name, subset, metrics dict) for every subset in one metrics.json file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read metrics file {path}: {error}") from error
    missing = [k for k in ("experiment", "subsets") if k not in data]
    if missing:
        raise KeyError(f"{path} lacks {missing}: summary reads metrics.json as evaluate writes "
                       f"it (see spiralarms.report.summary)")
    experiment = data["experiment"]
    try:
        experiment_columns(experiment)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    entries = []
    for subset, metrics in data["subsets"].items():
        metrics = dict(metrics)
        metrics.setdefault("class_names", data.get("class_names"))
        metrics.setdefault("training", data.get("training") or {})
        missing = [k for k in REQUIRED if metrics.get(k) is None]
        if missing:
            raise KeyError(f"{path}: subset {subset!r} lacks {missing}; write compute_metrics "
                           f"output (which includes class_names)")
        entries.append((experiment, subset, metrics))
    return entries


def metrics_row(experiment, subset, metrics) -> dict:
    """One flat table row: identifiers, then `metric_columns`."""
    row = {"experiment": experiment, **experiment_columns(experiment), "subset": subset}
    return {**row, **metric_columns(metrics)}


def metric_columns(metrics) -> dict:
    """Headline metrics, interval bounds, per-class columns and JSON-encoded class names and
    confusion matrix of one subset's metrics (NaN for what the metrics lack)."""
    row = {"n": metrics.get("n")}
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                "weighted_precision", "weighted_recall", "weighted_f1", "ece"):
        value = metrics.get(key)
        row[key] = np.nan if value is None else value  # ece is None without probabilities
    for key in ("accuracy", "macro_f1"):
        low, high = metrics.get(f"{key}_ci95") or (np.nan, np.nan)
        row[f"{key}_ci_low"], row[f"{key}_ci_high"] = low, high
    ordinal = metrics.get("ordinal") or {}
    row["ordinal_n"] = ordinal.get("n", np.nan)
    for key in ORDINAL:
        value = ordinal.get(key)
        row[key] = np.nan if value is None else value
        low, high = ordinal.get(f"{key}_ci95") or (np.nan, np.nan)
        row[f"{key}_ci_low"], row[f"{key}_ci_high"] = low, high
    names = metrics["class_names"]
    for stat in ("f1", "precision", "recall", "support"):
        for name in names:
            row[f"{stat}_{name}"] = metrics["per_class"].get(name, {}).get(stat, np.nan)
    intervals = metrics.get("per_class_f1_ci95") or {}
    for name in names:
        low, high = intervals.get(name) or (np.nan, np.nan)
        row[f"ci_low_f1_{name}"], row[f"ci_high_f1_{name}"] = low, high
    row["class_names"] = json.dumps(names)
    row["confusion_matrix"] = json.dumps(metrics.get("confusion_matrix"))
    return row


def training_columns(training: dict) -> dict:
    """What ran: the weights the backbone started from and whether they are the paper's."""
    weights = training.get("weights") or {}
    return {"weights": weights.get("source") or "none (from scratch)",
            "weights_sha256": weights.get("sha256"),
            "paper_weights": weights.get("matches_paper", "unknown"),
            "notes": " ".join(training.get("notes") or [])}


def collect(metrics_paths) -> pd.DataFrame:
    """One row per (experiment, subset) over all `metrics_paths`, sorted by model, classes, mode,
    seed, subset. Columns: experiment, model, classes, mode, seed, subset, n, accuracy,
    macro/weighted precision/recall/F1, ece, accuracy_ci_low/high, macro_f1_ci_low/high,
    ordinal_n, within_one, mae_arms, qwk (each with _ci_low/_ci_high),
    f1_/ci_low_f1_/ci_high_f1_/precision_/recall_/support_<class>, class_names and
    confusion_matrix (JSON), weights columns, source.
    """
    rows, seen = [], {}
    for path in metrics_paths:
        for experiment, subset, metrics in read_metrics(path):
            key = (experiment, subset)
            if key in seen:
                raise ValueError(f"experiment {experiment!r} subset {subset!r} appears in both "
                                 f"{seen[key]} and {path}; pass each experiment once")
            seen[key] = path
            rows.append({**metrics_row(experiment, subset, metrics),
                         **training_columns(metrics["training"]), "source": str(path)})
    if not rows:
        raise ValueError("no metrics files given to collect")
    table = pd.DataFrame(rows)
    table = table[_column_order(table)]
    # nullable integers: a class absent from one variant must not turn counts into 60.0
    counts = ["n", "seed", "ordinal_n"] + [c for c in table.columns if c.startswith("support_")]
    table[counts] = table[counts].astype("Int64")
    return table.sort_values(["model", "classes", "mode", "split", "seed", "subset"], ignore_index=True)


def _column_order(table):
    """Per-class columns grouped by statistic, so merged classes ('f1_3-4') sit with the others."""
    per_class = ("f1_", "ci_low_f1_", "ci_high_f1_", "precision_", "recall_", "support_")
    columns = list(table.columns)
    first = [c for c in columns if not c.startswith(per_class)]
    grouped = [c for prefix in per_class for c in columns if c.startswith(prefix)]
    tail = ["class_names", "confusion_matrix", "weights", "weights_sha256", "paper_weights",
            "notes", "source"]
    return [c for c in first if c not in tail] + grouped + tail


# --- aggregates -------------------------------------------------------------------------------

def seed_summary(df, over: str = "seed") -> pd.DataFrame:
    """Mean and sample std (ddof=1; NaN for a single run) over training seeds per (model, classes,
    mode, subset, split) — or, with `over="split"`, over splits per (model, classes, mode, subset,
    seed): columns n_seeds (n_splits), seeds ('42,43'; splits 'base,split7'), <metric>_mean and
    <metric>_std for accuracy, macro precision/recall/F1, weighted F1, ECE, the ordinal metrics
    and every f1_<class> column. The two spreads are kept apart: a split changes which galaxies
    are tested, a seed only the training."""
    metrics = SUMMARISED + [c for c in df.columns if c.startswith("f1_")]
    fixed = "split" if over == "seed" else "seed"
    keys_by = KEYS + [fixed]
    rows = []
    for keys, group in df.groupby(keys_by, sort=True):
        row = dict(zip(keys_by, keys))
        row[f"n_{over}s"] = len(group)
        row[f"{over}s"] = ",".join(str(s) for s in sorted(group[over]))
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce")
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)
        rows.append(row)
    table = pd.DataFrame(rows)
    # a class of no variant in the table (possible after filtering df) has nothing to report
    unused = [c for m in metrics if table[f"{m}_mean"].isna().all() and m.startswith("f1_")
              for c in (f"{m}_mean", f"{m}_std")]
    return table.drop(columns=unused)


# --- table writers ----------------------------------------------------------------------------

def write_tables(df, out_dir) -> list:
    """metrics.{csv,md,tex} from `collect` output, seeds.{csv,md,tex} (spread over training seeds)
    and splits.{csv,md,tex} (spread over splits) from `seed_summary`.

    CSV files hold every column at full precision; markdown and LaTeX (booktabs) hold the
    headline columns, rounded to 3 decimals, '–' where a value does not exist.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds, splits = seed_summary(df), seed_summary(df, over="split")
    written = []
    for stem, full, display in (("metrics", df, _metrics_display(df)),
                                ("seeds", seeds, _seeds_display(seeds, "seed")),
                                ("splits", splits, _seeds_display(splits, "split"))):
        written += _write_three(out_dir / stem, full, display)
    return written


def _write_three(stem, full, display):
    csv, md, tex = (stem.with_suffix(s) for s in (".csv", ".md", ".tex"))
    with atomic.replacing(csv) as partial:
        full.to_csv(partial, index=False)
    atomic.write_text(md, to_markdown(display))
    atomic.write_text(tex, to_latex(display))
    return [csv, md, tex]


def _class_names_in(df):
    names = []
    for encoded in df.get("class_names", []):
        names += [n for n in json.loads(encoded) if n not in names]
    return names


def _metrics_display(df):
    table = df[["model", "classes", "mode", "seed", "subset"]].copy()
    table["n"] = df["n"].map(count)
    table["accuracy"] = [with_interval(*v) for v in
                         zip(df["accuracy"], df["accuracy_ci_low"], df["accuracy_ci_high"])]
    table["macro F1"] = [with_interval(*v) for v in
                         zip(df["macro_f1"], df["macro_f1_ci_low"], df["macro_f1_ci_high"])]
    table["weighted F1"] = df["weighted_f1"].map(number)
    table["ECE"] = df["ece"].map(number)
    for key in ORDINAL:
        table[ORDINAL_LABELS[key]] = [with_interval(*v) for v in zip(
            df[key], df[f"{key}_ci_low"], df[f"{key}_ci_high"])]
    for name in _class_names_in(df):
        table[f"F1 {name}"] = df[f"f1_{name}"].map(number)
    if "weights" in df:  # what ran, in words: the backbone's start and the experiment's note
        table["weights"] = df["weights"]
        table["note"] = df["notes"].fillna("")
    return table


def _seeds_display(seeds, over="seed"):
    fixed = "split" if over == "seed" else "seed"
    table = seeds[KEYS + [fixed, f"n_{over}s"]].copy()
    labels = {"accuracy": "accuracy", "macro_f1": "macro F1", "weighted_f1": "weighted F1",
              "ece": "ECE", **ORDINAL_LABELS}
    per_class = [c[: -len("_mean")] for c in seeds.columns
                 if c.startswith("f1_") and c.endswith("_mean")]
    for metric in HEADLINE + ORDINAL + per_class:
        if f"{metric}_mean" not in seeds:
            continue
        label = labels.get(metric, f"F1 {metric[len('f1_'):]}")
        table[label] = [mean_std(m, s) for m, s in
                        zip(seeds[f"{metric}_mean"], seeds[f"{metric}_std"])]
    return table


# --- comparison with the notebook -------------------------------------------------------------

def load_notebook_reference() -> dict:
    """The notebook's published B0 6-class validation run (package data, see data/README.md)."""
    return json.loads((files("spiralarms.report") / REFERENCE_FILE).read_text())


def paper_comparison(df) -> pd.DataFrame:
    """Metric-by-metric table: the notebook's run, then each of our b0 / 6class / val rows (one
    column per experiment) and, per mode with two or more seeds, their mean and std."""
    reference = load_notebook_reference()
    names = reference["class_names"]
    metric_names = (["n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "macro_precision",
                     "macro_recall", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high",
                     "weighted_precision", "weighted_recall", "weighted_f1", "ece"]
                    + [f"{key}{end}" for key in ORDINAL for end in ("", "_ci_low", "_ci_high")]
                    + [f"{stat}_{name}" for name in names
                       for stat in ("precision", "recall", "f1", "support")])
    table = pd.DataFrame({"metric": metric_names})
    notebook = metric_columns(notebook_with_ordinal(reference))
    table["notebook"] = [notebook.get(m, np.nan) for m in metric_names]
    ours = _comparable_rows(df)
    for _, row in ours.iterrows():
        table[row["experiment"]] = [row.get(m, np.nan) for m in metric_names]
    for mode, group in ours.groupby("mode", sort=True):
        if len(group) >= 2:
            values = group[metric_names].apply(pd.to_numeric, errors="coerce")
            table[f"b0_6class_{mode} mean"] = values.mean().to_numpy()
            table[f"b0_6class_{mode} std"] = values.std(ddof=1).to_numpy()
    return table


def notebook_with_ordinal(reference) -> dict:
    """The reference with the ordinal view computed from its published confusion matrix (the
    notebook reported none; intervals from 1000 resamples of that matrix's galaxies)."""
    from spiralarms.evaluation.metrics import ordinal_metrics

    matrix = np.asarray(reference["confusion_matrix"])
    cells = [(t, p) for t in range(len(matrix)) for p in range(len(matrix))]
    counts = [matrix[t, p] for t, p in cells]
    y_true = np.repeat([t for t, _ in cells], counts)
    y_pred = np.repeat([p for _, p in cells], counts)
    return reference | {"ordinal": ordinal_metrics(y_true, y_pred, reference["class_names"])}


def _comparable_rows(df):
    chosen = df[(df["model"] == "b0") & (df["classes"] == "6class") & (df["subset"] == "val")]
    if chosen.empty:
        log.warning("no b0 / 6class / val results to put beside the notebook's run; the "
                    "comparison shows the notebook only")
    return chosen


def write_comparison(df, out_dir) -> list:
    """comparison.csv (full precision) and comparison.md (source note, table to 4 decimals as
    the notebook printed, confusion matrices) in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = paper_comparison(df)
    csv, md = out_dir / "comparison.csv", out_dir / "comparison.md"
    with atomic.replacing(csv) as partial:
        table.to_csv(partial, index=False)
    atomic.write_text(md, _comparison_markdown(table, df))
    return [csv, md]


def provenance_rows(table, df, source) -> pd.DataFrame:
    """The weights each column's backbone started from, and whether they are the paper's."""
    ours = df.drop_duplicates("experiment").set_index("experiment")
    rows = {"metric": PROVENANCE, "notebook": [source["weights"], "yes"]}
    for column in table.columns[2:]:
        name = column.rsplit(" ", 1)[0] if column.endswith((" mean", " std")) else column
        group = ours.loc[[name]] if name in ours.index else ours[
            (ours["model"] == "b0") & (ours["classes"] == "6class")
            & (ours["mode"] == name.split("_")[-1])]
        rows[column] = [" / ".join(sorted(set(group[key]))) for key in PROVENANCE]
    return pd.DataFrame(rows)


def _comparison_markdown(table, df):
    reference = load_notebook_reference()
    source = reference["source"]
    provenance = (f"Notebook: `{source['notebook']}` in `{source['repository']}` at commit "
                  f"`{source['commit']}`, {source['run']}; {source['weights']}; "
                  f"{source['classes']}, validation set of {source['n']}.")
    lines = ["# Our B0 6-class validation results beside the published notebook run", "",
             provenance, "", f"**Caveat:** {source['note']}", "",
             ("The notebook's within_one, mae_arms and qwk rows are computed here from its "
              "published confusion matrix (it reported none); see spiralarms.evaluation.metrics."), ""]
    display = pd.concat([provenance_rows(table, df, source), table], ignore_index=True)
    for column in display.columns[1:]:
        display[column] = [
            v if m in PROVENANCE else
            count(v) if m == "n" or m.startswith("support_") else number(v, digits=4)
            for m, v in zip(display["metric"], display[column])]
    # Mark our columns whose backbone did not start from the paper's weights.
    unlike = [c for c in display.columns[2:] if display.loc[1, c] != "yes"]
    display = display.rename(columns={c: f"{c} †" for c in unlike})
    if unlike:
        lines += [("† Not the paper's weights (row `paper_weights`: `no` = other or none, "
                  "`zoobot-v2` = Zoobot's current encoder, not the paper's checkpoint): compare "
                  "these columns with the notebook's as a different method."), ""]
    notes = df.loc[df["experiment"].isin(table.columns) & (df["notes"] != ""),
                   ["experiment", "notes"]].drop_duplicates()
    lines += [f"**{row.experiment}:** {row.notes}\n" for row in notes.itertuples()]
    lines += [to_markdown(display), "## Confusion matrices (rows = true, columns = predicted)", ""]
    names = reference["class_names"]
    matrices = [("notebook", reference["confusion_matrix"])]
    ours = df[df["experiment"].isin(table.columns) & (df["subset"] == "val")]
    for _, row in ours.iterrows():
        matrices.append((row["experiment"], json.loads(row["confusion_matrix"])))
    for title, matrix in matrices:
        if matrix is None:
            continue
        cm = pd.DataFrame(matrix, columns=names)
        cm.insert(0, "true \\ pred", names)
        lines += [f"### {title}", "", to_markdown(cm)]
    return "\n".join(lines)
