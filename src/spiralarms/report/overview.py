"""The report's overview figure: per-class F1 with bootstrap 95% intervals of every experiment and
evaluated subset, beside the notebook's published B0 6-class validation values.

One panel per class (the classes of every variant in arm order, `data.variants.CLASS_ORDER`), one
row per experiment (the notebook's run on top), one marker per subset; the notebook's value is also
drawn as a dotted line across its panels. `overview_figure` returns the figure and
the plotted data, so tests can check what is drawn.
"""

import json

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from spiralarms import atomic
from spiralarms.data.variants import CLASS_ORDER, display_name
from spiralarms.report.summary import load_notebook_reference

SUBSET_STYLE = {"val": ("o", "tab:blue"), "test": ("s", "tab:orange"),
                "overflow": ("^", "tab:green"), "train": ("D", "tab:purple")}
NOTEBOOK_ROW = "notebook (published, val)"
NOTEBOOK_STYLE = ("*", "black")
DATA_COLUMNS = ["row", "experiment", "subset", "class", "f1", "ci_low", "ci_high"]


def overview_data(table) -> pd.DataFrame:
    """One row per plotted point: the notebook's per-class F1 (no interval: one published run),
    then each (experiment, subset, class) of the metrics table `table` (summary.collect output)
    with its F1 and its bootstrap interval (NaN when the metrics have none)."""
    reference = load_notebook_reference()
    rows = [{"row": NOTEBOOK_ROW, "experiment": "notebook", "subset": reference["source"]["subset"],
             "class": name, "f1": reference["per_class"][name]["f1"], "ci_low": np.nan,
             "ci_high": np.nan} for name in reference["class_names"]]
    for record in table.to_dict("records"):
        for name in json.loads(record["class_names"]):
            rows.append({"row": record["experiment"], "experiment": record["experiment"],
                         "subset": record["subset"], "class": name,
                         "f1": _float(record.get(f"f1_{name}")),
                         "ci_low": _float(record.get(f"ci_low_f1_{name}")),
                         "ci_high": _float(record.get(f"ci_high_f1_{name}"))})
    return pd.DataFrame(rows, columns=DATA_COLUMNS)


def overview_figure(table) -> tuple:
    """(Figure, plotted data). Each point is a Line2D labelled '<row>|<subset>|<class>' at
    x = its F1, and its interval a horizontal LineCollection labelled '<...>|ci' (the interval is
    drawn as it is, even where a percentile interval does not contain the estimate)."""
    data = overview_data(table)
    known = [c for c in CLASS_ORDER if c in set(data["class"])]
    classes = known + sorted(set(data["class"]) - set(CLASS_ORDER))
    rows = list(dict.fromkeys(data["row"]))  # notebook first, then the table's order
    subsets = [s for s in SUBSET_STYLE if s in set(data.loc[data["experiment"] != "notebook",
                                                             "subset"])]
    subsets += sorted(set(data["subset"]) - set(SUBSET_STYLE))
    height = 1.6 + 0.32 * len(rows) * max(1, len(subsets)) ** 0.5
    fig = Figure(figsize=(1.9 * len(classes) + 2.6, height), layout="constrained")
    axes = fig.subplots(1, len(classes), sharey=True, squeeze=False)[0]
    y_of = {row: len(rows) - 1 - k for k, row in enumerate(rows)}
    offset = {s: ((len(subsets) - 1) / 2 - k) * 0.22 for k, s in enumerate(subsets)}  # val on top
    notebook = data[data["experiment"] == "notebook"].set_index("class")["f1"]
    for ax, name in zip(axes, classes):
        ax.set_title(display_name(name))
        if name in notebook.index:
            ax.axvline(notebook[name], color="0.5", linestyle=":", linewidth=1)
        here = data[data["class"] == name]
        for point in here.itertuples(index=False):
            notebook_point = point.experiment == "notebook"
            marker, colour = (NOTEBOOK_STYLE if notebook_point else
                              SUBSET_STYLE.get(point.subset, ("x", "tab:gray")))
            y = y_of[point.row] + (0 if notebook_point else offset.get(point.subset, 0))
            if pd.isna(point.f1):
                continue
            key = f"{point.row}|{point.subset}|{name}"
            if not (pd.isna(point.ci_low) or pd.isna(point.ci_high)):
                ax.hlines(y, point.ci_low, point.ci_high, color=colour, linewidth=1.2,
                          label=f"{key}|ci")
            ax.plot([point.f1], [y], marker, color=colour, linestyle="none",
                    markersize=10 if notebook_point else 5, label=key)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.5, 1])
        ax.grid(axis="x", color="0.9")
        ax.set_xlabel("F1")
    axes[0].set_yticks(list(y_of.values()), list(y_of))
    axes[0].set_ylim(-0.6, len(rows) - 0.4)
    handles = [Line2D([], [], marker=NOTEBOOK_STYLE[0], color=NOTEBOOK_STYLE[1], markersize=10,
                      linestyle="none")]
    names = ["notebook's published F1 (B0 6-class, val; dotted line)"]
    for subset in subsets:
        marker, colour = SUBSET_STYLE.get(subset, ("x", "tab:gray"))
        handles.append(Line2D([], [], marker=marker, color=colour))
        names.append(f"ours, {subset} (bootstrap 95% interval)")
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3),
               frameon=False)
    fig.suptitle("Per-class F1 of every experiment beside the notebook's published run")
    return fig, data


def write_overview(table, path, dpi=150) -> pd.DataFrame:
    """Save the overview figure as `path` (PNG); return the plotted data."""
    fig, data = overview_figure(table)
    with atomic.replacing(path) as partial:
        fig.savefig(partial, dpi=dpi, format="png")
    return data


def _float(value):
    return np.nan if value is None or pd.isna(value) else float(value)
