"""Paired comparisons: McNemar's test and the paired bootstrap on small known cases, matching by
dr7objid, galaxies in one table only counted, different class variants judged per galaxy, and
the config check of the `comparisons` key."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_support import known_pair, predictions_table, write_predictions

from spiralarms.config_checks import ConfigError, check_comparisons
from spiralarms.config_layers import load
from spiralarms.data.variants import VARIANTS
from spiralarms.report import comparisons as cmp
from spiralarms.training.experiment import grid

ROOT = Path(__file__).resolve().parents[1]

SIX = list(VARIANTS["6class"].class_names)


# --- McNemar ------------------------------------------------------------------------------------

def test_mcnemar_exact_binomial_by_hand():
    # a right and b wrong on 1 galaxy, a wrong and b right on 6, both right on 3, both wrong on 2
    a = [1] * 1 + [0] * 6 + [1] * 3 + [0] * 2
    b = [0] * 1 + [1] * 6 + [1] * 3 + [0] * 2
    test = cmp.mcnemar(np.array(a, bool), np.array(b, bool))
    assert (test["a_only_correct"], test["b_only_correct"]) == (1, 6)
    # two-sided exact: 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 2 * (1 + 7) / 128 = 0.125
    assert test["p_value"] == pytest.approx(0.125)
    assert test["test"] == "McNemar exact binomial"
    # symmetric in a and b; 5 vs 0 discordant: 2 / 32
    assert cmp.mcnemar(np.array(b, bool), np.array(a, bool))["p_value"] == pytest.approx(0.125)
    assert cmp.mcnemar(np.ones(5, bool), np.zeros(5, bool))["p_value"] == pytest.approx(1 / 16)


def test_mcnemar_chi_squared_with_continuity_correction_for_many_discordant_pairs():
    a = np.array([True] * 10 + [False] * 25 + [True] * 40)
    b = np.array([False] * 10 + [True] * 25 + [True] * 40)
    test = cmp.mcnemar(a, b)
    # (|10 - 25| - 1)^2 / 35 = 5.6; chi2 with 1 dof: p = erfc(sqrt(5.6 / 2))
    assert test["statistic"] == pytest.approx(5.6)
    assert test["p_value"] == pytest.approx(math.erfc(math.sqrt(2.8)))
    assert test["p_value"] == pytest.approx(0.01796, abs=1e-5)
    assert test["test"].startswith("McNemar chi2")


def test_mcnemar_without_discordant_pairs():
    same = np.array([True, False, True])
    assert cmp.mcnemar(same, same) | {"test": ""} == {
        "a_only_correct": 0, "b_only_correct": 0, "statistic": None, "p_value": 1.0, "test": ""}


# --- matching and the paired bootstrap ----------------------------------------------------------

def test_galaxies_are_matched_by_id_and_the_unmatched_counted():
    a = predictions_table([10, 11, 12, 13], [0, 1, 2, 3], [0, 1, 2, 3])
    b = predictions_table([13, 12, 99, 10], [3, 2, 4, 0], [3, 0, 4, 0])  # other order, 11 missing, 99 extra
    merged, counts = cmp.match(a, b)
    assert counts == {"n_matched": 3, "only_a": 1, "only_b": 1}
    assert merged["dr7objid"].tolist() == [10, 12, 13]
    assert merged["pred_b"].tolist() == [0, 0, 3]  # b's prediction of the same galaxy
    rows = {r["metric"]: r for r in cmp.compare({"a": "b0_6class_standard_s1",
                                                "b": "v2m_6class_standard_s1"}, a, b, n_boot=0)}
    assert rows["accuracy"]["n"] == 3 and rows["accuracy"]["n_matched"] == 3
    assert (rows["accuracy"]["only_a"], rows["accuracy"]["only_b"]) == (1, 1)
    assert rows["accuracy"]["a_value"] == 1.0 and rows["accuracy"]["b_value"] == pytest.approx(2 / 3)


def test_galaxies_with_different_labels_are_refused():
    with pytest.raises(ValueError, match=r"galaxies \[7\] have different arm_class"):
        cmp.match(predictions_table([7], [1], [1]), predictions_table([7], [2], [2]))


def test_paired_bootstrap_and_mcnemar_on_a_known_case():
    a, b = known_pair()
    spec = {"a": "b0_6class_standard_s1", "b": "b0_6class_xai_s1"}
    rows = {r["metric"]: r for r in cmp.compare(spec, a, b, n_boot=2000, seed=0)}
    assert list(rows) == ["accuracy", "recall_1", "recall_2", "macro_f1"]
    acc = rows["accuracy"]
    assert (acc["a_value"], acc["b_value"]) == (0.8, 0.4)
    assert acc["difference"] == pytest.approx(0.4)
    assert (acc["a_only_correct"], acc["b_only_correct"]) == (5, 1)
    # exact: 2 * P(X <= 1), X ~ Binomial(6, 1/2) = 2 * 7/64
    assert acc["p_value"] == pytest.approx(14 / 64)
    low, high = acc["ci_low"], acc["ci_high"]
    assert low < 0.4 < high and low >= -1 and high <= 1
    assert rows["recall_1"]["a_value"] == 0.8 and rows["recall_1"]["b_value"] == 0.2
    assert rows["recall_1"]["n"] == 5
    assert rows["recall_2"]["a_value"] == 0.8 and rows["recall_2"]["b_value"] == 0.6
    assert rows["macro_f1"]["p_value"] is None
    # many copies of the same ten galaxies: the interval shrinks around the same difference
    a, b = known_pair(n_copies=40)
    tight = cmp.compare(spec, a, b, n_boot=500, seed=0)[0]
    assert tight["difference"] == pytest.approx(0.4)
    assert tight["ci_high"] - tight["ci_low"] < (high - low) / 3
    assert tight["p_value"] < 1e-6


def test_paired_bootstrap_resamples_the_same_galaxies_for_both():
    # identical predictions: every resample's difference is 0, so the interval is [0, 0]
    a, _ = known_pair()
    rows = cmp.compare({"a": "b0_6class_standard_s1", "b": "v2m_6class_standard_s1"}, a, a,
                       n_boot=300)
    for row in rows:
        assert row["difference"] == 0 and (row["ci_low"], row["ci_high"]) == (0, 0), row["metric"]


# --- different class variants -------------------------------------------------------------------

def merged_variant_case():
    """Four 4-arm galaxies (arm_class 3) and one 5+ (4), in 6class and in merge45."""
    ids = [1, 2, 3, 4, 5]
    arm = [3, 3, 3, 3, 4]
    six = predictions_table(ids, arm, [3, 4, 4, 2, 4], "6class")       # 4, 5+, 5+, 3, 5+
    merged = predictions_table(ids, arm, [3, 3, 3, 2, 3], "merge45")    # 4+, 4+, 4+, 3, 4+
    return six, merged


def test_merged_variant_is_correct_when_its_class_contains_the_original_one():
    six, merged = merged_variant_case()
    spec = {"a": "v2m_merge45_standard_s42", "b": "v2m_6class_standard_s42", "classes": ["4"]}
    rows = {r["metric"]: r for r in cmp.compare(spec, merged, six, n_boot=0)}
    assert list(rows) == ["accuracy", "recall_4"]  # restricted: no macro-F1
    # own judging: merge45's "4+" is right for galaxies 1-3; 6class is right for galaxy 1 only
    assert rows["recall_4"]["a_value"] == 0.75 and rows["recall_4"]["b_value"] == 0.25
    assert rows["accuracy"]["n"] == 4 and rows["accuracy"]["n_matched"] == 5
    assert (rows["recall_4"]["a_only_correct"], rows["recall_4"]["b_only_correct"]) == (2, 0)
    assert rows["recall_4"]["p_value"] == pytest.approx(0.5)  # 2 * (1/2)^2
    # common judging: 4 and 5+ are one class for both, so 6class's 5+ counts too
    common = {r["metric"]: r for r in cmp.compare(spec | {"judge": "common"}, merged, six,
                                                 n_boot=0)}
    assert common["recall_4"]["a_value"] == common["recall_4"]["b_value"] == 0.75
    assert common["recall_4"]["p_value"] == 1.0
    assert "common classes" in common["recall_4"]["comparison"]


def test_common_groups_merge_what_either_variant_merges():
    assert cmp.common_groups(VARIANTS["6class"], VARIANTS["merge45"]) == [0, 1, 2, 3, 3, 4]
    assert cmp.common_groups(VARIANTS["merge34"], VARIANTS["merge45"]) == [0, 1, 2, 2, 2, 3]
    assert cmp.common_groups(VARIANTS["6class"], VARIANTS["select12"]) == [0, 1, 2, 3, 4, 5]


def test_select12_against_6class_counts_the_galaxies_it_drops():
    six = predictions_table([1, 2, 3, 4], [0, 1, 2, 5], [0, 1, 2, 5])
    two = predictions_table([1, 2], [0, 1], [0, 0], "select12")
    rows = cmp.compare({"a": "b0_6class_standard_s1", "b": "b0_select12_standard_s1"}, six, two,
                       n_boot=0)
    assert (rows[0]["n_matched"], rows[0]["only_a"], rows[0]["only_b"]) == (2, 2, 0)
    assert rows[0]["a_value"] == 1.0 and rows[0]["b_value"] == 0.5


# --- the summary table --------------------------------------------------------------------------

def test_run_and_write_comparisons(tmp_path):
    six, merged = merged_variant_case()
    dirs = {"v2m_6class_standard_s42": write_predictions(tmp_path, "v2m_6class_standard_s42", six),
            "v2m_merge45_standard_s42": write_predictions(tmp_path, "v2m_merge45_standard_s42",
                                                          merged)}
    specs = [{"a": "v2m_merge45_standard_s42", "b": "v2m_6class_standard_s42", "classes": ["4"]},
             {"a": "v2m_merge45_standard_s42", "b": "v2m_6class_standard_s42", "subset": "test"}]
    result = cmp.run_comparisons(specs, dirs, n_boot=100)
    assert list(result.columns) == cmp.COLUMNS
    missing = result[result["subset"] == "test"].iloc[0]
    assert missing["n"] == 0 and "test.parquet does not exist" in missing["note"]
    csv, md = cmp.write_comparisons(result, tmp_path / "summary")
    back = pd.read_csv(csv)
    assert back.loc[back["metric"] == "recall_4", "difference"].item() == pytest.approx(0.5)
    text = md.read_text()
    assert "## v2m_merge45_standard_s42 vs v2m_6class_standard_s42 (val, class 4)" in text
    assert "5 galaxies in both; only in a: 0, only in b: 0." in text
    assert "| recall_4 | 4 | 0.750 | 0.250 | +0.500 [" in text
    assert "| 2 / 0 | 0.500 | McNemar exact binomial |" in text
    with pytest.raises(KeyError, match="no predictions folder given for b"):
        cmp.run_comparisons(specs[:1], {"v2m_merge45_standard_s42": dirs[
            "v2m_merge45_standard_s42"]})


def test_no_comparisons_writes_an_explaining_table(tmp_path):
    csv, md = cmp.write_comparisons(cmp.run_comparisons([], {}), tmp_path)
    assert list(pd.read_csv(csv).columns) == cmp.COLUMNS
    assert "No comparisons configured" in md.read_text()


# --- the config check ---------------------------------------------------------------------------

def config(comparisons, subsets=("val", "test")):
    return {"experiments": {"models": ["b0"], "classes": ["6class", "select12"],
                            "modes": ["standard"], "seeds": [1], "extra": ["v2m_6class_xai_s1"]},
            "evaluate": {"subsets": list(subsets)}, "comparisons": comparisons}


def test_config_check_accepts_pairs_of_the_grid():
    check_comparisons(config([{"a": "b0_6class_standard_s1", "b": "v2m_6class_xai_s1",
                               "subset": "test", "classes": ["4"]}]))
    check_comparisons(config([]))
    check_comparisons({k: v for k, v in config([]).items() if k != "comparisons"})


@pytest.mark.parametrize("entry, message", [
    ({"a": "b0_6class_standard_s1", "b": "v2m_6class_standard_s1"},
     r"comparisons\[0\]\.b names experiment 'v2m_6class_standard_s1', which is not in the"),
    ({"a": "b0_6class_standard_s1", "b": "b0_6class_standard_s1"}, r"comparisons\[0\]: a and b"),
    ({"a": "b0_6class_standard_s1", "b": "v2m_6class_xai_s1", "subset": "overflow"},
     r"comparisons\[0\]\.subset is 'overflow' but evaluate\.subsets"),
    ({"a": "b0_6class_standard_s1", "b": "b0_select12_standard_s1", "classes": ["4"]},
     r"comparisons\[0\]\.classes lists '4' but b = 'b0_select12_standard_s1' \(select12\) drops"),
])
def test_config_check_names_the_key(entry, message):
    with pytest.raises(ConfigError, match=message):
        check_comparisons(config([entry]))


SHIPPED = [["config.yaml"], ["config.yaml", "heldout.yaml"], ["demo.yaml"],
           ["../.test/config/tiny.yaml"]]


def shipped(*names):
    """The config of `snakemake --configfile config/<name> ...`."""
    return load([ROOT / "config" / name for name in names])


@pytest.mark.parametrize("names", SHIPPED, ids="+".join)
def test_shipped_comparisons_name_experiments_of_their_grids(names):
    config = shipped(*names)
    assert config["comparisons"], names
    check_comparisons(config)
    in_grid = grid(config["experiments"])
    assert all(pair[k] in in_grid for pair in config["comparisons"] for k in ("a", "b"))


def test_the_real_run_compares_merged_and_six_class_on_four_arm_galaxies():
    assert {"a": "v2m_merge45_standard_s42", "b": "v2m_6class_standard_s42",
            "classes": ["4"]}.items() <= shipped("config.yaml")["comparisons"][1].items()


def test_tiny_test_config_lists_its_own_pairs():
    """.test/config/tiny.yaml's one-model grid refuses the real run's pairs: it lists its own."""
    tiny = shipped("../.test/config/tiny.yaml")
    real = shipped("config.yaml")["comparisons"]
    with pytest.raises(ConfigError, match=r"comparisons\[0\]\.a names experiment .* not in the"):
        check_comparisons(tiny | {"comparisons": real})
    assert tiny["comparisons"] and tiny["comparisons"] != real
    check_comparisons(tiny)
