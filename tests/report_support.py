"""Inputs of the report tests (summary, comparisons, aggregate): metrics.json files as evaluate
writes them and prediction tables as the comparisons read them."""

import json

import numpy as np
import pandas as pd

from spiralarms.data.variants import VARIANTS

SIX = list(VARIANTS["6class"].class_names)


def subset_metrics(accuracy, macro_f1, class_names=SIX, f1_first=0.5):
    """The part of compute_metrics output that summary reads."""
    per_class = {name: {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 10}
                 for name in class_names}
    per_class[class_names[0]]["f1"] = f1_first
    return {"n": 10 * len(class_names), "class_names": list(class_names),
            "accuracy": accuracy, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.04],
            "macro_precision": 0.7, "macro_recall": 0.6, "macro_f1": macro_f1,
            "macro_f1_ci95": [macro_f1 - 0.1, macro_f1 + 0.08], "weighted_precision": 0.7,
            "weighted_recall": accuracy, "weighted_f1": 0.66, "ece": 0.12,
            "per_class": per_class,
            "confusion_matrix": [[10 if i == j else 0 for j in class_names]
                                 for i in class_names]}


def write_nested(root, experiment, val, test=None, training=None):
    folder = root / experiment
    folder.mkdir(parents=True)
    subsets = {"val": val} | ({"test": test} if test else {})
    path = folder / "metrics.json"
    path.write_text(json.dumps({"experiment": experiment, "subsets": subsets,
                                "training": training or {}}))
    return path


def training_record(source, matches, sha="ab" * 32, notes=()):
    return {"weights": {"source": source, "sha256": sha if source else None,
                        "matches_paper": matches}, "notes": list(notes)}


def with_ordinal(metrics, within=0.9, mae=0.3, qwk=0.8):
    per_class_ci = {name: [metrics["per_class"][name]["f1"] - 0.1 - k / 100,
                           metrics["per_class"][name]["f1"] + 0.1]
                    for k, name in enumerate(metrics["class_names"])}
    return metrics | {
        "per_class_f1_ci95": per_class_ci,
        "ordinal": {"n": 50, "within_one": within, "within_one_ci95": [within - 0.05, 1.0],
                    "mae_arms": mae, "mae_arms_ci95": [mae - 0.1, mae + 0.1], "qwk": qwk,
                    "qwk_ci95": [qwk - 0.1, qwk + 0.05]}}


def predictions_table(ids, arm_class, pred, variant="6class"):
    """A predictions table as evaluate writes it (the columns comparisons read)."""
    v = VARIANTS[variant]
    return pd.DataFrame({"dr7objid": ids, "arm_class": arm_class,
                         "true": [v.class_map[c] for c in arm_class], "pred": pred})


def known_pair(n_copies=1):
    """Ten galaxies, five of 1 arm (index 0) and five of 2 (index 1). a is right on 8 (4 of 5 in
    each class), b on 4 (1 of 5, 3 of 5); only a right on galaxies 1, 2, 3, 6, 8, only b on 9,
    both wrong on 4."""
    arm = [0] * 5 + [1] * 5
    pred_a = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    pred_b = [0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    ids = np.arange(10 * n_copies)
    return (predictions_table(ids, arm * n_copies, pred_a * n_copies),
            predictions_table(ids, arm * n_copies, pred_b * n_copies))


def write_predictions(root, experiment, frame, subset="val"):
    folder = root / "experiments" / experiment / "predictions"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / f"{subset}.parquet", index=False)
    return folder
