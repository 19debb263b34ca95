import logging

import numpy as np
import pandas as pd
import pytest

from spiralarms.evaluation import figures
from spiralarms.evaluation.metrics import compute_metrics

CLASSES = ["1", "2", "?"]


def assert_written(stem):
    for suffix in (".png", ".pdf"):
        path = stem.with_name(stem.name + suffix)
        assert path.is_file() and path.stat().st_size > 1000, path


def predictions():
    """Nine galaxies: cells (true 1 -> pred 2) x2, (2 -> ?) x1, (? -> 1) x1, the rest correct."""
    table = pd.DataFrame({
        "asset_id": [101, 102, 103, 104, 105, 106, 107, 108, 109],
        "true":     [0, 0, 0, 1, 1, 1, 2, 2, 2],
        "pred":     [0, 1, 1, 1, 1, 2, 2, 2, 0],
        "arm_fraction": np.linspace(0.4, 0.9, 9),
        "log_mass": [10.0, 10.2, np.nan, 9.6, 9.8, 10.4, 10.6, 11.0, 10.8],
        "sfr":      [0.1, 0.3, 0.0, -0.2, 0.0, 0.4, 0.5, 0.9, 0.7],
    })
    proba = np.full((9, 3), 0.1)
    proba[np.arange(9), table["pred"]] = 0.8
    proba[2, 1] = 0.9  # galaxy 103 is the more confident of the two 1 -> 2 mistakes
    proba[2, 0] = 0.0
    for k, name in enumerate(CLASSES):
        table[f"prob_{name}"] = proba[:, k]
    return table


def test_axis_labels_follow_the_variant():
    assert figures.axis_labels(["1", "2", "3-4", "5+", "?"]) == [
        "1 arm", "2 arms", "3-4 arms", "5+ arms", "can't tell"]
    assert figures.axis_labels(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_figure_written_even_with_an_empty_row(tmp_path, normalize):
    cm = [[5, 1, 0], [0, 0, 0], [2, 0, 7]]
    paths = figures.plot_confusion(cm, figures.axis_labels(CLASSES), tmp_path / "cm",
                                   normalize=normalize)
    assert [p.name for p in paths] == ["cm.png", "cm.pdf"]
    assert_written(tmp_path / "cm")


def test_confusion_rejects_labels_of_another_variant(tmp_path):
    with pytest.raises(ValueError, match="does not match 2 labels"):
        figures.plot_confusion(np.eye(3), ["1", "2"], tmp_path / "cm")


def test_history_with_and_without_validation_columns(tmp_path, caplog):
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.5],
                            "accuracy": [0.5, 0.7, 0.8], "val_loss": [0.9, 0.7, 0.8],
                            "val_accuracy": [0.6, 0.75, 0.7]})
    figures.plot_history(history, tmp_path / "history")
    assert_written(tmp_path / "history")
    assert figures._best_epoch(history, np.array([1, 2, 3]), "val_accuracy") == 2
    with caplog.at_level(logging.INFO):
        figures.plot_history(history[["epoch", "loss", "accuracy"]], tmp_path / "train_only")
    assert_written(tmp_path / "train_only")
    assert "no best epoch marked" in caplog.text


@pytest.mark.parametrize("form", ["metrics", "bins"])
def test_reliability_diagram_accepts_each_input_form(tmp_path, form):
    table = predictions()
    proba = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    metrics = compute_metrics(table["true"].to_numpy(), table["pred"].to_numpy(), proba, CLASSES,
                              n_boot=0)
    source = {"metrics": metrics, "bins": metrics["reliability"]}[form]
    figures.plot_reliability(source, tmp_path / "reliability")
    assert_written(tmp_path / "reliability")


def test_misclassification_sheets_one_per_offdiagonal_cell(tmp_path):
    loaded = []

    def load_image(asset_id):
        loaded.append(asset_id)
        return np.full((8, 8), asset_id % 256, dtype=np.uint8)

    sheets = figures.misclassification_sheets(predictions(), load_image, tmp_path, CLASSES)
    assert sorted(p.name for p in sheets) == [
        "true-1_pred-2.png", "true-2_pred-cant-tell.png", "true-cant-tell_pred-1.png"]
    for sheet in sheets:
        assert_written(sheet.with_suffix(""))
    assert len(list(tmp_path.glob("*.png"))) == 3  # no sheet for correct or empty cells
    assert loaded[:2] == [103, 102]  # most confident mistake first


def test_misclassification_sheets_cap_each_cell(tmp_path):
    many = predictions()
    many = many[(many["true"] == 0) & (many["pred"] == 1)]
    many = pd.concat([many] * 5, ignore_index=True)  # ten galaxies in one cell
    loaded = []

    def load_image(asset_id):
        loaded.append(asset_id)
        return np.zeros((8, 8, 3), dtype=float)

    sheets = figures.misclassification_sheets(many, load_image, tmp_path, CLASSES,
                                              max_per_cell=4)
    assert len(sheets) == 1 and len(loaded) == 4


def test_misclassification_overview_caps_at_the_most_confident_mistakes(tmp_path):
    loaded = []

    def load_image(asset_id):
        loaded.append(asset_id)
        return np.zeros((8, 8), dtype=np.uint8)

    (sheet,) = figures.misclassification_overview(predictions(), load_image, tmp_path / "top",
                                                  CLASSES, max_shown=3)
    assert sheet.name == "top.png"
    assert loaded == [103, 102, 106]  # 4 mistakes, the 3 most confident, most confident first
    assert figures.misclassification_overview(
        predictions().assign(pred=lambda t: t["true"]), load_image, tmp_path / "none",
        CLASSES) == []


def test_mass_histograms_and_median_table(tmp_path):
    medians = figures.mass_histograms(predictions(), CLASSES, tmp_path / "mass")
    assert_written(tmp_path / "mass")
    by_true = medians[medians["grouping"] == "true"].set_index("class")
    # true class 1: galaxies 101, 102 (103 has no mass and is left out)
    assert by_true.loc["1", "n"] == 2
    assert by_true.loc["1", "median_log_mass"] == pytest.approx(10.1)
    assert by_true.loc["1", "median_sfr"] == pytest.approx(0.2)
    by_pred = medians[medians["grouping"] == "pred"].set_index("class")
    # predicted 2: galaxies 102, 104, 105 (103 dropped)
    assert by_pred.loc["2", "n"] == 3
    assert by_pred.loc["2", "median_log_mass"] == pytest.approx(9.8)


def test_mass_histograms_skipped_without_masses(tmp_path, caplog):
    table = predictions()
    with caplog.at_level(logging.INFO):
        assert figures.mass_histograms(table.drop(columns="log_mass"), CLASSES,
                                       tmp_path / "a") is None
        assert figures.mass_histograms(table.assign(log_mass=np.nan), CLASSES,
                                       tmp_path / "b") is None
    assert "no log_mass values" in caplog.text
    assert not list(tmp_path.iterdir())
