"""All evaluation figures of one experiment, from its metrics, predictions and history."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import atomic
from spiralarms.data.images import asset_path, read_crop
from spiralarms.evaluation import figures

log = logging.getLogger(__name__)


def jpeg_loader(images_dir, crop_size: int = 224):
    """asset_id -> the central crop of its JPEG (the region the model saw), as uint8 RGB."""
    return lambda asset_id: read_crop(asset_path(images_dir, asset_id), crop_size)


def write_experiment_figures(metrics_path, predictions_dir, history_path, images_dir, out_dir,
                             crop_size: int | None = None) -> list:
    """`crop_size`: of the images shown; by default the one the model saw (metrics.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.loads(Path(metrics_path).read_text())
    if crop_size is None:
        crop_size = metrics["preprocessing"]["crop_size"]
    written = []
    if history_path:  # imported models come without a training history
        written += figures.plot_history(pd.read_csv(history_path), out_dir / "training_curves")
    for subset, m in metrics["subsets"].items():
        labels = figures.axis_labels(m["class_names"])
        cm = np.array(m["confusion_matrix"])
        title = f"{metrics['experiment']} — {subset} (n={m['n']})"
        written += figures.plot_confusion(cm, labels, out_dir / f"confusion_{subset}", title=title)
        written += figures.plot_confusion(cm, labels, out_dir / f"confusion_{subset}_normalised",
                                          normalize=True, title=title)
        written += figures.plot_reliability(m, out_dir / f"reliability_{subset}")
    primary = metrics["subset"]
    predictions = pd.read_parquet(Path(predictions_dir) / f"{primary}.parquet")
    class_names = metrics["class_names"]
    loader = jpeg_loader(images_dir, crop_size)
    written += figures.misclassification_sheets(
        predictions, loader, out_dir / f"misclassified_{primary}", class_names)
    written += figures.misclassification_overview(
        predictions, loader, out_dir / f"misclassified_{primary}_top", class_names)
    mass = figures.mass_histograms(predictions, class_names, out_dir / f"stellar_mass_{primary}")
    if mass is None:
        log.info("no physical properties configured (data.physical): stellar-mass figure skipped")
    else:
        with atomic.replacing(out_dir / f"stellar_mass_medians_{primary}.csv") as partial:
            mass.to_csv(partial, index=False)
    return written
