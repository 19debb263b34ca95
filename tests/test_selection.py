"""The paper's selection on small catalogues in the real file format (tests/fixtures_gz2.py)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_gz2 import (
    ARM_DEBIASED,
    ARM_FLAG,
    DR7OBJID_BASE,
    FEATURES_WF,
    NOT_EDGEON_WF,
    SPIRAL_WF,
    galaxies,
    write_catalog,
    write_jpegs,
    write_mapping,
    write_physical,
)
from sklearn.model_selection import train_test_split

from spiralarms.data.variants import DROPPED, VARIANTS
from spiralarms.gz2.catalog import CatalogError, read_catalog, read_mapping, read_physical
from spiralarms.gz2.selection import (
    STEPS,
    SelectionError,
    check_reconciles,
    physical_properties,
    run_labels,
    select,
)

EVERY_CLASS = [0, 1, 2, 3, 4, 5] * 3  # smallest sample every class survives


def run_select(tmp_path, rows, settings=None, mapping_rows=None, image_exists=None):
    """Write `rows` as real-format files, read them back and select; the report must reconcile."""
    catalog_path = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping_path = write_mapping(rows if mapping_rows is None else mapping_rows,
                                 tmp_path / "gz2_filename_mapping.csv", shuffle_seed=3)
    labels, report = select(read_catalog(catalog_path), read_mapping(mapping_path),
                            image_exists, settings)
    check_reconciles(report)
    return labels, report


def no_exclusions(**counts):
    return {step: counts.get(step, 0) for step in STEPS}


# --- cuts and exclusion reasons -----------------------------------------------------------------

def test_each_cut_excludes_exactly_the_rows_built_to_fail_it(tmp_path):
    rows = galaxies(EVERY_CLASS + [1] * 10)
    spoil = {  # row index -> (column, value, expected step)
        18: (FEATURES_WF, 0.4299, "features_cut"),
        19: (NOT_EDGEON_WF, 0.7149, "not_edgeon_cut"),
        20: (SPIRAL_WF, 0.6189, "spiral_cut"),
        21: ("total_votes", 19, "vote_cut"),
        23: (ARM_FLAG[1], 0, "arm_flag_not_clean"),
        24: (ARM_DEBIASED[4], np.nan, "missing_fractions"),
    }
    for i, (column, value, _) in spoil.items():
        rows.loc[i, column] = value
    # 40 votes * 0.5 reach t01 (20) but * 0.72 only 14.4 reach t02: the chain's last link fails
    rows.loc[22, ["total_votes", FEATURES_WF, NOT_EDGEON_WF]] = [40, 0.5, 0.72]
    # exactly on every threshold passes (the cuts are >=): 40 * 0.5 * 1.0 = 20 votes
    rows.loc[25, ["total_votes", FEATURES_WF, NOT_EDGEON_WF, SPIRAL_WF]] = [100, 0.43, 0.715,
                                                                            0.619]
    rows.loc[26, ["total_votes", FEATURES_WF, NOT_EDGEON_WF]] = [40, 0.5, 1.0]
    # failing two cuts counts under the first one applied only
    rows.loc[27, [SPIRAL_WF, ARM_FLAG[1]]] = [0.1, 0]

    labels, report = run_select(tmp_path, rows)

    expected = no_exclusions(features_cut=1, not_edgeon_cut=1, spiral_cut=2, vote_cut=2,
                             arm_flag_not_clean=1, missing_fractions=1)
    assert report["excluded"] == expected
    excluded = {int(rows.loc[i, "dr7objid"]) for i in [*spoil, 22, 27]}
    assert set(labels["dr7objid"]) == set(rows["dr7objid"]) - excluded
    assert report["selected"] == len(rows) - len(excluded) == len(labels)


def test_duplicates_unmapped_and_missing_images_are_counted_and_reported(tmp_path):
    rows = galaxies(EVERY_CLASS + [1] * 8)
    mapping_rows = rows.copy()
    # catalogue: row 18's dr7objid repeated on row 19 -> both ambiguous
    rows.loc[19, "dr7objid"] = rows.loc[18, "dr7objid"]
    # mapping: row 20 listed twice with different images -> ambiguous
    mapping_rows = pd.concat([mapping_rows, mapping_rows.loc[[20]].assign(asset_id=999_999)])
    # a galaxy outside the catalogue listed twice in the mapping does no harm
    outsider = galaxies([0], start=900)
    mapping_rows = pd.concat([mapping_rows, outsider, outsider])
    # mapping lacks row 21; row 22 has a mapping row but no image file
    mapping_rows = mapping_rows.drop(index=21)
    images = write_jpegs(tmp_path / "images", rows["asset_id"].drop(index=22), size=8)

    labels, report = run_select(tmp_path, rows, mapping_rows=mapping_rows, image_exists=images)

    assert report["excluded"] == no_exclusions(duplicate_id=3, no_mapping=1, image_missing=1)
    assert report["duplicate_ids"] == {
        "catalog_dr7objid": [int(rows.loc[18, "dr7objid"])],
        "mapping_objid": [int(rows.loc[20, "dr7objid"])],
        "mapping_repeats_outside_catalog": 1,
    }
    assert report["missing_image_examples"] == [
        {"dr7objid": int(rows.loc[22, "dr7objid"]), "asset_id": int(rows.loc[22, "asset_id"])}
    ]
    assert report["images_checked"] is True
    assert len(labels) == len(rows) - 5


def test_image_check_accepts_a_callable(tmp_path):
    rows = galaxies(EVERY_CLASS + [2])
    absent = int(rows["asset_id"].iloc[-1])
    labels, report = run_select(tmp_path, rows, image_exists=lambda asset_id: asset_id != absent)
    assert report["excluded"]["image_missing"] == 1
    assert absent not in set(labels["asset_id"])


def test_shuffled_mapping_joins_by_key_not_position(tmp_path):
    rows = galaxies(EVERY_CLASS)
    rows["asset_id"] = 5000 + np.arange(len(rows))[::-1]  # unrelated to row order
    labels, _ = run_select(tmp_path, rows)  # run_select writes the mapping shuffled
    truth = dict(zip(rows["dr7objid"], rows["asset_id"]))
    assert all(truth[d] == a for d, a in zip(labels["dr7objid"], labels["asset_id"]))
    assert list(labels["image"]) == [f"{a}.jpg" for a in labels["asset_id"]]


def test_ids_beyond_float64_precision_survive_exactly(tmp_path):
    rows = galaxies(EVERY_CLASS)
    labels, _ = run_select(tmp_path, rows)
    assert labels["dr7objid"].dtype == np.int64 and labels["specobjid"].dtype == np.int64
    assert set(labels["specobjid"]) == set(rows["specobjid"])  # consecutive, 1 apart at 1.8e18
    assert labels["dr7objid"].min() >= DR7OBJID_BASE > 2**53


# --- labels ---------------------------------------------------------------------------------------

def test_tie_goes_to_the_first_answer_and_rho_is_the_top_fraction(tmp_path):
    rows = galaxies(EVERY_CLASS + [1])
    tied = len(rows) - 1
    rows.loc[tied, ARM_DEBIASED] = [0.1, 0.35, 0.35, 0.1, 0.05, 0.05]  # 2 arms vs 3 arms
    labels, _ = run_select(tmp_path, rows)
    row = labels.set_index("dr7objid").loc[rows.loc[tied, "dr7objid"]]
    assert row["arm_class"] == 1
    assert row["arm_fraction"] == 0.35


def test_unclean_flag_is_kept_when_the_flag_is_not_required(tmp_path):
    rows = galaxies(EVERY_CLASS + [3])
    rows.loc[len(rows) - 1, ARM_FLAG[3]] = 0
    strict, report = run_select(tmp_path, rows)
    loose, _ = run_select(tmp_path, rows, {"require_arm_flag": False})
    assert report["excluded"]["arm_flag_not_clean"] == 1
    assert len(loose) == len(strict) + 1


def test_empty_class_names_the_class_and_the_step_that_emptied_it(tmp_path):
    rows = galaxies(EVERY_CLASS)
    rows.loc[rows.index[::6] + 3, SPIRAL_WF] = 0.2  # every 4-arm galaxy fails the spiral cut
    with pytest.raises(SelectionError, match=r"'4'.*spiral_cut.*spiral_min"):
        run_select(tmp_path, rows)


def test_class_absent_from_the_catalogue_is_an_error(tmp_path):
    rows = galaxies([0, 1, 2, 3, 5] * 3)
    with pytest.raises(SelectionError, match=r"'5\+'.*no catalogue row"):
        run_select(tmp_path, rows)


# --- cap and split ------------------------------------------------------------------------------

def test_legacy_cap_keeps_the_lowest_specobjids(tmp_path):
    rows = galaxies(EVERY_CLASS + [1] * 10).sample(frac=1.0, random_state=0)  # file order random
    labels, report = run_select(tmp_path, rows, {"cap": 5})
    two_arm = rows.loc[rows[ARM_FLAG[1]] == 1, "specobjid"].sort_values()
    kept = labels.loc[(labels["arm_class"] == 1) & (labels["subset"] != "overflow"), "specobjid"]
    assert sorted(kept) == list(two_arm.iloc[:5])
    assert report["overflow_per_class"] == [0, 8, 0, 0, 0, 0]
    assert report["capped_per_class"] == [3, 5, 3, 3, 3, 3]


def test_random_cap_is_reproducible_by_seed_and_differs_across_seeds(tmp_path):
    rows = galaxies(EVERY_CLASS + [1] * 30)

    def kept(seed):
        labels, _ = run_select(tmp_path, rows, {"cap": 10, "cap_order": "random", "seed": seed})
        return set(labels.loc[labels["subset"] != "overflow", "dr7objid"])

    assert kept(1) == kept(1)
    assert kept(1) != kept(2)
    legacy, _ = run_select(tmp_path, rows, {"cap": 10})
    assert kept(1) != set(legacy.loc[legacy["subset"] != "overflow", "dr7objid"])


def notebook_like_sample():
    """Class sizes of the notebook's capped set: [165, 300, 298, 28, 31, 300] (+ overflow)."""
    sizes = [165, 330, 298, 28, 31, 305]
    classes = np.repeat(np.arange(6), sizes)
    return galaxies(np.random.default_rng(0).permutation(classes))


def test_split_sizes_follow_sklearn_rounding_like_the_notebook(tmp_path):
    rows = notebook_like_sample()
    _, report = run_select(tmp_path, rows)
    per_subset = report["per_subset_per_class"]
    assert report["capped_per_class"] == [165, 300, 298, 28, 31, 300]
    assert per_subset["train"] == [115, 210, 208, 19, 21, 210]
    assert per_subset["val"] == [50, 90, 90, 9, 10, 90]
    assert per_subset["test"] == [0] * 6
    assert report["overflow_per_class"] == [0, 30, 0, 0, 0, 5]


def notebook_split(rows):
    """The notebook's frames: per class sklearn's split of the first 300 by specobjid, concatenated."""
    parts = {"train": [], "val": []}
    for j in range(6):
        capped = rows.loc[rows[ARM_FLAG[j]] == 1, "dr7objid"].sort_values().to_numpy()[:300]
        train, val = train_test_split(capped, test_size=0.3, random_state=42, shuffle=True)
        parts["train"].append(train)
        parts["val"].append(val)
    return {name: np.concatenate(p) for name, p in parts.items()}


def test_split_membership_and_order_equal_sklearn_on_specobjid_order(tmp_path):
    rows = notebook_like_sample()
    labels, _ = run_select(tmp_path, rows, {"shuffle_once": False})
    for name, expected in notebook_split(rows).items():
        assert list(labels.loc[labels["subset"] == name, "dr7objid"]) == list(expected)


def test_shuffle_once_is_the_notebooks_df_sample_of_train_and_val(tmp_path):
    rows = notebook_like_sample()
    labels, _ = run_select(tmp_path, rows)
    for name, expected in notebook_split(rows).items():
        frame = pd.DataFrame({"dr7objid": expected}).sample(frac=1, random_state=42)
        got = labels.loc[labels["subset"] == name]
        assert list(got["dr7objid"]) == list(frame["dr7objid"])
        # mixed from the first rows on: the first 16 (one notebook batch) hold several classes
        assert got["arm_class"].iloc[:16].nunique() >= 3


def test_held_out_test_subset_is_stratified_and_disjoint(tmp_path):
    rows = notebook_like_sample()
    labels, report = run_select(tmp_path, rows, {"test_fraction": 0.15})
    capped = np.array(report["capped_per_class"])
    per_subset = {k: np.array(v) for k, v in report["per_subset_per_class"].items()}
    assert list(per_subset["test"]) == list(np.ceil(0.15 * capped).astype(int))
    assert list(per_subset["val"]) == list(np.ceil(0.3 * capped).astype(int))
    assert list(per_subset["train"] + per_subset["val"] + per_subset["test"]) == list(capped)
    assert labels["dr7objid"].is_unique


def test_class_too_small_to_split_names_the_class(tmp_path):
    rows = galaxies([0, 1, 2, 3, 5] * 3 + [4])
    with pytest.raises(SelectionError, match=r"'5\+' has 1 galaxies"):
        run_select(tmp_path, rows)


def test_labels_are_grouped_by_subset_then_class_without_shuffle_once(tmp_path):
    labels, _ = run_select(tmp_path, notebook_like_sample(), {"shuffle_once": False})
    subset_rank = labels["subset"].map({"train": 0, "val": 1, "test": 2, "overflow": 3})
    key = subset_rank.to_numpy() * 10 + labels["arm_class"].to_numpy()
    assert (np.diff(key) >= 0).all()


def test_labels_are_grouped_by_subset_with_shuffle_once(tmp_path):
    labels, _ = run_select(tmp_path, notebook_like_sample())
    subset_rank = labels["subset"].map({"train": 0, "val": 1, "test": 2, "overflow": 3})
    assert (np.diff(subset_rank.to_numpy()) >= 0).all()
    overflow = labels[labels["subset"] == "overflow"]
    assert (np.diff(overflow["arm_class"].to_numpy()) >= 0).all()  # overflow is not permuted


# --- reading, reconciling, writing ----------------------------------------------------------------

def test_missing_column_error_names_the_column_and_the_file(tmp_path):
    rows = galaxies(EVERY_CLASS)
    path = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    frame = pd.read_csv(path).drop(columns=[SPIRAL_WF])
    frame.to_csv(path, index=False, compression="gzip")
    with pytest.raises(CatalogError, match=rf"{path}.*{SPIRAL_WF}"):
        read_catalog(path)


def test_mapping_without_asset_id_names_the_column(tmp_path):
    path = tmp_path / "gz2_filename_mapping.csv"
    path.write_text("objid,sample\n1,original\n")
    with pytest.raises(CatalogError, match=r"gz2_filename_mapping.csv.*asset_id"):
        read_mapping(path)


def test_id_written_as_a_float_is_an_error_not_a_rounding(tmp_path):
    path = tmp_path / "gz2_filename_mapping.csv"
    path.write_text("objid,sample,asset_id\n5.8772298174136e+17,original,1\n")
    with pytest.raises(CatalogError, match=r"gz2_filename_mapping.csv.*objid"):
        read_mapping(path)


def test_check_reconciles_detects_a_lost_galaxy(tmp_path):
    _, report = run_select(tmp_path, galaxies(EVERY_CLASS))
    report["excluded"]["vote_cut"] += 1
    with pytest.raises(SelectionError, match="rows_read"):
        check_reconciles(report)


def test_unknown_setting_is_rejected_by_name(tmp_path):
    with pytest.raises(SelectionError, match="spiral_minimum"):
        run_select(tmp_path, galaxies(EVERY_CLASS), {"spiral_minimum": 0.5})


def test_same_inputs_write_identical_files(tmp_path):
    rows = notebook_like_sample()
    catalog = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping = write_mapping(rows, tmp_path / "gz2_filename_mapping.csv", shuffle_seed=1)
    outputs = []
    for run in ("a", "b"):
        parquet, report = tmp_path / run / "labels.parquet", tmp_path / run / "report.json"
        run_labels(catalog, mapping, None, {"cap_order": "random"}, parquet, report)
        outputs.append((parquet.read_bytes(), report.read_bytes()))
    assert outputs[0] == outputs[1]
    written = pd.read_parquet(tmp_path / "a" / "labels.parquet")
    assert list(written.columns[:5]) == ["dr7objid", "specobjid", "asset_id", "arm_class",
                                         "arm_fraction"]
    assert written["dr7objid"].dtype == np.int64


def test_run_labels_joins_physical_properties_by_specobjid(tmp_path):
    rows = galaxies(EVERY_CLASS)
    catalog = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping = write_mapping(rows, tmp_path / "gz2_filename_mapping.csv")
    # the table covers every galaxy but the first, in reverse order (a positional join would fail)
    covered = rows.iloc[1:].iloc[::-1]
    physical = write_physical(covered, tmp_path / "stellar mass_SFR.csv",
                              log_mass=10 + covered["asset_id"] / 1e4, sfr=covered["asset_id"] / 1e3)
    labels, report = run_labels(catalog, mapping, None, {}, tmp_path / "l.parquet",
                                tmp_path / "r.json", physical_path=physical)
    assert report["physical"] == {"physical_rows": len(rows) - 1, "matched": len(rows) - 1,
                                  "unmatched": 1}
    has_mass = labels.dropna(subset=["log_mass"])
    assert np.allclose(has_mass["log_mass"], 10 + has_mass["asset_id"] / 1e4)
    assert np.allclose(has_mass["sfr"], has_mass["asset_id"] / 1e3)
    assert labels.loc[labels["asset_id"] == rows.loc[0, "asset_id"], "log_mass"].isna().all()


def test_repeated_spectrum_in_physical_table_is_an_error(tmp_path):
    rows = galaxies([1, 1])
    path = write_physical(pd.concat([rows, rows]), tmp_path / "p.csv", log_mass=10.0, sfr=0.0)
    labels = rows.assign(arm_class=1)
    with pytest.raises(CatalogError, match="more than once"):
        physical_properties(labels, read_physical(path))


# --- class variants -------------------------------------------------------------------------------

def test_variants_relabel_and_drop_classes(tmp_path):
    labels, _ = run_select(tmp_path, galaxies(EVERY_CLASS))
    arm_class = labels["arm_class"].to_numpy()
    merged = VARIANTS["merge45"].targets(arm_class)
    assert len(merged) == len(labels)
    assert dict(zip(arm_class, merged)) == {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4}
    pair = VARIANTS["select12"].targets(arm_class)
    kept = pair != DROPPED
    assert set(arm_class[kept]) == {0, 1} and list(pair[kept]) == list(arm_class[kept])
    assert set(arm_class[~kept]) == {2, 3, 4, 5}
    assert list(VARIANTS["select12"].counts(arm_class)) == [kept[arm_class == 0].sum(),
                                                           kept[arm_class == 1].sum()]


# --- the notebook's numbers on the real catalogue ---------------------------------------------

REAL_DATA = os.environ.get("SPIRALARMS_REAL_DATA")


@pytest.mark.skipif(not REAL_DATA, reason="set SPIRALARMS_REAL_DATA to a folder with "
                    "zoo2MainSpecz.csv.gz and gz2_filename_mapping.csv to check the notebook counts")
def test_real_catalogue_reproduces_the_notebook_counts():
    folder = Path(REAL_DATA)
    catalog_path = next((folder / n for n in ("zoo2MainSpecz.csv.gz", "zoo2MainSpecz.csv")
                         if (folder / n).exists()), folder / "zoo2MainSpecz.csv.gz")
    labels, report = select(read_catalog(catalog_path),
                            read_mapping(folder / "gz2_filename_mapping.csv"), None, {})
    check_reconciles(report)
    assert report["rows_read"] == 243_500
    assert report["selected_per_class"] == [165, 10677, 298, 28, 31, 519]
    assert report["capped_per_class"] == [165, 300, 298, 28, 31, 300]
    assert report["per_subset_per_class"]["train"] == [115, 210, 208, 19, 21, 210]
    assert report["per_subset_per_class"]["val"] == [50, 90, 90, 9, 10, 90]
    assert report["overflow_per_class"] == [0, 10377, 0, 0, 0, 219]
    assert report["selected"] == 11_718 and (labels["subset"] == "overflow").sum() == 10_596
