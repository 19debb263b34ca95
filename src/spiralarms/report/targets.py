"""Labels against votes (issue 20): each pair of experiments that differ only by target, judged
three ways on the same held-out galaxies (matched by dr7objid).

1. Agreement with the volunteers' label (the paper's metric): accuracy, paired bootstrap interval
   of the difference and McNemar's test, from `spiralarms.report.comparisons.compare`.
2. The vote fractions: mean absolute error of each model's predicted fractions (a labels model's
   softmax, a votes model's expected vote fractions) against the volunteers' vote fractions, over
   galaxies with at least one vote, per class and averaged over classes; paired bootstrap of the
   difference. Calibration: expected calibration error (10 equal-width confidence bins, as in
   metrics.json) against the volunteers' label; paired bootstrap of the difference.
3. On synthetic data, accuracy against the renderer's true arm number (truth.csv `arm_class`):
   a galaxy is right when the predicted class contains its true class; one the variant cannot name
   (a non-spiral the volunteers passed, a class select12 drops) is wrong for both, as in the
   selection-function report. Paired bootstrap and McNemar as in 1.

Columns: a is the labels experiment, b the votes one; difference = a - b. Every bootstrap draws
the same resampled galaxies for both (`metrics.resample_blocks` with the same seed).
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.evaluation.metrics import resample_blocks
from spiralarms.report.comparisons import compare, mcnemar
from spiralarms.report.tables import (
    count,
    difference_with_interval,
    number,
    p_value,
    to_markdown,
    write_csv_and_markdown,
)
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

COLUMNS = ["labels", "votes", "subset", "judged", "metric", "n", "labels_value", "votes_value",
           "difference", "ci_low", "ci_high", "p_value", "test", "note"]
N_BINS = 10


def calibration_error(confidence, correct, n_bins=N_BINS, index=None):
    """ECE of (confidence, correct) arrays; with `index` (resamples, n) one ECE per resample.
    The bins are metrics.reliability_bins' (bin k holds [k/B, (k+1)/B), the last also 1.0)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if index is None:
        index = np.arange(len(confidence))[None, :]
    conf, right = confidence[index], correct[index]
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gaps = np.stack([np.abs(((right - conf) * (bins == k)).sum(axis=1)) for k in range(n_bins)])
    return gaps.sum(axis=0) / index.shape[1]


def paired_interval(statistic, values_a, values_b, n, n_boot, seed):
    """(point difference, low, high) of statistic(a) - statistic(b) under the paired bootstrap of
    the n galaxies; `statistic` maps (values, index (resamples, n)) to one value per resample
    (values: an array, or a tuple of arrays indexed together)."""
    whole = np.arange(n)[None, :]
    point = float(statistic(values_a, whole)[0] - statistic(values_b, whole)[0])
    if n_boot <= 0 or n == 0:
        return point, None, None
    draws = np.concatenate([statistic(values_a, idx) - statistic(values_b, idx)
                            for idx in resample_blocks(n, n_boot, seed)])
    low, high = np.percentile(draws, [2.5, 97.5])
    return point, float(low), float(high)


def _mean(values, index):
    return values[index].mean(axis=1)


def _row(pair, subset, judged, metric, n, a, b, interval=(None, None, None), test=None, note=""):
    difference, low, high = interval
    return {"labels": pair[0], "votes": pair[1], "subset": subset, "judged": judged,
            "metric": metric, "n": n, "labels_value": a, "votes_value": b,
            "difference": difference if difference is not None else a - b, "ci_low": low,
            "ci_high": high, "p_value": (test or {}).get("p_value"),
            "test": (test or {}).get("test", ""), "note": note}


def _accuracy_rows(pair, subset, judged, frame_a, frame_b, n_boot, seed):
    """The accuracy row of comparisons.compare on two prediction tables."""
    spec = {"a": pair[0], "b": pair[1], "subset": subset}
    first = compare(spec, frame_a, frame_b, n_boot=n_boot, seed=seed)[0]
    return _row(pair, subset, judged, "accuracy", first["n"], first["a_value"], first["b_value"],
                (first["difference"], first["ci_low"], first["ci_high"]),
                {"p_value": first["p_value"], "test": first["test"]}, first.get("note") or "")


def with_truth(frame, truth, variant):
    """`frame` with `true` replaced by the variant's target of the renderer's true class and
    `arm_class` by the true class; -1 where the variant cannot name it (never right)."""
    merged = frame.merge(truth[["dr7objid", "arm_class"]].rename(columns={"arm_class": "truth"}),
                         on="dr7objid", how="left", validate="one_to_one")
    if merged["truth"].isna().any():
        missing = merged.loc[merged["truth"].isna(), "dr7objid"].iloc[0]
        raise ValueError(f"truth.csv has no row for dr7objid {missing}: the predictions and "
                         "truth.csv come from different synthetic runs; rerun synthesize")
    true_class = merged["truth"].to_numpy(np.int64)
    target = np.full(len(merged), -1, np.int64)
    known = true_class >= 0
    target[known] = variant.targets(true_class[known])
    out = frame.copy()
    out["true"], out["arm_class"] = target, true_class
    return out


def compare_targets(pair, frames, subset, truth=None, n_boot=1000, seed=0) -> list:
    """Rows of one (labels, votes) pair from its two full prediction tables `frames`."""
    variant = Experiment.parse(pair[0]).variant
    names = list(variant.class_names)
    frame_a, frame_b = frames
    keys = ["dr7objid", "arm_class", "true", "pred"]
    rows = [_accuracy_rows(pair, subset, "volunteers' label", frame_a[keys], frame_b[keys],
                           n_boot, seed)]
    merged = frame_a.merge(frame_b, on="dr7objid", suffixes=("_a", "_b"), validate="one_to_one")
    proba = [merged[[f"prob_{n}_{k}" for n in names]].to_numpy(float) for k in ("a", "b")]
    # calibration against the volunteers' label
    confidence = [p.max(axis=1) for p in proba]
    correct = [(merged[f"pred_{k}"] == merged[f"true_{k}"]).to_numpy() for k in ("a", "b")]

    def ece(values, index):
        conf, right = values
        return calibration_error(conf, right, index=index)

    values = [(confidence[k], correct[k]) for k in (0, 1)]
    whole = np.arange(len(merged))[None, :]
    rows.append(_row(pair, subset, "volunteers' label", "ECE", len(merged),
                     float(ece(values[0], whole)[0]), float(ece(values[1], whole)[0]),
                     paired_interval(ece, *values, len(merged), n_boot, seed),
                     note="paired bootstrap interval only"))
    rows += _vote_rows(pair, subset, merged, proba, names, n_boot, seed)
    if truth is not None:
        rows.append(_truth_row(pair, subset, merged, truth, variant, n_boot, seed))
    return rows


def _truth_row(pair, subset, merged, truth, variant, n_boot, seed):
    """Accuracy against the renderer's truth: paired bootstrap and McNemar (comparisons')."""
    true = with_truth(merged[["dr7objid", "arm_class_a", "true_a"]].rename(
        columns={"arm_class_a": "arm_class", "true_a": "true"}), truth, variant)["true"]
    true = true.to_numpy()
    right = [(true >= 0) & (merged[f"pred_{k}"].to_numpy() == true) for k in ("a", "b")]
    row = _row(pair, subset, "renderer's truth", "accuracy", len(merged),
               float(right[0].mean()), float(right[1].mean()),
               paired_interval(_mean, *(r.astype(float) for r in right), len(merged), n_boot,
                               seed), mcnemar(*right))
    unnamed = int((true < 0).sum())
    if unnamed:
        row["note"] = (f"{unnamed} galaxies whose true class the variant cannot name count as "
                       "wrong for both")
    return row


def _vote_rows(pair, subset, merged, proba, names, n_boot, seed) -> list:
    """Mean absolute error of the fractions, averaged over classes and per class."""
    columns = [f"volunteer_{n}_a" for n in names]
    if not all(c in merged for c in columns):
        return [_row(pair, subset, "volunteers' fractions", "fraction MAE", 0, None, None,
                     (None, None, None),
                     note="the predictions have no volunteer fractions (evaluated without "
                          "vote_labels.parquet)")]
    volunteer = merged[columns].to_numpy(float)
    voted = ~np.isnan(volunteer).any(axis=1)
    error_a = np.abs(proba[0][voted] - volunteer[voted])
    error_b = np.abs(proba[1][voted] - volunteer[voted])
    note = f"{int((~voted).sum())} galaxies without votes left out" if (~voted).any() else ""
    rows = []
    for label, a, b in [("fraction MAE", error_a.mean(axis=1), error_b.mean(axis=1))] + [
            (f"fraction MAE {n}", error_a[:, i], error_b[:, i]) for i, n in enumerate(names)]:
        rows.append(_row(pair, subset, "volunteers' fractions", label, int(voted.sum()),
                         float(a.mean()) if len(a) else None, float(b.mean()) if len(b) else None,
                         paired_interval(_mean, a, b, len(a), n_boot, seed) if len(a) else
                         (None, None, None), note=note))
    return rows


def run_target_comparisons(pairs, predictions_dirs, subsets, truth_path=None, n_boot=1000,
                           seed=0) -> pd.DataFrame:
    """Every (labels, votes) pair on each subset of `subsets` both have predictions for;
    `predictions_dirs`: experiment name -> its predictions folder."""
    truth = pd.read_csv(truth_path) if truth_path else None
    rows = []
    for pair in pairs:
        for subset in subsets:
            paths = [Path(predictions_dirs[name]) / f"{subset}.parquet" for name in pair]
            if not all(p.is_file() for p in paths):
                log.warning("%s vs %s: no %s predictions for both; skipped", *pair, subset)
                continue
            frames = [pd.read_parquet(p) for p in paths]
            rows += compare_targets(pair, frames, subset, truth, n_boot=n_boot, seed=seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def targets_markdown(table) -> str:
    lines = ["# Labels against votes: the same galaxies, judged three ways", "",
             ("Each pair differs only by what it learned from: a = the paper's hard labels, "
             "b = the volunteers' vote counts (Dirichlet-multinomial). Difference a - b with its "
             "paired-bootstrap 95% interval; p: McNemar's test (accuracy rows). Lower is better "
             "for MAE and ECE. See spiralarms.report.targets."), ""]
    if table.empty:
        return "\n".join(lines + [("No pair of experiments differs only by target "
                                  "(experiments.targets, or a `_votes` experiment beside its "
                                  "labels counterpart)."), ""])
    for (a, b, subset), group in table.groupby(["labels", "votes", "subset"], sort=False):
        lines += [f"## {a} vs {b} ({subset})", ""]
        display = pd.DataFrame({
            "judged against": group["judged"], "metric": group["metric"],
            "n": group["n"].map(count), "labels": group["labels_value"].map(number),
            "votes": group["votes_value"].map(number),
            "labels - votes [95% CI]": [difference_with_interval(*v) for v in zip(
                group["difference"], group["ci_low"], group["ci_high"])],
            "p": group["p_value"].map(p_value),
        })
        lines.append(to_markdown(display))
        notes = [n for n in group["note"].dropna().unique() if n and "interval only" not in n]
        lines += [f"_{n}_\n" for n in notes]
    return "\n".join(lines)


def write_targets(table, out_dir) -> list:
    """targets.csv (every column) and targets.md in `out_dir`."""
    return write_csv_and_markdown(table, out_dir, "targets", targets_markdown(table))


def format_targets(table) -> str:
    """The comparison for the terminal (`spiralarms summary`): per pair and subset, accuracy
    against the label and the truth, ECE and the mean fraction MAE (per class: targets.md)."""
    shown = table[~table["metric"].str.startswith("fraction MAE ")]
    if shown.empty:
        return ""
    lines = [("Labels against votes (a = labels, b = votes; a - b with paired-bootstrap 95% CI, "
             "McNemar p):")]
    for (a, b, subset), group in shown.groupby(["labels", "votes", "subset"], sort=False):
        lines.append(f"{a} vs {b}, {subset}:")
        display = pd.DataFrame({
            "against": group["judged"], "metric": group["metric"], "n": group["n"].map(count),
            "labels": group["labels_value"].map(number),
            "votes": group["votes_value"].map(number),
            "labels - votes [95% CI]": [difference_with_interval(*v) for v in zip(
                group["difference"], group["ci_low"], group["ci_high"])],
            "p": group["p_value"].map(p_value),
        })
        lines.append(display.to_string(index=False))
    return "\n".join(lines)
