"""Labels against votes in the summary (spiralarms.report.targets) on a small known case."""

import numpy as np
import pandas as pd
import pytest

from spiralarms.evaluation.metrics import expected_calibration_error, reliability_bins
from spiralarms.report.targets import (
    calibration_error,
    compare_targets,
    run_target_comparisons,
    targets_markdown,
)

PAIR = ("b0_select12_standard_s42", "b0_select12_standard_votes_s42")


def frame(pred, prob_1, volunteer_1=(0.9, 0.2, 0.6, 0.1, 0.5, np.nan)):
    """Six galaxies of select12 (classes 1 and 2 arms); labels 0, 1, 0, 1, 0, 1."""
    prob_1, volunteer_1 = np.asarray(prob_1, float), np.asarray(volunteer_1, float)
    return pd.DataFrame({
        "dr7objid": np.arange(10, 16), "arm_class": [0, 1, 0, 1, 0, 1], "true": [0, 1, 0, 1, 0, 1],
        "pred": pred, "prob_1": prob_1, "prob_2": 1 - prob_1,
        "volunteer_votes": [10, 10, 10, 10, 10, 0],
        "volunteer_1": volunteer_1, "volunteer_2": 1 - volunteer_1,
    })


LABELS = frame([0, 1, 0, 1, 0, 0], [0.8, 0.3, 0.7, 0.4, 0.9, 0.6])  # 5 of 6 right
VOTES = frame([0, 0, 1, 1, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.45, 0.7])  # 2 of 6 right
TRUTH = pd.DataFrame({"dr7objid": np.arange(10, 16), "arm_class": [0, 0, 1, 1, 2, -1]})


def by_metric(rows):
    return {(r["judged"], r["metric"]): r for r in rows}


def test_three_way_comparison_on_a_known_case():
    rows = by_metric(compare_targets(PAIR, (LABELS, VOTES), "test", TRUTH, n_boot=0))
    accuracy = rows[("volunteers' label", "accuracy")]
    assert (accuracy["labels_value"], accuracy["votes_value"]) == (5 / 6, 2 / 6)
    # discordant: labels alone right on galaxies 11, 12, 14 (3), votes alone on none
    assert accuracy["p_value"] == pytest.approx(0.25)  # exact binomial, 3 of 3
    mae = rows[("volunteers' fractions", "fraction MAE")]
    # per galaxy |p - v| is the same for both classes; galaxy 15 has no votes
    labels_error = np.abs([0.8 - 0.9, 0.3 - 0.2, 0.7 - 0.6, 0.4 - 0.1, 0.9 - 0.5])
    votes_error = np.abs([0.9 - 0.9, 0.6 - 0.2, 0.4 - 0.6, 0.2 - 0.1, 0.45 - 0.5])
    assert mae["n"] == 5
    assert mae["labels_value"] == pytest.approx(labels_error.mean())
    assert mae["votes_value"] == pytest.approx(votes_error.mean())
    assert rows[("volunteers' fractions", "fraction MAE 2")]["votes_value"] == \
        pytest.approx(votes_error.mean())
    ece = rows[("volunteers' label", "ECE")]
    for k, f in ((0, LABELS), (1, VOTES)):
        proba = f[["prob_1", "prob_2"]].to_numpy()
        expected = expected_calibration_error(reliability_bins(f["true"], f["pred"], proba))
        assert [ece["labels_value"], ece["votes_value"]][k] == pytest.approx(expected)
    truth = rows[("renderer's truth", "accuracy")]
    # truth targets 0, 0, 1, 1, -, - (3-arm and non-spiral: select12 cannot name them):
    # labels right on 10 and 13, votes on 10, 11, 12 and 13
    assert truth["labels_value"] == pytest.approx(2 / 6)
    assert truth["votes_value"] == pytest.approx(4 / 6)
    assert truth["p_value"] == pytest.approx(0.5)  # exact binomial, 0 of 2 discordant
    assert "2 galaxies" in truth["note"]


def test_intervals_cover_the_point_and_vanish_for_identical_models():
    rows = compare_targets(PAIR, (LABELS, VOTES), "test", TRUTH, n_boot=300, seed=1)
    for row in rows:
        assert row["ci_low"] <= row["difference"] + 1e-12 <= row["ci_high"] + 2e-12
    same = compare_targets(PAIR, (LABELS, LABELS), "test", None, n_boot=300, seed=1)
    for row in same:
        assert row["difference"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
    assert not any(r["judged"] == "renderer's truth" for r in same)


def test_calibration_error_per_resample_equals_the_metrics_one():
    rng = np.random.default_rng(0)
    confidence, correct = rng.uniform(0.5, 1, 50), rng.uniform(0, 1, 50) < 0.7
    index = rng.integers(0, 50, (4, 50))
    for row, idx in zip(calibration_error(confidence, correct, index=index), index):
        proba = np.stack([confidence[idx], 1 - confidence[idx]], axis=1)
        bins = reliability_bins(np.where(correct[idx], 0, 1), np.zeros(50, int), proba)
        assert row == pytest.approx(expected_calibration_error(bins))


def test_tables_from_prediction_folders(tmp_path):
    for name, f in zip(PAIR, (LABELS, VOTES)):
        (tmp_path / name).mkdir()
        f.to_parquet(tmp_path / name / "test.parquet")
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    table = run_target_comparisons([PAIR], {n: tmp_path / n for n in PAIR}, ["val", "test"],
                                   tmp_path / "truth.csv", n_boot=50)
    assert set(table["subset"]) == {"test"}  # no val predictions: skipped
    text = targets_markdown(table)
    assert "renderer's truth" in text and "fraction MAE" in text and "[" in text
