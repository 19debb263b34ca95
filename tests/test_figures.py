"""Evaluation figures: what each one draws (cells, row normalisation, curves, bins), read back
from the matplotlib figure that was saved, and that the PNG and PDF are written."""

import logging

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from spiralarms.evaluation import figures
from spiralarms.evaluation.metrics import compute_metrics
from spiralarms.report.tables import MISSING  # an empty row reads as a missing table cell

CLASSES = ["1", "2", "?"]


def assert_written(stem):
    for suffix in (".png", ".pdf"):
        path = stem.with_name(stem.name + suffix)
        assert path.is_file() and path.stat().st_size > 1000, path


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved during a test, in order (each once, however many files it wrote)."""
    figures_saved = []
    savefig = Figure.savefig

    def recording(fig, *args, **kwargs):
        if not any(f is fig for f in figures_saved):
            figures_saved.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    return figures_saved


def cell_texts(ax) -> dict:
    """{(row, col): text} of the annotations placed on integer cell centres."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts}


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


def test_confusion_figure_shows_the_counts_in_each_cell(tmp_path, drawn):
    cm = [[5, 1, 0], [0, 0, 0], [2, 0, 7]]
    paths = figures.plot_confusion(cm, figures.axis_labels(CLASSES), tmp_path / "cm")
    assert [p.name for p in paths] == ["cm.png", "cm.pdf"]
    assert_written(tmp_path / "cm")
    (fig,) = drawn
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)  # rows true, columns predicted
    assert ax.images[0].norm.vmax == 7
    assert cell_texts(ax) == {(r, c): str(v) for r, row in enumerate(cm) for c, v in enumerate(row)}
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")


def test_normalised_confusion_divides_each_row_by_its_support(tmp_path, drawn):
    cm = [[5, 1, 0], [0, 0, 0], [2, 0, 7]]
    figures.plot_confusion(cm, figures.axis_labels(CLASSES), tmp_path / "cm", normalize=True)
    assert_written(tmp_path / "cm")
    (fig,) = drawn
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    expected = [[5 / 6, 1 / 6, 0], [0, 0, 0], [2 / 9, 0, 7 / 9]]  # the empty row is drawn blank
    np.testing.assert_allclose(shown, expected)
    np.testing.assert_allclose(shown[[0, 2]].sum(axis=1), 1.0)
    assert ax.images[0].norm.vmax == 1
    assert cell_texts(ax) == {(0, 0): "0.83", (0, 1): "0.17", (0, 2): "0.00",
                              (1, 0): MISSING, (1, 1): MISSING, (1, 2): MISSING,
                              (2, 0): "0.22", (2, 1): "0.00", (2, 2): "0.78"}
    # the support each row was divided by stays visible
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert [r.splitlines()[-1] for r in rows] == ["(n=6)", "(n=0)", "(n=9)"]
    assert "row-normalised" in ax.get_title()


def test_confusion_rejects_labels_of_another_variant(tmp_path):
    with pytest.raises(ValueError, match="does not match 2 labels"):
        figures.plot_confusion(np.eye(3), ["1", "2"], tmp_path / "cm")


def test_history_curves_show_each_epoch_and_mark_the_best(tmp_path, drawn, caplog):
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.5],
                            "accuracy": [0.5, 0.7, 0.8], "val_loss": [0.9, 0.7, 0.8],
                            "val_accuracy": [0.6, 0.75, 0.7]})
    figures.plot_history(history, tmp_path / "history")
    assert_written(tmp_path / "history")
    assert figures._best_epoch(history, np.array([1, 2, 3]), "val_accuracy") == 2
    (fig,) = drawn
    loss_ax, accuracy_ax = fig.axes
    for ax, quantity in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
        curves = {line.get_label(): line for line in ax.get_lines()}
        assert set(curves) == {quantity, f"val {quantity}", "best val accuracy (epoch 2)"}
        for column in (quantity, f"val_{quantity}"):
            line = curves[column.replace("_", " ")]
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_array_equal(line.get_ydata(), history[column])
        np.testing.assert_array_equal(curves["best val accuracy (epoch 2)"].get_xdata(), [2, 2])
        assert ax.get_ylabel() == quantity

    with caplog.at_level(logging.INFO):
        figures.plot_history(history[["epoch", "loss", "accuracy"]], tmp_path / "train_only")
    assert_written(tmp_path / "train_only")
    assert "no best epoch marked" in caplog.text
    assert [[line.get_label() for line in ax.get_lines()] for ax in drawn[1].axes] == [
        ["loss"], ["accuracy"]]


@pytest.mark.parametrize("form", ["metrics", "bins"])
def test_reliability_diagram_draws_each_bin(tmp_path, drawn, form):
    table = predictions()
    proba = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    metrics = compute_metrics(table["true"].to_numpy(), table["pred"].to_numpy(), proba, CLASSES,
                              n_boot=0)
    source = {"metrics": metrics, "bins": metrics["reliability"]}[form]
    figures.plot_reliability(source, tmp_path / "reliability")
    assert_written(tmp_path / "reliability")
    (fig,) = drawn
    top, bottom = fig.axes
    # By hand: eight galaxies at confidence 0.8, five of them right; galaxy 103 at 0.9, wrong.
    bars = {round(b.get_x(), 6): b.get_height() for b in top.patches}
    assert bars == {0.8: pytest.approx(5 / 8), 0.9: 0.0}
    assert all(b.get_width() == pytest.approx(0.1) for b in top.patches)
    (points,) = [line for line in top.get_lines() if line.get_label().startswith("(mean")]
    np.testing.assert_allclose(points.get_xdata(), [0.8, 0.9])
    np.testing.assert_allclose(points.get_ydata(), [5 / 8, 0.0])
    assert [b.get_height() for b in bottom.patches] == [0] * 8 + [8, 1]
    ece = (8 * abs(5 / 8 - 0.8) + 1 * abs(0.0 - 0.9)) / 9
    assert top.get_title() == f"Reliability (ECE = {ece:.3f}, N = 9)"


def test_misclassification_sheets_one_per_offdiagonal_cell(tmp_path):
    loaded = []

    def load_image(asset_id):
        loaded.append(asset_id)
        return np.full((8, 8), asset_id % 256, dtype=np.uint8)

    sheets = figures.misclassification_sheets(predictions(), load_image, tmp_path, CLASSES)
    assert sorted(p.name for p in sheets) == [
        "true-1_pred-2.png", "true-2_pred-cant-tell.png", "true-cant-tell_pred-1.png"]
    for sheet in sheets:
        assert sheet.is_file() and sheet.stat().st_size > 1000, sheet
    assert len(list(tmp_path.glob("*.png"))) == 3  # no sheet for correct or empty cells
    assert not list(tmp_path.glob("*.pdf"))  # photographs: PNG only
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



CROP_PROBE = """
import json, sys
from spiralarms.evaluation.experiment_figures import jpeg_loader
crops = [jpeg_loader(sys.argv[1], crop)(asset).tolist() for asset, crop in json.loads(sys.argv[2])]
json.dump({"crops": crops, "tensorflow": "tensorflow" in sys.modules}, sys.stdout)
"""


def test_figures_show_the_models_window_without_importing_tensorflow(tmp_path):
    """The figures job reads its photographs with PIL (no ~8 s TensorFlow import): the window
    of tf.image.central_crop, and pixels within a few grey levels of TensorFlow's decode."""
    import json
    import subprocess
    import sys

    from PIL import Image

    from spiralarms.data import images

    cases = [(424, 224), (424, 200), (425, 224), (300, 500)]  # (frame px, crop_size)
    rng = np.random.default_rng(5)
    for asset, (frame, _) in enumerate(cases):
        y, x = np.mgrid[:frame, :frame]
        smooth = (127 + 100 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None]
                  + rng.normal(0, 3, (frame, frame, 3)))
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8)).save(tmp_path / f"{asset}.jpg")
    requests = [(asset, crop) for asset, (_, crop) in enumerate(cases)]
    done = subprocess.run([sys.executable, "-c", CROP_PROBE, str(tmp_path), json.dumps(requests)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["tensorflow"] is False
    for (asset, crop_size), crop in zip(requests, shown["crops"]):
        seen = np.asarray(images.central_crop(images.read_rgb(tmp_path / f"{asset}.jpg")[0],
                                              crop_size))
        crop = np.array(crop, dtype=np.int16)
        assert crop.shape == seen.shape, (asset, crop_size)
        assert np.abs(crop - seen).max() <= 8, (asset, crop_size)
