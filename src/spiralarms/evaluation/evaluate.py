"""Predictions and metrics of a trained experiment on its held-out subsets."""

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from spiralarms import atomic, runtime
from spiralarms.data import shards
from spiralarms.data.dataset import make_dataset
from spiralarms.evaluation.metrics import compute_metrics
from spiralarms.models import (
    model_card,
    votes,  # noqa: F401 - registers the votes head's layer for load_model
)
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)


def predict(model, files, model_name, variant, settings) -> pd.DataFrame:
    """One row per galaxy: ids, true and predicted target, names and one prob_<name> per class."""
    ds = make_dataset(files, model_name, variant, settings["image_size"], settings["crop_size"],
                      batch_size=64, with_ids=True)
    parts = []
    for images, targets, ids in ds:
        proba = model.predict_on_batch(images)
        parts.append(pd.DataFrame({
            "dr7objid": ids["dr7objid"].numpy(), "asset_id": ids["asset_id"].numpy(),
            "arm_class": ids["arm_class"].numpy(), "arm_fraction": ids["arm_fraction"].numpy(),
            "true": np.argmax(targets, axis=1), "pred": np.argmax(proba, axis=1),
            **{f"prob_{n}": proba[:, i] for i, n in enumerate(variant.class_names)},
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    names = np.array(variant.class_names)
    if len(frame):
        frame.insert(6, "true_name", names[frame["true"]])
        frame.insert(7, "pred_name", names[frame["pred"]])
    return frame


def evaluate_experiment(experiment, model_path, subset_files: dict, settings: dict,
                        metrics_path, predictions_dir, n_boot=1000, physical=None) -> dict:
    """Predict each subset, write predictions/<subset>.parquet and metrics.json.

    The top level of metrics.json repeats the primary subset (test when present, else val — the
    notebook reported validation, which also picked its checkpoint: leak B3).
    """
    settings = model_card.preprocessing(model_path, settings)  # an imported model's own sizes
    training = model_card.read(model_path).get("training", {})
    model = keras.models.load_model(model_path, safe_mode=True)
    variant = experiment.variant
    predictions_dir = Path(predictions_dir)
    predictions_dir.mkdir(parents=True, exist_ok=True)
    subsets, skipped = {}, {}
    for subset, files in subset_files.items():
        if not files:
            skipped[subset] = "the selection produced no galaxies for it"
            log.warning("%s: subset %r skipped: %s", experiment.name, subset, skipped[subset])
            continue
        frame = predict(model, files, experiment.model, variant, settings)
        if not len(frame):
            skipped[subset] = f"none of its galaxies is in a {variant.name} class"
            log.warning("%s: subset %r skipped: %s", experiment.name, subset, skipped[subset])
            continue
        frame.insert(2, "subset", subset)
        if physical is not None:
            frame = frame.merge(physical, on="dr7objid", how="left", validate="one_to_one")
        with atomic.replacing(predictions_dir / f"{subset}.parquet") as partial:
            frame.to_parquet(partial, index=False)
        proba = frame[[f"prob_{n}" for n in variant.class_names]].to_numpy()
        subsets[subset] = {
            **compute_metrics(frame["true"], frame["pred"], proba, list(variant.class_names),
                              n_boot=n_boot, seed=experiment.seed),
            "class_names": list(variant.class_names),
        }
        log.info("%s %s: n=%d accuracy=%.4f macro_f1=%.4f", experiment.name, subset,
                 len(frame), subsets[subset]["accuracy"], subsets[subset]["macro_f1"])
    primary = "test" if "test" in subsets else "val"
    metrics = {"experiment": experiment.name, "model": experiment.model,
               "classes": experiment.classes, "mode": experiment.mode, "seed": experiment.seed,
               "preprocessing": {k: settings[k] for k in model_card.PREPROCESSING},
               "training": training, "subset": primary, **subsets[primary], "subsets": subsets,
               "subsets_skipped": skipped}
    atomic.write_text(metrics_path, json.dumps(metrics, indent=1))
    return metrics


def run_evaluate(experiment_name: str, model_path, shard_dir, labels_path, subsets, settings: dict,
                 metrics_path, predictions_dir, n_boot=1000, threads: int | None = None) -> dict:
    """The `evaluate` rule: evaluate_experiment on the `subsets` shards in `shard_dir`, the
    labels' physical columns (log_mass, sfr: those present) joined to the predictions, TensorFlow
    held to `threads` cores (`runtime.configure`)."""
    runtime.configure(threads)
    labels = pd.read_parquet(labels_path)
    physical = [c for c in ("log_mass", "sfr") if c in labels]
    return evaluate_experiment(
        Experiment.parse(experiment_name),
        model_path,
        shards.subset_files(shard_dir, subsets),
        settings,
        metrics_path,
        predictions_dir,
        n_boot=n_boot,
        physical=labels[["dr7objid", *physical]] if physical else None,
    )
