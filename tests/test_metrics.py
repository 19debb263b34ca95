import json
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from spiralarms.evaluation.metrics import compute_metrics


def labels_from_confusion(cm):
    """y_true, y_pred arrays that reproduce confusion matrix `cm` (rows true, columns predicted)."""
    cm = np.asarray(cm)
    pairs = [(t, p) for t in range(len(cm)) for p in range(len(cm)) for _ in range(cm[t, p])]
    y_true, y_pred = zip(*pairs)
    return np.array(y_true), np.array(y_pred)


# rows = true, columns = predicted; worked by hand below
SMALL_CM = [[3, 1, 0],
            [1, 2, 1],
            [0, 0, 2]]


def test_small_confusion_matrix_by_hand():
    y_true, y_pred = labels_from_confusion(SMALL_CM)
    m = compute_metrics(y_true, y_pred, None, ["a", "b", "c"], n_boot=0)
    # TP = 3, 2, 2; true counts = 4, 4, 2; predicted counts = 4, 3, 3
    precision = [3 / 4, 2 / 3, 2 / 3]
    recall = [3 / 4, 2 / 4, 2 / 2]
    f1 = [3 / 4, 4 / 7, 4 / 5]  # 2PR/(P+R)
    for k, name in enumerate("abc"):
        assert m["per_class"][name]["precision"] == pytest.approx(precision[k])
        assert m["per_class"][name]["recall"] == pytest.approx(recall[k])
        assert m["per_class"][name]["f1"] == pytest.approx(f1[k])
    assert [m["per_class"][c]["support"] for c in "abc"] == [4, 4, 2]
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["macro_precision"] == pytest.approx(sum(precision) / 3)
    assert m["weighted_f1"] == pytest.approx((4 * 3 / 4 + 4 * 4 / 7 + 2 * 4 / 5) / 10)
    assert m["weighted_recall"] == pytest.approx(7 / 10)
    assert m["confusion_matrix"] == SMALL_CM
    assert m["ece"] is None and m["reliability"] is None


def test_class_with_zero_support_is_listed_and_counts_in_macro_average():
    # class "d" never occurs and is predicted once (wrongly)
    y_true = np.array([0, 0, 1, 2])
    y_pred = np.array([0, 3, 1, 2])
    m = compute_metrics(y_true, y_pred, None, ["a", "b", "c", "d"], n_boot=0)
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # F1: a = 2*1*0.5/1.5 = 2/3, b = c = 1, d = 0; macro over all four classes
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert m["confusion_matrix"][0] == [1, 0, 0, 1]
    assert m["confusion_matrix"][3] == [0, 0, 0, 0]


def test_ece_and_reliability_bins_on_hand_made_case():
    y_true = np.array([0, 1, 0, 1, 0])
    y_pred = np.array([0, 1, 1, 0, 0])
    proba = np.array([[0.95, 0.05],   # confident, right  -> bin 9
                      [0.05, 0.95],   # confident, right  -> bin 9
                      [0.45, 0.55],   # hesitant, wrong   -> bin 5
                      [0.55, 0.45],   # hesitant, wrong   -> bin 5
                      [1.0, 0.0]])    # certain, right: 1.0 belongs to the last bin
    m = compute_metrics(y_true, y_pred, proba, ["x", "y"], n_boot=0, n_bins=10)
    bins = m["reliability"]
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 3]
    assert bins[5]["accuracy"] == 0.0 and bins[5]["mean_confidence"] == pytest.approx(0.55)
    assert bins[9]["accuracy"] == 1.0
    assert bins[9]["mean_confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3)
    assert bins[0]["accuracy"] is None
    # ECE = (2 * |0 - 0.55| + 3 * |1 - 0.9667|) / 5
    assert m["ece"] == pytest.approx((2 * 0.55 + 3 * (1 - 2.9 / 3)) / 5)


def test_bootstrap_intervals_contain_estimate_and_follow_the_seed():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 4, 400))
    names = ["1", "2", "3", "?"]
    first = compute_metrics(y_true, y_pred, None, names, n_boot=300, seed=7)
    again = compute_metrics(y_true, y_pred, None, names, n_boot=300, seed=7)
    other = compute_metrics(y_true, y_pred, None, names, n_boot=300, seed=8)
    for key, point in (("accuracy_ci95", "accuracy"), ("macro_f1_ci95", "macro_f1")):
        low, high = first[key]
        assert low < first[point] < high
        assert high - low < 0.2  # 400 galaxies: a few percent either side, not the whole range
        assert first[key] == again[key]
    assert first["accuracy_ci95"] != other["accuracy_ci95"]


def test_output_is_json_serialisable():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    m = compute_metrics(y, np.array([0, 1, 0, 0]), proba, ["1", "2"], n_boot=20)
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_reproduces_notebook_validation_report():
    """The notebook's published B0 6-class report (report/REFERENCE.md) follows from its matrix;
    this also checks every number in the packaged reference file."""
    reference = json.loads(
        (files("spiralarms.report") / "notebook_b0_6class_val.json").read_text()
    )
    y_true, y_pred = labels_from_confusion(reference["confusion_matrix"])
    m = compute_metrics(y_true, y_pred, None, reference["class_names"], n_boot=0)
    assert round(m["accuracy"], 4) == 0.8584
    assert round(m["macro_f1"], 4) == 0.7951
    assert [round(m["per_class"][c]["f1"], 4) for c in reference["class_names"]] == [
        0.8723, 0.8324, 0.8398, 0.3636, 0.9474, 0.9149]
    assert m["n"] == reference["n"] == 339
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                "weighted_precision", "weighted_recall", "weighted_f1"):
        assert round(m[key], 4) == reference[key], key
    for name, published in reference["per_class"].items():
        ours = m["per_class"][name]
        assert ours["support"] == published["support"], name
        for key in ("precision", "recall", "f1"):
            assert round(ours[key], 4) == published[key], (name, key)


def predictions_table():
    return pd.DataFrame({
        "true": [0, 1, 1, 0],
        "pred": [0, 1, 0, 0],
        "prob_1": [0.8, 0.3, 0.6, 0.9],
        "prob_2": [0.2, 0.7, 0.4, 0.1],
    })


def test_calibration_from_probabilities():
    table = predictions_table()
    m = compute_metrics(table["true"].to_numpy(), table["pred"].to_numpy(),
                        table[["prob_1", "prob_2"]].to_numpy(), ["1", "2"], n_boot=0)
    assert m["accuracy"] == 0.75
    assert sum(b["count"] for b in m["reliability"]) == 4
    # confidences 0.8, 0.7, 0.6, 0.9 with the 0.6 one wrong
    assert m["ece"] == pytest.approx((0.2 + 0.3 + 0.6 + 0.1) / 4)


def test_rejects_indices_outside_the_variant():
    with pytest.raises(ValueError, match=r"y_pred holds indices \[5\]"):
        compute_metrics(np.array([0, 1]), np.array([0, 5]), None, ["1", "2"])


# --- per-class F1 intervals and the ordinal view of arm number ------------------------------

SIX = ["1", "2", "3", "4", "5+", "?"]


def test_per_class_f1_intervals_contain_each_estimate():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 3, 600)
    y_pred = np.where(rng.random(600) < 0.75, y_true, rng.integers(0, 3, 600))
    m = compute_metrics(y_true, y_pred, None, ["1", "2", "?"], n_boot=300, seed=1)
    assert list(m["per_class_f1_ci95"]) == ["1", "2", "?"]
    for name, (low, high) in m["per_class_f1_ci95"].items():
        assert low < m["per_class"][name]["f1"] < high
        assert high - low < 0.2
    assert compute_metrics(y_true, y_pred, None, ["1", "2", "?"], n_boot=0)[
        "per_class_f1_ci95"] is None


def test_ordinal_metrics_by_hand_six_classes():
    # (true, predicted) arm classes; the last two have a "can't tell" and are left out
    pairs = [("1", "1"), ("2", "3"), ("3", "3"), ("4", "2"), ("5+", "4"), ("?", "2"), ("3", "?")]
    y_true = np.array([SIX.index(t) for t, _ in pairs])
    y_pred = np.array([SIX.index(p) for _, p in pairs])
    o = compute_metrics(y_true, y_pred, None, SIX, n_boot=0)["ordinal"]
    assert (o["n"], o["excluded_true_cant_tell"], o["excluded_pred_cant_tell"]) == (5, 1, 1)
    assert o["arm_numbers"] == {"1": 1, "2": 2, "3": 3, "4": 4, "5+": 5}
    # arm errors 0, 1, 0, 2, 1
    assert o["within_one"] == pytest.approx(4 / 5)
    assert o["mae_arms"] == pytest.approx(4 / 5)
    # t = 1..5, p = 1,3,3,2,4: sum(wO) = mean(e^2) = 6/5; sum(wE) = var t + var p + (3 - 2.6)^2
    # = 2 + 1.04 + 0.16 = 3.2; kappa = 1 - 1.2/3.2
    assert o["qwk"] == pytest.approx(0.625)
    from sklearn.metrics import cohen_kappa_score
    assert o["qwk"] == pytest.approx(cohen_kappa_score(y_true[:5], y_pred[:5], weights="quadratic"))
    assert o["within_one_ci95"] is None and o["qwk_ci95"] is None


def test_ordinal_metrics_merged_class_is_the_midpoint():
    names = ["1", "2", "3-4", "5+", "?"]  # merge34: "3-4" counts as 3.5 arms
    pairs = [("3-4", "2"), ("2", "2"), ("5+", "3-4"), ("1", "2")]
    o = compute_metrics(np.array([names.index(t) for t, _ in pairs]),
                        np.array([names.index(p) for _, p in pairs]), None, names,
                        n_boot=0)["ordinal"]
    assert o["arm_numbers"]["3-4"] == 3.5
    # errors 1.5, 0, 1.5, 1: a merged class is not within one arm of its neighbours
    assert o["within_one"] == pytest.approx(2 / 4)
    assert o["mae_arms"] == pytest.approx(4 / 4)
    # t = 3.5, 2, 5, 1; p = 2, 2, 3.5, 2: sum(wO) = 11/8, sum(wE) = 95/32
    assert o["qwk"] == pytest.approx(51 / 95)
    merge45 = compute_metrics(np.array([3, 2]), np.array([3, 3]), None,
                              ["1", "2", "3", "4+", "?"], n_boot=0)["ordinal"]
    assert merge45["arm_numbers"]["4+"] == 4.5 and merge45["mae_arms"] == pytest.approx(0.75)


def test_ordinal_metrics_still_apply_to_one_versus_two_arms():
    o = compute_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), None, ["1", "2"],
                        n_boot=0)["ordinal"]
    assert o["within_one"] == 1.0 and o["mae_arms"] == 0.5
    assert o["qwk"] == pytest.approx(0.0)  # accuracy 0.5 = chance: Cohen's kappa 0


def test_ordinal_intervals_follow_the_seed_and_undefined_values_are_none():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 6, 500)
    y_pred = np.clip(y_true + rng.integers(-1, 2, 500), 0, 5)
    first = compute_metrics(y_true, y_pred, None, SIX, n_boot=200, seed=3)["ordinal"]
    again = compute_metrics(y_true, y_pred, None, SIX, n_boot=200, seed=3)["ordinal"]
    assert first == again
    for name in ("within_one", "mae_arms", "qwk"):
        low, high = first[f"{name}_ci95"]
        assert low <= first[name] <= high and high - low < 0.25
    single = compute_metrics(np.array([1, 1]), np.array([1, 1]), None, SIX, n_boot=20)["ordinal"]
    assert single["qwk"] is None and single["qwk_ci95"] is None and single["mae_arms"] == 0.0
    only_unknown = compute_metrics(np.array([5]), np.array([5]), None, SIX, n_boot=5)["ordinal"]
    assert only_unknown["n"] == 0 and only_unknown["within_one"] is None
    assert compute_metrics(np.array([0]), np.array([0]), None, ["a", "b"])["ordinal"] is None
