"""The selection function: accuracy per bin of a physical quantity against the renderer's truth
and against the labels, on constructed predictions whose per-bin accuracies are known."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spiralarms.data.variants import VARIANTS
from spiralarms.report.selection_function import (
    NO_VALUE,
    bins_of,
    collect,
    run_selection_function,
    wilson,
    write_selection_function,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def predictions(label_class, pred_target, variant="6class"):
    """A predictions/test.parquet frame as evaluation.evaluate.predict writes it: the label's
    arm class, its target and the predicted target, one row per galaxy."""
    v = VARIANTS[variant]
    label_class = np.asarray(label_class)
    true = v.targets(label_class)
    pred = np.asarray(pred_target)
    names = np.array(v.class_names)
    proba = np.eye(v.n_classes)[pred]
    frame = pd.DataFrame({"dr7objid": 587_722_981_736_120_347 + np.arange(len(pred)),
                          "asset_id": 1000 + np.arange(len(pred)), "subset": "test",
                          "arm_class": label_class, "arm_fraction": 0.8, "true": true,
                          "pred": pred, "true_name": names[true], "pred_name": names[pred],
                          **{f"prob_{n}": proba[:, i] for i, n in enumerate(v.class_names)}})
    return frame


def truth_table(frame, arm_class, **columns):
    """truth.csv rows for the galaxies of `frame` (in another order, as synthesize writes it)."""
    truth = pd.DataFrame({"asset_id": frame["asset_id"], "dr7objid": frame["dr7objid"],
                          "kind": "2", "arm_class": arm_class, "has_image": 1, **columns})
    return truth.iloc[::-1]


def write_experiment(root, name, frame):
    folder = root / "results" / "experiments" / name / "predictions"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "test.parquet", index=False)
    return folder


def rows_of(table, quantity, experiment=None):
    rows = table[table["quantity"] == quantity]
    if experiment is not None:
        rows = rows[rows["experiment"] == experiment]
    return rows.set_index("bin")


def test_right_for_large_galaxies_wrong_for_small_gives_exactly_that_per_bin(tmp_path):
    n = 20
    r90 = np.arange(1, n + 1, dtype=float)  # two quantile bins: 1-10 and 11-20 arcsec
    label = np.full(n, 1)  # 2 arms, as the renderer drew them
    pred = np.where(r90 > 10, 1, 3)  # right for the large, "4" for the small
    frame = predictions(label, pred)
    folder = write_experiment(tmp_path, "b0_6class_xai_s42", frame)
    table, quantities, _ = collect([folder], truth_table(frame, label, r90_arcsec=r90),
                                   n_bins=2)
    assert [q.column for q in quantities] == ["r90_arcsec"]
    bins = rows_of(table, "r90_arcsec")
    assert list(bins.index) == ["1–10", "11–20"]
    assert bins["n"].tolist() == [10, 10]
    assert bins["accuracy_truth"].tolist() == [0.0, 1.0]
    assert bins["accuracy_label"].tolist() == [0.0, 1.0]
    assert bins["accuracy_truth_n"].tolist() == [0, 10]
    assert bins["value_low"].tolist() == [1, 11] and bins["value_high"].tolist() == [10, 20]
    assert bins["cant_tell"].tolist() == [0.0, 0.0]
    overall = rows_of(table, "all").iloc[0]
    assert overall["n"] == n and overall["accuracy_truth"] == 0.5


def test_truth_and_label_accuracy_differ_where_labels_differ_from_truth(tmp_path):
    # 12 two-armed galaxies; the volunteers called the 4 most inclined "can't tell" and the
    # model followed them: right against the labels, wrong against the truth, called "?".
    n = 12
    inclination = np.linspace(0, 77, n)
    truth_class = np.full(n, 1)
    label = np.where(inclination > 50, 5, 1)
    frame = predictions(label, label)  # the model agrees with every label
    folder = write_experiment(tmp_path, "b0_6class_xai_s42", frame)
    table, _, _ = collect([folder], truth_table(frame, truth_class, inclination_deg=inclination),
                          n_bins=3)
    bins = rows_of(table, "inclination_deg")
    assert bins["n"].tolist() == [4, 4, 4]
    assert bins["accuracy_label"].tolist() == [1.0, 1.0, 1.0]
    assert bins["accuracy_truth"].tolist() == [1.0, 1.0, 0.0]
    assert bins["cant_tell"].tolist() == [0.0, 0.0, 1.0]
    overall = rows_of(table, "all").iloc[0]
    assert overall["accuracy_label"] == 1.0 and overall["accuracy_truth"] == pytest.approx(8 / 12)


def test_counts_per_bin_reconcile_with_the_test_galaxies_for_every_quantity(tmp_path):
    rng = np.random.default_rng(3)
    n = 57
    label = rng.integers(0, 6, n)
    frame = predictions(label, rng.integers(0, 6, n))
    pitch = rng.uniform(10, 35, n)
    pitch[label == 5] = np.nan  # a flocculent disc has no pitch
    truth = truth_table(frame, label, r90_arcsec=rng.lognormal(1.5, 0.5, n),
                        arm_snr=rng.uniform(1, 40, n), psf_arm_spacings=rng.uniform(0.1, 2, n),
                        inclination_deg=rng.uniform(0, 80, n), bar=rng.integers(0, 2, n),
                        pitch_deg=pitch, flocculent=label == 5)
    folder = write_experiment(tmp_path, "b0_6class_xai_s42", frame)
    table, quantities, notes = collect([folder], truth, n_bins=5)
    assert len(quantities) == 7 and notes == []
    for quantity in quantities:
        bins = rows_of(table, quantity.column)
        assert bins["n"].sum() == n, quantity.column
        assert bins["accuracy_truth_n"].sum() == (frame["pred"] == label).sum()
    assert list(rows_of(table, "bar").index) == ["0", "1"]  # one bin per value
    assert rows_of(table, "flocculent").loc["1", "n"] == (label == 5).sum()  # a boolean column
    assert rows_of(table, "pitch_deg").loc[NO_VALUE, "n"] == (label == 5).sum()
    assert len(rows_of(table, "arm_snr")) == 5


def test_a_class_the_variant_drops_is_wrong_against_truth_and_select12_has_no_cant_tell(tmp_path):
    # select12: the volunteers said 1 or 2 arms; two galaxies truly have 3 arms, one is no spiral
    label = np.array([0, 1, 1, 1, 0, 1])
    truth_class = np.array([0, 1, 2, 2, -1, 1])
    frame = predictions(label, VARIANTS["select12"].targets(label), variant="select12")
    folder = write_experiment(tmp_path, "b0_select12_standard_s42", frame)
    table, _, _ = collect([folder], truth_table(frame, truth_class, bar=[0, 0, 0, 1, 1, 1]))
    bar = rows_of(table, "bar")
    assert bar["accuracy_label"].tolist() == [1.0, 1.0]
    assert bar["accuracy_truth_n"].tolist() == [2, 1]
    assert bar["cant_tell"].isna().all()


def test_a_column_truth_lacks_is_left_out_with_a_logged_reason(tmp_path, caplog):
    frame = predictions([1, 1, 2], [1, 1, 2])
    folder = write_experiment(tmp_path, "b0_6class_xai_s42", frame)
    truth = truth_table(frame, [1, 1, 2], pitch_deg=[12.0, 20.0, 30.0])
    with caplog.at_level(logging.WARNING):
        table, quantities, notes = collect([folder], truth)
    assert [q.column for q in quantities] == ["pitch_deg"]
    assert set(table["quantity"]) == {"all", "pitch_deg"}
    assert any("`arm_snr`" in note for note in notes) and "`r90_arcsec`" in caplog.text
    out = tmp_path / "summary"
    truth.to_csv(tmp_path / "truth.csv", index=False)
    write_selection_function([folder], tmp_path / "truth.csv", out / "sf.csv", out / "sf.md",
                             out / "sf.png")
    assert "truth.csv has no values in column `bar`" in (out / "sf.md").read_text()


def test_outputs_are_written_with_the_figure(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 40
    label = rng.integers(0, 6, n)
    truth = None
    folders = []
    for name, variant in (("b0_6class_xai_s42", "6class"), ("b0_merge34_standard_s42",
                                                             "merge34")):
        frame = predictions(label, rng.integers(0, VARIANTS[variant].n_classes, n), variant)
        folders.append(write_experiment(tmp_path, name, frame))
        truth = truth_table(frame, label, r90_arcsec=rng.lognormal(1.5, 0.5, n),
                            bar=rng.integers(0, 2, n), pitch_deg=rng.uniform(10, 30, n))
    empty = tmp_path / "results/experiments/b0_merge45_standard_s42/predictions"
    empty.mkdir(parents=True)  # evaluated without a test subset
    truth.to_csv(tmp_path / "truth.csv", index=False)
    out = tmp_path / "summary"
    table = run_selection_function([*folders, empty], tmp_path / "truth.csv",
                                   out / "selection_function.csv", out / "selection_function.md",
                                   out / "selection_function.png")
    image = Image.open(out / "selection_function.png")
    assert image.size[0] > 800 and image.size[1] > 400
    assert np.asarray(image.convert("L")).std() > 10  # drawn, not blank
    written = pd.read_csv(out / "selection_function.csv")
    assert len(written) == len(table) and set(written["experiment"]) == {
        "b0_6class_xai_s42", "b0_merge34_standard_s42"}
    markdown = (out / "selection_function.md").read_text()
    assert "## b0_merge34_standard_s42" in markdown
    assert "b0_merge45_standard_s42: no test predictions: left out" in markdown
    assert "b0_6class_xai_s42 test n=40: accuracy against truth" in capsys.readouterr().out


def test_galaxies_missing_from_truth_name_the_file(tmp_path):
    frame = predictions([1, 1], [1, 1])
    folder = write_experiment(tmp_path, "b0_6class_xai_s42", frame)
    with pytest.raises(ValueError, match=r"test\.parquet: 1 galaxies are not in truth\.csv"):
        collect([folder], truth_table(frame.iloc[:1], [1]))


def test_wilson_interval_and_binning():
    low, high = wilson(0, 10)
    assert low == pytest.approx(0) and high == pytest.approx(1.96**2 / (10 + 1.96**2), abs=1e-3)
    index, labels = bins_of([3.0, np.nan, 1.0, 2.0, 4.0], n_bins=2)
    assert index.tolist() == [1, -1, 0, 0, 1] and labels == ["1–2", "3–4"]
    # bar strength: unbarred galaxies (0) apart from the weakest bars
    strength = [0, 0, 0, 0, 0, 0.3, 0.35, 0.5, 0.7]
    index, labels = bins_of(strength, n_bins=3, zero_apart=True)
    assert index.tolist() == [0, 0, 0, 0, 0, 1, 1, 2, 2] and labels == ["0", "0.3–0.35", "0.5–0.7"]
    assert bins_of(strength, n_bins=3)[1][0] == "0–0.3"  # quantiles alone mix them


def _rules(config):
    result = subprocess.run([str(BIN / "snakemake"), "--list-rules", "--configfile", config],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_rule_exists_for_synthetic_data_only():
    assert "selection_function" in _rules("config/demo.yaml")
    assert "selection_function" not in _rules("config/config.yaml")
