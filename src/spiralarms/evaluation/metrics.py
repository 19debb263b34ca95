"""Evaluation metrics for one set of predictions: the notebook's classification report and confusion
matrix, plus what it lacked: bootstrap 95% intervals (bug B15: one run says little with 9 galaxies
in a class; also per class F1), calibration (expected calibration error, reliability bins) and an
ordinal view of arm number (`ordinal_metrics`).

Ordinal view. Arm number is ordered, and most errors are one arm off, so besides the unordered
metrics `compute_metrics` reports within-one-arm accuracy, mean absolute error in arms and
quadratic weighted kappa, on the galaxies whose true and predicted classes both carry an arm count
(`ARM_NUMBERS`): 1, 2, 3 and 4 arms count as themselves, "5+" as 5 (its lower bound: GZ2's answer
is "more than four"), and a merged class as the midpoint of the classes it merges: "3-4" = 3.5,
"4+" (4 and 5+) = 4.5. A merged class therefore sits 1.5 arms from its neighbours, so confusing it
with one is not "within one arm" (the galaxy may be two arms off). "Can't tell" ("?") has no arm
count: galaxies with that true class are left out, and so are galaxies predicted "can't tell"
(the counts of both are reported). The kappa's quadratic weights are (a_i - a_j)^2 of these arm
numbers, which for equally spaced classes (6class, select12) is sklearn's
`cohen_kappa_score(weights="quadratic")`.

Everything returned is plain Python (float, int, list, dict, None) so it can go straight to JSON.
"""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

# Resamples drawn per block: bounds memory (block x n indices) while staying vectorised.
_BOOT_BLOCK = 100

# Arm number of every class name of every variant (spiralarms.data.variants); None: no arm count.
# "5+" is its lower bound; a merged class is the midpoint of what it merges (module docstring).
ARM_NUMBERS = {"1": 1.0, "2": 2.0, "3": 3.0, "4": 4.0, "5+": 5.0, "3-4": 3.5, "4+": 4.5,
               "?": None}


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
    intervals = bootstrap_intervals(y_true, y_pred, len(class_names), n_boot, seed)
    per_class_f1 = intervals.pop("per_class_f1_ci95")
    result.update(intervals)
    result["per_class_f1_ci95"] = (None if per_class_f1 is None else
                                   dict(zip(class_names, per_class_f1)))
    result["ordinal"] = ordinal_metrics(y_true, y_pred, class_names, n_boot, seed)
    if proba is None:
        result["ece"], result["reliability"] = None, None
    else:
        proba = _check_proba(proba, len(y_true), len(class_names))
        bins = reliability_bins(y_true, y_pred, proba, n_bins)
        result["ece"], result["reliability"] = expected_calibration_error(bins), bins
    return result


def resample_blocks(n, n_boot, seed):
    """Bootstrap indices: (block, n) arrays of draws from range(n) with replacement, n_boot rows
    in all, from numpy's default_rng(seed). Every bootstrap here draws through this, so equal
    seeds resample the same galaxies (paired comparisons rely on it)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _BOOT_BLOCK):
        yield rng.integers(0, n, size=(min(_BOOT_BLOCK, n_boot - start), n))


def per_class_f1(y_true, y_pred, n_classes):
    """F1 per class of each row of (resamples, n) label arrays: (resamples, n_classes).

    F1_k = 2 TP_k / (n_true_k + n_pred_k), 0 when both are 0: the value sklearn gives with
    zero_division=0, computed with bincount for all rows at once.
    """
    y_true, y_pred = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    size, n = y_true.shape
    correct = y_true == y_pred
    row = np.repeat(np.arange(size), n) * n_classes
    true_key, pred_key = row + y_true.ravel(), row + y_pred.ravel()
    length = size * n_classes
    tp = np.bincount(true_key, weights=correct.ravel(), minlength=length)
    n_true = np.bincount(true_key, minlength=length)
    n_pred = np.bincount(pred_key, minlength=length)
    denominator = (n_true + n_pred).astype(float)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(length), where=denominator > 0)
    return f1.reshape(size, n_classes)


def bootstrap_intervals(y_true, y_pred, n_classes, n_boot=1000, seed=0) -> dict:
    """95% percentile intervals of accuracy, macro-F1 and each class's F1 (a list in class
    order) from resampling galaxies with replacement; None for all when n_boot is 0."""
    if n_boot <= 0:
        return {"accuracy_ci95": None, "macro_f1_ci95": None, "per_class_f1_ci95": None}
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    accuracies, f1s = [], []
    for idx in resample_blocks(len(y_true), n_boot, seed):
        true_b, pred_b = y_true[idx], y_pred[idx]
        accuracies.append((true_b == pred_b).mean(axis=1))
        f1s.append(per_class_f1(true_b, pred_b, n_classes))
    f1s = np.concatenate(f1s)
    return {
        "accuracy_ci95": _percentile_interval(np.concatenate(accuracies)),
        "macro_f1_ci95": _percentile_interval(f1s.mean(axis=1)),
        "per_class_f1_ci95": [_percentile_interval(f1s[:, k]) for k in range(n_classes)],
    }


def arm_numbers(class_names):
    """Arm number per class name (`ARM_NUMBERS`; None for "can't tell"), or None when a name is
    not an arm class at all (e.g. made-up names in a test): then no ordinal view exists."""
    names = [str(c) for c in class_names]
    if any(name not in ARM_NUMBERS for name in names):
        return None
    return [ARM_NUMBERS[name] for name in names]


def ordinal_metrics(y_true, y_pred, class_names, n_boot=1000, seed=0):
    """Within-one-arm accuracy, mean absolute error in arms and quadratic weighted kappa, each
    with a 95% bootstrap interval, on the galaxies whose true and predicted classes both have an
    arm number (module docstring). None when the class names are not arm classes.

    Returns {"n", "excluded_true_cant_tell", "excluded_pred_cant_tell", "arm_numbers",
    "within_one", "within_one_ci95", "mae_arms", "mae_arms_ci95", "qwk", "qwk_ci95"}; a value
    that does not exist (no galaxy left; kappa of a single class) is None.
    """
    numbers = arm_numbers(class_names)
    if numbers is None:
        return None
    values = np.array([np.nan if v is None else v for v in numbers])
    true_arms, pred_arms = values[np.asarray(y_true)], values[np.asarray(y_pred)]
    true_ok, pred_ok = ~np.isnan(true_arms), ~np.isnan(pred_arms)
    keep = true_ok & pred_ok
    result = {"n": int(keep.sum()), "excluded_true_cant_tell": int((~true_ok).sum()),
              "excluded_pred_cant_tell": int((true_ok & ~pred_ok).sum()),
              "arm_numbers": {str(c): v for c, v in zip(class_names, numbers) if v is not None}}
    true_arms, pred_arms = true_arms[keep], pred_arms[keep]
    names = ("within_one", "mae_arms", "qwk")
    if not keep.any():
        return result | {k: None for name in names for k in (name, f"{name}_ci95")}
    point = _ordinal_statistics(true_arms[None, :], pred_arms[None, :])
    for name, value in zip(names, point):
        result[name] = _finite_or_none(value[0])
        result[f"{name}_ci95"] = None
    if n_boot > 0:
        draws = [_ordinal_statistics(true_arms[idx], pred_arms[idx])
                 for idx in resample_blocks(len(true_arms), n_boot, seed)]
        for k, name in enumerate(names):
            result[f"{name}_ci95"] = _percentile_interval(np.concatenate([d[k] for d in draws]))
    return result


def _ordinal_statistics(true_arms, pred_arms):
    """Within-one accuracy, MAE and quadratic weighted kappa per row of (resamples, n) arrays.

    Kappa = 1 - sum(w O) / sum(w E) with w_ij = (a_i - a_j)^2, O the joint and E the product of
    the marginal distributions: sum(w O) = mean((t - p)^2) and sum(w E) = E[(T - P)^2] for
    independent T, P with those marginals = var(t) + var(p) + (mean t - mean p)^2. NaN when the
    denominator is 0 (one class only, true and predicted alike).
    """
    error = np.abs(true_arms - pred_arms)
    within, mae = (error <= 1).mean(axis=1), error.mean(axis=1)
    expected = (true_arms.var(axis=1) + pred_arms.var(axis=1)
                + (true_arms.mean(axis=1) - pred_arms.mean(axis=1)) ** 2)
    observed = (error ** 2).mean(axis=1)
    kappa = np.divide(observed, expected, out=np.full(len(error), np.nan), where=expected > 0)
    return within, mae, 1 - kappa


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


def _percentile_interval(values):
    """[2.5%, 97.5%] percentiles, ignoring NaN (a resample where a statistic does not exist);
    None when no resample has one."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not values.size:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def _finite_or_none(value):
    return float(value) if np.isfinite(value) else None


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


def vote_fraction_metrics(proba, votes, class_names, n_boot=1000, seed=0) -> dict:
    """Mean absolute error of predicted fractions `proba` (n, classes) against the volunteers'
    vote fractions, from their counts `votes` (n, classes, already merged into the variant's
    classes). Galaxies without a vote in these classes have no fractions: left out, counted.
    `mae` is the mean over galaxies and classes (a galaxy's error is its mean over classes), with a
    bootstrap interval; `mae_per_class` per class, as GZ DESI and Zoobot report it."""
    proba, votes = np.asarray(proba, float), np.asarray(votes, float)
    total = votes.sum(axis=1)
    voted = total > 0
    result = {"n": int(voted.sum()), "no_votes": int((~voted).sum()), "mae": None,
              "mae_ci95": None, "mae_per_class": None}
    if not voted.any():
        return result
    error = np.abs(proba[voted] - votes[voted] / total[voted, None])
    per_galaxy = error.mean(axis=1)
    result["mae"] = float(per_galaxy.mean())
    result["mae_per_class"] = {str(n): float(e) for n, e in zip(class_names, error.mean(axis=0))}
    if n_boot > 0:
        draws = np.concatenate([per_galaxy[idx].mean(axis=1)
                                for idx in resample_blocks(len(per_galaxy), n_boot, seed)])
        result["mae_ci95"] = _percentile_interval(draws)
    return result
