"""Evaluation metrics for one set of predictions: the notebook's classification report and confusion
matrix, plus what it lacked: bootstrap 95% intervals (bug B15: one run says little with 9 galaxies
in a class) and calibration (expected calibration error, reliability bins).

Everything returned is plain Python (float, int, list, dict, None) so it can go straight to JSON.
"""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

# Resamples drawn per block: bounds memory (block x n indices) while staying vectorised.
_BOOT_BLOCK = 100


def compute_metrics(y_true, y_pred, proba, class_names, n_boot=1000, seed=0, n_bins=10) -> dict:
    """Metrics of integer predictions `y_pred` against targets `y_true` (both in range(n_classes)).

    `proba` is the (n, n_classes) softmax output, or None when only labels exist (then `ece` and
    `reliability` are None). Every class is reported, including classes absent from both arrays;
    ill-defined precision/recall/F1 count as 0 (sklearn zero_division=0), so macro averages run
    over all `class_names`, as in the notebook's `classification_report`.
    """
    class_names = [str(c) for c in class_names]
    y_true, y_pred = _check_labels(y_true, y_pred, len(class_names))
    labels = list(range(len(class_names)))
    result = {"n": len(y_true), "class_names": class_names}
    result["accuracy"] = float(accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        result.update({f"{average}_precision": float(p), f"{average}_recall": float(r),
                       f"{average}_f1": float(f)})
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    result["per_class"] = {
        name: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]),
               "support": int(s[k])}
        for k, name in enumerate(class_names)
    }
    result["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    result.update(bootstrap_intervals(y_true, y_pred, len(class_names), n_boot, seed))
    if proba is None:
        result["ece"], result["reliability"] = None, None
    else:
        proba = _check_proba(proba, len(y_true), len(class_names))
        bins = reliability_bins(y_true, y_pred, proba, n_bins)
        result["ece"], result["reliability"] = expected_calibration_error(bins), bins
    return result


def metrics_from_predictions(df, class_names, **kwargs) -> dict:
    """`compute_metrics` on a predictions table (columns `true`, `pred`, `prob_<class name>`).

    Without any `prob_*` column the calibration entries are None; a partial set is an error.
    """
    missing = [c for c in ("true", "pred") if c not in df.columns]
    if missing:
        raise KeyError(f"predictions table lacks column(s) {missing}; it needs 'true' and 'pred' "
                       f"(integer target indices), got columns {list(df.columns)}")
    prob_columns = [f"prob_{name}" for name in class_names]
    present = [c for c in prob_columns if c in df.columns]
    if present and len(present) < len(prob_columns):
        absent = sorted(set(prob_columns) - set(present))
        raise KeyError(f"predictions table has some probability columns but lacks {absent}; "
                       f"write one prob_<class name> column per class of {list(class_names)}")
    proba = df[prob_columns].to_numpy(dtype=float) if present else None
    return compute_metrics(df["true"].to_numpy(), df["pred"].to_numpy(), proba, class_names,
                           **kwargs)


def bootstrap_intervals(y_true, y_pred, n_classes, n_boot=1000, seed=0) -> dict:
    """95% percentile intervals of accuracy and macro-F1 from resampling galaxies with replacement.

    Macro-F1 per resample uses F1_k = 2 TP_k / (n_true_k + n_pred_k), 0 when both are 0: the same
    value sklearn gives with zero_division=0, computed with bincount for all resamples at once.
    """
    if n_boot <= 0:
        return {"accuracy_ci95": None, "macro_f1_ci95": None}
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    rng = np.random.default_rng(seed)
    accuracies, macro_f1s = [], []
    for start in range(0, n_boot, _BOOT_BLOCK):
        size = min(_BOOT_BLOCK, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        true_b, pred_b = y_true[idx], y_pred[idx]
        correct = true_b == pred_b
        accuracies.append(correct.mean(axis=1))
        row = np.repeat(np.arange(size), n) * n_classes
        true_key, pred_key = row + true_b.ravel(), row + pred_b.ravel()
        length = size * n_classes
        tp = np.bincount(true_key, weights=correct.ravel(), minlength=length)
        n_true = np.bincount(true_key, minlength=length)
        n_pred = np.bincount(pred_key, minlength=length)
        denominator = (n_true + n_pred).astype(float)
        f1 = np.divide(2 * tp, denominator, out=np.zeros(length), where=denominator > 0)
        macro_f1s.append(f1.reshape(size, n_classes).mean(axis=1))
    return {
        "accuracy_ci95": _percentile_interval(np.concatenate(accuracies)),
        "macro_f1_ci95": _percentile_interval(np.concatenate(macro_f1s)),
    }


def reliability_bins(y_true, y_pred, proba, n_bins=10) -> list:
    """Equal-width bins of confidence (max probability) on [0, 1]; bin k holds [k/B, (k+1)/B),
    the last bin also 1.0. Per bin: bounds, count, mean confidence and accuracy (None when empty).
    """
    proba = np.asarray(proba, dtype=float)
    confidence = proba.max(axis=1)
    correct = np.asarray(y_true) == np.asarray(y_pred)
    index = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    bins = []
    for k in range(n_bins):
        members = index == k
        count = int(members.sum())
        bins.append({
            "lower": k / n_bins,
            "upper": (k + 1) / n_bins,
            "count": count,
            "mean_confidence": float(confidence[members].mean()) if count else None,
            "accuracy": float(correct[members].mean()) if count else None,
        })
    return bins


def expected_calibration_error(bins) -> float:
    """ECE = sum over bins of (count / n) * |accuracy - mean confidence| (Guo et al. 2017)."""
    total = sum(b["count"] for b in bins)
    if total == 0:
        raise ValueError("cannot compute ECE: the reliability bins hold no predictions")
    gap = sum(b["count"] * abs(b["accuracy"] - b["mean_confidence"]) for b in bins if b["count"])
    return float(gap / total)


def _percentile_interval(values) -> list:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def _check_labels(y_true, y_pred, n_classes):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D and equally long, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no predictions to evaluate (empty y_true)")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class indices, got dtype {values.dtype}")
        bad = values[(values < 0) | (values >= n_classes)]
        if bad.size:
            raise ValueError(f"{name} holds indices {sorted(set(bad.tolist()))[:10]} outside "
                             f"0..{n_classes - 1}; check the class variant of these predictions")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def _check_proba(proba, n, n_classes):
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (n, n_classes):
        raise ValueError(f"proba must have shape (n, n_classes) = ({n}, {n_classes}), "
                         f"got {proba.shape}")
    if not np.isfinite(proba).all() or proba.min() < 0 or proba.max() > 1:
        raise ValueError("proba must hold finite probabilities in [0, 1]; pass the softmax "
                         "outputs, not logits")
    return proba
