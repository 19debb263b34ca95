"""The classifier's selection function on the synthetic sky (the `selection_function` rule):
accuracy, and the share of galaxies it calls "can't tell", as a function of what the renderer drew
— R90 in arcsec, arm signal-to-noise, PSF FWHM in arm spacings, inclination, bar, pitch, a
flocculent disc — against the renderer's truth (truth.csv's `arm_class`) and against the
volunteers' label (the target the model learned). No survey catalogue can give this for real
galaxies: it needs the truth only a renderer knows, so the rule exists for synthetic data only.

Rows are the test galaxies of each evaluated experiment (`predictions/<subset>.parquet`, one row
per galaxy), joined to truth.csv on `dr7objid`. Against the truth a galaxy is right when the
prediction is its variant's target of the true arm class; a galaxy whose true class the variant
drops (select12: a true 3-armed galaxy the volunteers called 2) or that is no spiral (an
elliptical the volunteers passed) is wrong against the truth, since no answer could be right.

Bins: quantile bins (`n_bins`, fewer when values tie) over each experiment's galaxies; a quantity
with at most `n_bins` distinct values (bar) has one bin per value; galaxies without a value (the
pitch of a flocculent disc) form the bin "no value", so each quantity's bins count every galaxy.
Intervals are Wilson 95 % score intervals of each proportion (scipy): the percentile bootstrap of
`evaluation.metrics` collapses to a point in a small bin where every galaxy is right or wrong.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullLocator
from scipy.stats import binomtest

from spiralarms import atomic, gz2
from spiralarms.data.variants import DROPPED
from spiralarms.plotting import PNG_DPI
from spiralarms.report.tables import to_markdown as markdown_table
from spiralarms.report.tables import with_interval
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

N_BINS = 5
NO_VALUE = "no value"
CANT_TELL = gz2.ARM_CLASS_NAMES[5]  # "?", the class name of "can't tell"
# (per-galaxy outcome column of `outcomes`, prefix of its columns in the table)
MEASURES = (("right_truth", "accuracy_truth"), ("right_label", "accuracy_label"),
            ("cant_tell", "cant_tell"))
COLUMNS = ["experiment", "model", "classes", "subset", "quantity", "bin", "value_low",
           "value_high", "value_median", "n",
           *[f"{prefix}{suffix}" for _, prefix in MEASURES
             for suffix in ("_n", "", "_low", "_high")]]


@dataclass(frozen=True)
class Quantity:
    column: str  # in truth.csv
    label: str  # axis label
    log_x: bool = False
    zero_apart: bool = False  # 0 means "none": a bin of its own (bins_of)


QUANTITIES = (
    Quantity("r90_arcsec", "R90 (arcsec)", log_x=True),
    Quantity("arm_snr", "arm S/N", log_x=True),
    Quantity("psf_arm_spacings", "PSF FWHM / arm spacing"),
    Quantity("inclination_deg", "inclination (deg)"),
    Quantity("bar", "bar strength", zero_apart=True),
    Quantity("pitch_deg", "pitch (deg)"),
    Quantity("flocculent", "flocculent disc"),  # the real "can't tell"
)


def wilson(successes, n):
    """Wilson 95 % score interval of successes / n; (nan, nan) when n is 0."""
    if n == 0:
        return np.nan, np.nan
    ci = binomtest(int(successes), int(n)).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def read_predictions(predictions_dir, subset):
    """The `subset` predictions of one experiment folder, or None when it has none."""
    path = Path(predictions_dir) / f"{subset}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def outcomes(predictions, truth, experiment, source="predictions"):
    """Per galaxy of `predictions`: the truth's physical columns and three booleans — right
    against the truth, right against the label, called "can't tell" (NaN when the variant has no
    such class). Raises when a galaxy is missing from `truth` (a truth.csv of another run)."""
    truth = truth.drop_duplicates("dr7objid").rename(columns={"arm_class": "truth_arm_class"})
    truth = truth.drop(columns=[c for c in truth if c in predictions and c != "dr7objid"])
    frame = predictions.merge(truth, on="dr7objid", how="left", validate="one_to_one",
                              indicator=True)
    unknown = frame.loc[frame["_merge"] == "left_only", "dr7objid"]
    if len(unknown):
        raise ValueError(f"{source}: {len(unknown)} galaxies are not in truth.csv (e.g. dr7objid "
                         f"{unknown.iloc[0]}); the predictions and truth.csv come from different "
                         "synthetic runs: rerun synthesize and the experiments")
    variant = experiment.variant
    true_class = frame["truth_arm_class"].to_numpy(np.int64)
    truth_target = np.full(len(frame), DROPPED)
    known = true_class >= 0  # -1: not a spiral target (elliptical, edge-on)
    truth_target[known] = variant.targets(true_class[known])
    frame["right_truth"] = truth_target == frame["pred"].to_numpy()
    frame["right_label"] = frame["true"].to_numpy() == frame["pred"].to_numpy()
    if CANT_TELL in variant.class_names:
        frame["cant_tell"] = frame["pred"] == variant.class_names.index(CANT_TELL)
    else:
        frame["cant_tell"] = np.nan
    return frame.drop(columns="_merge")


def bins_of(values, n_bins=N_BINS, zero_apart=False):
    """Bin index per galaxy (-1: no value) and, per bin, its label: one bin per value when there
    are at most `n_bins` distinct values, else quantile bins labelled by the values they hold.
    `zero_apart`: 0 means "none" (no bar), so zeros get a bin of their own before the quantiles
    of the rest, rather than sharing one with the weakest bars."""
    values = pd.to_numeric(pd.Series(values), errors="coerce").astype(float).reset_index(drop=True)
    present = values.notna()
    distinct = np.sort(values[present].unique())
    index = pd.Series(-1, index=values.index)
    if len(distinct) <= n_bins:
        index[present] = np.searchsorted(distinct, values[present])
        return index.to_numpy(), [f"{v:g}" for v in distinct]
    labels, quantiled = [], present
    if zero_apart and (values == 0).any():
        index[values == 0] = 0
        labels, quantiled, n_bins = ["0"], present & (values != 0), n_bins - 1
    index[quantiled] = len(labels) + pd.qcut(values[quantiled], n_bins, labels=False,
                                             duplicates="drop")
    labels += [_range_label(values[index == k]) for k in range(len(labels), int(index.max()) + 1)]
    return index.to_numpy(), labels


def _range_label(values):
    low, high = values.min(), values.max()
    return f"{low:.3g}" if low == high else f"{low:.3g}–{high:.3g}"


def _proportions(frame):
    """n and, per measure, successes, proportion and Wilson interval of a group of galaxies."""
    row = {"n": len(frame)}
    for outcome, prefix in MEASURES:
        column = frame[outcome]
        if column.isna().all() and len(frame):
            row.update({f"{prefix}_n": np.nan, prefix: np.nan, f"{prefix}_low": np.nan,
                        f"{prefix}_high": np.nan})
            continue
        successes = int(column.astype(bool).sum())
        low, high = wilson(successes, len(frame))
        row.update({f"{prefix}_n": successes,
                    prefix: successes / len(frame) if len(frame) else np.nan,
                    f"{prefix}_low": low, f"{prefix}_high": high})
    return row


def experiment_table(frame, quantities, n_bins=N_BINS):
    """Rows of one experiment's galaxies (`outcomes`): 'all', then each quantity's bins."""
    rows = [{"quantity": "all", "bin": "all", **_proportions(frame)}]
    for quantity in quantities:
        values = frame[quantity.column]
        index, labels = bins_of(values, n_bins, quantity.zero_apart)
        numeric = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        for k, label in [*enumerate(labels), (-1, NO_VALUE)]:
            members = index == k
            if k == -1 and not members.any():
                continue
            inside = numeric[members]
            rows.append({"quantity": quantity.column, "bin": label,
                         "value_low": np.nanmin(inside) if k >= 0 else np.nan,
                         "value_high": np.nanmax(inside) if k >= 0 else np.nan,
                         "value_median": np.nanmedian(inside) if k >= 0 else np.nan,
                         **_proportions(frame[members])})
    return rows


def available_quantities(truth, quantities=QUANTITIES):
    """The quantities truth.csv has, and a note per one it lacks (logged)."""
    kept, notes = [], []
    for quantity in quantities:
        if quantity.column in truth and truth[quantity.column].notna().any():
            kept.append(quantity)
        else:
            notes.append(f"truth.csv has no values in column `{quantity.column}` "
                         f"({quantity.label}): left out")
            log.warning("selection function: %s", notes[-1])
    return kept, notes


def collect(predictions_dirs, truth, subset="test", n_bins=N_BINS, quantities=QUANTITIES):
    """The selection-function table over experiments (COLUMNS), the quantities used and notes
    on what was left out (an experiment without `subset` predictions, a column truth lacks)."""
    quantities, notes = available_quantities(truth, quantities)
    rows = []
    for folder in map(Path, predictions_dirs):
        experiment = Experiment.parse(folder.parent.name)
        predictions = read_predictions(folder, subset)
        if predictions is None or not len(predictions):
            notes.append(f"{experiment.name}: no {subset} predictions: left out")
            log.warning("selection function: %s", notes[-1])
            continue
        frame = outcomes(predictions, truth, experiment, source=folder / f"{subset}.parquet")
        front = {"experiment": experiment.name, "model": experiment.model,
                 "classes": experiment.classes, "subset": subset}
        rows += [{**front, **row} for row in experiment_table(frame, quantities, n_bins)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table, quantities, notes


def _share(value, low, high):
    return with_interval(value, low, high, digits=2)


def to_markdown(table, notes=()) -> str:
    """Per experiment, a table of its bins: n, accuracy against truth and labels, share called
    "can't tell", each with its Wilson 95 % interval."""
    intro = ("Accuracy against the renderer's truth and against the volunteers' labels, and the "
             "share of galaxies the model calls \"can't tell\", per quantile bin of what the "
             "renderer drew (test galaxies; [Wilson 95 % interval]). Right against the truth "
             "means the prediction is the variant's class of the true arm number; a galaxy "
             "whose true class the variant lacks is wrong against the truth.")
    lines = ["# Selection function of the classifier (synthetic sky)", "", intro, ""]
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    for name, rows in table.groupby("experiment", sort=False):
        overall = rows[rows["quantity"] == "all"].iloc[0]
        truth, labels = (_share(*overall[[p, f"{p}_low", f"{p}_high"]])
                         for p in ("accuracy_truth", "accuracy_label"))
        summary = f"{int(overall['n'])} galaxies: accuracy against truth {truth}, against labels {labels}."
        lines += [f"## {name}", "", summary, ""]
        binned = rows[rows["quantity"] != "all"]
        if not len(binned):
            continue
        display = pd.DataFrame({
            "quantity": binned["quantity"], "bin": binned["bin"], "n": binned["n"].astype(int),
            **{title: [_share(*v) for v in binned[[prefix, f"{prefix}_low", f"{prefix}_high"]]
                       .itertuples(index=False)]
               for title, prefix in (("accuracy (truth)", "accuracy_truth"),
                                     ("accuracy (labels)", "accuracy_label"),
                                     ("called can't tell", "cant_tell"))},
        })
        lines += [markdown_table(display), ""]
    if not len(table):
        lines.append("No experiment has test predictions.")
    return "\n".join(lines).rstrip() + "\n"


STYLE = {"accuracy_truth": ("against truth", "tab:blue", "-", "o"),
         "accuracy_label": ("against labels", "tab:orange", "--", "s"),
         "cant_tell": ("called \"can't tell\"", "0.4", ":", "^")}


def selection_figure(table, quantities):
    """One row of panels per experiment, one panel per quantity: accuracy against truth and
    labels and the share called "can't tell" per bin, with Wilson intervals. Quantile bins sit at
    their median value; a quantity with few values (bar) at one position per value."""
    experiments = list(dict.fromkeys(table["experiment"]))
    n_rows, n_cols = max(1, len(experiments)), max(1, len(quantities))
    fig = Figure(figsize=(3.0 * n_cols + 0.6, 2.4 * n_rows + 0.9), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    if not quantities or not experiments:
        axes[0, 0].text(0.5, 0.5, "no test predictions" if not experiments else
                        "truth.csv has none of the physical quantities", ha="center",
                        va="center", transform=axes[0, 0].transAxes)
    for r, name in enumerate(experiments):
        rows = table[table["experiment"] == name]
        for c, quantity in enumerate(quantities):
            ax = axes[r, c]
            here = rows[(rows["quantity"] == quantity.column) & (rows["bin"] != NO_VALUE)]
            categorical = all(label == f"{v:g}" for label, v in zip(here["bin"],
                                                                   here["value_median"]))
            x = np.arange(len(here)) if categorical else here["value_median"].to_numpy()
            for prefix, (label, colour, line, marker) in STYLE.items():
                y = here[prefix].to_numpy(float)
                if np.isnan(y).all():
                    continue
                ax.plot(x, y, color=colour, linestyle=line, marker=marker, markersize=4,
                        label=label)
                ax.fill_between(x, here[f"{prefix}_low"], here[f"{prefix}_high"], color=colour,
                                alpha=0.15, linewidth=0)
            if categorical:
                ax.set_xticks(x, list(here["bin"]))
                ax.set_xlim(-0.5, len(here) - 0.5)
            elif quantity.log_x and len(here) and (here["value_median"] > 0).all():
                ax.set_xscale("log")  # sizes and S/N span decades
                ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
                ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
                ax.xaxis.set_minor_locator(NullLocator())
            without = rows.loc[(rows["quantity"] == quantity.column)
                               & (rows["bin"] == NO_VALUE), "n"]
            ax.set_xlabel(quantity.label + (f" ({int(without.sum())} without)"
                                            if len(without) else ""))
            ax.set_ylim(-0.03, 1.03)
            ax.grid(color="0.92")
        axes[r, 0].set_ylabel(f"{name}\nshare of galaxies", fontsize=8)
    handles = [axes[0, 0].plot([], [], color=c, linestyle=s, marker=m)[0]
               for _, c, s, m in STYLE.values()]
    fig.legend(handles, [v[0] for v in STYLE.values()], loc="outside lower center",
               ncols=3, frameon=False)
    fig.suptitle("Selection function: where the classifier is right, per physical quantity "
                 "(test galaxies; bands: Wilson 95 % intervals)")
    return fig


def write_selection_function(predictions_dirs, truth_path, csv_path, markdown_path, png_path,
                             subset="test", n_bins=N_BINS):
    """results/summary/selection_function.{csv,md,png} from the experiments' predictions and the
    renderer's truth.csv. Returns the table."""
    truth = pd.read_csv(truth_path, dtype={"kind": str})
    missing = {"dr7objid", "arm_class"} - set(truth)
    if missing:
        raise ValueError(f"{truth_path}: no column {sorted(missing)}; it is not a truth.csv "
                         "written by synthesize (spiralarms.synthetic.generate)")
    table, quantities, notes = collect(predictions_dirs, truth, subset, n_bins)
    for path in (csv_path, markdown_path, png_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(csv_path) as partial:
        table.to_csv(partial, index=False, float_format="%.4f", lineterminator="\n")
    atomic.write_text(markdown_path, to_markdown(table, notes))
    with atomic.replacing(png_path) as partial:
        selection_figure(table, quantities).savefig(partial, dpi=PNG_DPI, format="png")
    return table


def run_selection_function(predictions_dirs, truth_path, csv_path, markdown_path, png_path,
                           subset="test", n_bins=N_BINS):
    """The `selection_function` rule: write_selection_function, and one line per experiment with
    its accuracy against truth and against labels."""
    table = write_selection_function(predictions_dirs, truth_path, csv_path, markdown_path,
                                     png_path, subset, n_bins)
    for row in table[table["quantity"] == "all"].itertuples(index=False):
        print(f"selection function: {row.experiment} {subset} n={row.n}: accuracy against truth "
              f"{row.accuracy_truth:.3f}, against labels {row.accuracy_label:.3f}")
    return table
