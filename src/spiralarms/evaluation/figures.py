"""Evaluation figures: confusion matrices, training curves, reliability diagrams, contact sheets of
misclassified galaxies and stellar-mass histograms per class.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot), so nothing depends on the
display backend or leaks open figures in long Snakemake jobs. Every figure is written twice by
`plotting.save`: `<stem>.png` for reports and `<stem>.pdf` for the paper; the contact sheets of
photographs only as PNG (`plotting.save_photo_sheet`).
"""

import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spiralarms.data.variants import VARIANTS, long_names
from spiralarms.evaluation.metrics import expected_calibration_error
from spiralarms.plotting import display_image, save, save_photo_sheet

log = logging.getLogger(__name__)

# The notebook's per-class colours (cells 100/101), extended for safety.
CLASS_COLOURS = ["darkorange", "red", "magenta", "green", "blue", "blueviolet", "teal", "brown"]


def axis_labels(class_names) -> list:
    """Readable class labels ('2 arms', "can't tell") for a variant's short class names."""
    for variant in VARIANTS.values():
        if list(variant.class_names) == list(class_names):
            return long_names(variant)
    return [str(c) for c in class_names]


# --- confusion matrix -------------------------------------------------------------------------

def plot_confusion(cm, labels, stem, normalize=False, title=None) -> list:
    """Heat map of confusion matrix `cm` (rows true, columns predicted) with the value in each cell.

    normalize=True divides each row by its support (recall on the diagonal); empty rows show '–'.
    """
    counts = np.asarray(cm, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or len(labels) != len(counts):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match "
                         f"{len(labels)} labels {list(labels)}")
    values = _row_normalise(counts) if normalize else counts
    size = 1.2 + 0.75 * len(labels)
    fig = Figure(figsize=(size + 1.4, size))
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(values), cmap="Blues",
                      vmin=0, vmax=1 if normalize else max(values.max(), 1))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of true class" if normalize else "galaxies")
    _annotate_cells(ax, values, normalize)
    wrapped = [textwrap.fill(str(label), 10) for label in labels]
    ticks = range(len(labels))
    # Rotated one-line labels cannot collide; wrapped ones would, once rotated.
    ax.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right",
                  rotation_mode="anchor")
    # Row-normalised cells hide how few galaxies a row holds (9 four-armed ones in the notebook).
    row_labels = ([f"{label}\n(n={n:.0f})" for label, n in zip(wrapped, counts.sum(axis=1))]
                  if normalize else wrapped)
    ax.set_yticks(ticks, row_labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix"))
    return save(fig, stem)


def _row_normalise(counts):
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, counts / support, np.nan)


def _annotate_cells(ax, values, normalize):
    threshold = (1 if normalize else np.nanmax(values)) / 2
    fontsize = 11 if len(values) <= 6 else 8
    for (row, col), value in np.ndenumerate(values):
        text = "–" if np.isnan(value) else (f"{value:.2f}" if normalize else f"{value:.0f}")
        colour = "white" if not np.isnan(value) and value > threshold else "black"
        ax.text(col, row, text, ha="center", va="center", color=colour, fontsize=fontsize)


# --- training history -------------------------------------------------------------------------

def plot_history(history_df, stem, monitor="val_accuracy") -> list:
    """Loss and accuracy per epoch from training's `history.csv`; the best `monitor` epoch is
    marked. Its epochs count from 1, as Keras prints them (the notebook's "best epoch 21").
    Missing validation columns are skipped.
    """
    history = pd.DataFrame(history_df)
    if "epoch" in history:
        epochs = history["epoch"].to_numpy()
    else:
        epochs = np.arange(1, len(history) + 1)
    if not {"loss", "accuracy"} & set(history.columns):
        raise KeyError(f"history has neither 'loss' nor 'accuracy' column; columns are "
                       f"{list(history.columns)} (expected Keras CSVLogger output)")
    fig = Figure(figsize=(10, 4), layout="constrained")
    best = _best_epoch(history, epochs, monitor)
    for ax, quantity in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for column, style in ((quantity, "-"), (f"val_{quantity}", "--")):
            if column in history:
                ax.plot(epochs, history[column], style, label=column.replace("_", " "))
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":",
                       label=f"best {monitor.replace('_', ' ')} (epoch {best})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save(fig, stem)


def _best_epoch(history, epochs, monitor):
    if monitor not in history or history[monitor].isna().all():
        log.info("history has no %r values; no best epoch marked", monitor)
        return None
    # Keras ModelCheckpoint/EarlyStopping keep the first best epoch: 'max' for accuracies.
    values = history[monitor].to_numpy()
    index = np.nanargmin(values) if "loss" in monitor else np.nanargmax(values)
    return int(epochs[index])


# --- calibration ------------------------------------------------------------------------------

def plot_reliability(metrics_or_reliability, stem) -> list:
    """Reliability diagram: accuracy against mean confidence per bin, the diagonal for perfect
    calibration, ECE in the title, and bin counts as a histogram beneath.

    Accepts a `compute_metrics` result (its 'reliability' entry) or the reliability bin list itself.
    """
    bins = _as_reliability_bins(metrics_or_reliability)
    ece = expected_calibration_error(bins)
    lower = np.array([b["lower"] for b in bins])
    width = bins[0]["upper"] - bins[0]["lower"]
    counts = np.array([b["count"] for b in bins])
    filled = counts > 0
    accuracy = np.array([b["accuracy"] if b["count"] else 0.0 for b in bins])
    confidence = np.array([b["mean_confidence"] if b["count"] else np.nan for b in bins])

    fig = Figure(figsize=(5, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.bar(lower[filled], accuracy[filled], width=width, align="edge", color="tab:blue",
            edgecolor="black", label="accuracy")
    top.plot(confidence[filled], accuracy[filled], "o", color="tab:orange", ms=4,
             label="(mean confidence, accuracy)")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    top.set(ylim=(0, 1), xlim=(0, 1), ylabel="accuracy",
            title=f"Reliability (ECE = {ece:.3f}, N = {counts.sum()})")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(lower, counts, width=width, align="edge", color="grey", edgecolor="black")
    bottom.set(xlabel="confidence (max probability)", ylabel="galaxies")
    return save(fig, stem)


def _as_reliability_bins(source):
    if isinstance(source, dict):
        if source.get("reliability") is None:
            raise ValueError("metrics have no reliability bins (computed without probabilities)")
        return source["reliability"]
    if isinstance(source, list) and source and "count" in source[0]:
        return source
    raise TypeError("plot_reliability needs compute_metrics output or its 'reliability' list; "
                    f"got {type(source).__name__}")


# --- misclassified galaxies -------------------------------------------------------------------

def misclassification_sheets(predictions, load_image, out_dir, class_names,
                             max_per_cell=16) -> list:
    """One contact sheet per off-diagonal (true, predicted) cell that has members.

    Each thumbnail shows the GZ2 debiased fraction of the winning answer (rho) and the model's
    probability for the predicted class. The most confidently wrong galaxies come first, as they
    are the ones worth inspecting. Files are `true-<name>_pred-<name>.png` in `out_dir`;
    returns their paths.
    """
    _require_columns(predictions, ["true", "pred", "asset_id", "arm_fraction"])
    labels = axis_labels(class_names)
    wrong = predictions[predictions["true"] != predictions["pred"]]
    sheets = []
    for (true, pred), cell in wrong.groupby(["true", "pred"], sort=True):
        probability = _predicted_probability(cell, class_names)
        order = np.argsort(-np.nan_to_num(probability, nan=-1), kind="stable")[:max_per_cell]
        shown = cell.iloc[order]
        fig = _contact_sheet(shown, probability[order], load_image)
        fig.suptitle(f"true: {labels[true]}  →  predicted: {labels[pred]}  "
                     f"({len(shown)} of {len(cell)} shown)\n"
                     "ρ = GZ2 debiased vote fraction of the label, p = predicted probability",
                     fontsize=10)
        stem = Path(out_dir) / f"true-{_file_label(class_names[true])}_pred-" \
                               f"{_file_label(class_names[pred])}"
        sheets.append(save_photo_sheet(fig, stem))
    return sheets


def _predicted_probability(cell, class_names):
    pred = cell["pred"].to_numpy()
    out = np.full(len(cell), np.nan)
    for k, name in enumerate(class_names):
        column = f"prob_{name}"
        if column in cell:
            out[pred == k] = cell.loc[pred == k, column].to_numpy()
    return out


def misclassification_overview(predictions, load_image, out_stem, class_names,
                               max_shown=16) -> list:
    """One sheet of the most confidently wrong galaxies of a subset, every cell mixed (each
    thumbnail says true -> predicted): the capped view the report embeds; the per-cell sheets
    stay on disk. Returns the PNG path, or [] when nothing is wrong."""
    _require_columns(predictions, ["true", "pred", "asset_id", "arm_fraction"])
    labels = [" ".join(label.split()) for label in axis_labels(class_names)]
    wrong = predictions[predictions["true"] != predictions["pred"]]
    if wrong.empty:
        return []
    probability = _predicted_probability(wrong, class_names)
    order = np.argsort(-np.nan_to_num(probability, nan=-1), kind="stable")[:max_shown]
    shown = wrong.iloc[order]
    titles = [f"{labels[t]} → {labels[p]}" for t, p in zip(shown["true"], shown["pred"])]
    fig = _contact_sheet(shown, probability[order], load_image, titles)
    fig.suptitle(f"The {len(shown)} most confidently wrong of {len(wrong)} misclassified "
                 "(true → predicted; all cells: misclassified_<subset>/)", fontsize=10)
    return [save_photo_sheet(fig, out_stem)]


def _contact_sheet(rows, probability, load_image, titles=None):
    n_cols = min(4, len(rows))
    n_rows = int(np.ceil(len(rows) / n_cols))
    fig = Figure(figsize=(max(2.2 * n_cols, 5.0), 2.4 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    titles = titles or [""] * len(rows)
    for ax, asset_id, rho, p, title in zip(axes, rows["asset_id"], rows["arm_fraction"],
                                           probability, titles):
        ax.imshow(display_image(load_image(asset_id), f"load_image({asset_id!r})"), cmap="gray",
                  vmin=0, vmax=1)
        ax.set_title(f"{title}\n" * bool(title) + f"ρ={rho:.2f}  p={p:.2f}\n{asset_id}",
                     fontsize=8)
    return fig


def _file_label(name):
    return str(name).replace("?", "cant-tell").replace("+", "plus")


# --- physical properties ----------------------------------------------------------------------

def mass_histograms(predictions, class_names, stem):
    """Stellar-mass histograms per class: top row grouped by predicted class, bottom row by true
    class; grey density of all masses with the class subset as a step histogram (the notebook's
    cells 100/101). Galaxies without a mass are left out, as the notebook's dropna did.

    Returns medians of log M* and SFR per true and per predicted class, or None (logged) when the
    table has no `log_mass` values.
    """
    if "log_mass" not in predictions or predictions["log_mass"].isna().all():
        log.info("no log_mass values in the predictions; stellar-mass histograms skipped")
        return None
    _require_columns(predictions, ["true", "pred"])
    with_mass = predictions[predictions["log_mass"].notna()]
    log.info("stellar-mass histograms: %d of %d galaxies have a mass", len(with_mass),
             len(predictions))
    masses = with_mass["log_mass"].to_numpy(dtype=float)
    edges = np.histogram_bin_edges(masses, bins=20)
    n_classes = len(class_names)
    fig = Figure(figsize=(2.6 * n_classes, 5.2), layout="constrained")
    axes = fig.subplots(2, n_classes, sharex=True, sharey=True, squeeze=False)
    for row, (column, prefix) in enumerate((("pred", "Pred"), ("true", "Label"))):
        for k, name in enumerate(class_names):
            subset = masses[with_mass[column].to_numpy() == k]
            ax = axes[row, k]
            ax.hist(masses, bins=edges, density=True, color="lightgrey")
            if len(subset):
                colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
                ax.hist(subset, bins=edges, density=True, histtype="step", linewidth=1.6,
                        color=colour)
                ax.axvline(np.median(subset), color=colour, linestyle="--", linewidth=1)
            ax.set_title(f"{prefix}: m={name} ({len(subset)})", fontsize=10)
    fig.suptitle("grey: all galaxies with a mass; line: the class; dashed: its median",
                 fontsize=10)
    for ax in axes[1]:
        ax.set_xlabel("log(M*/M$_\\odot$)")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    save(fig, stem)
    return _median_table(with_mass, class_names)


def _median_table(with_mass, class_names):
    has_sfr = "sfr" in with_mass
    rows = []
    for grouping in ("true", "pred"):
        for k, name in enumerate(class_names):
            members = with_mass[with_mass[grouping] == k]
            rows.append({
                "grouping": grouping,
                "class": name,
                "n": len(members),
                "median_log_mass": members["log_mass"].median() if len(members) else np.nan,
                "median_sfr": members["sfr"].median() if has_sfr and len(members) else np.nan,
            })
    return pd.DataFrame(rows)


def _require_columns(table, columns):
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"predictions table lacks column(s) {missing}; columns are "
                       f"{list(table.columns)}")
