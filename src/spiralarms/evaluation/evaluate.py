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
from spiralarms.evaluation.metrics import compute_metrics, vote_fraction_metrics
from spiralarms.gz2.catalog import ARM_COUNT
from spiralarms.models import model_card
from spiralarms.models.votes import ExpectedVoteFraction  # noqa: F401 - load_model needs it
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)


def predict(model, files, model_name, variant, settings) -> pd.DataFrame:
    """One row per galaxy: ids, true and predicted target, names and one prob_<name> per class
    (a votes model's prob_<name> is its expected vote fraction). `true` is the volunteers' label
    in the variant's classes, whatever the experiment learned from."""
    ds = make_dataset(files, model_name, variant, settings["image_size"], settings["crop_size"],
                      batch_size=64, with_ids=True)
    parts = []
    for images, _, ids in ds:
        # train.eager (the smoke runs): the model's own call, without tracing a predict graph
        # (V2M's took ~100 s of its evaluation on a CPU for a few dozen galaxies)
        proba = (np.asarray(model(images, training=False)) if settings.get("eager")
                 else model.predict_on_batch(images))
        arm_class = ids["arm_class"].numpy()
        parts.append(pd.DataFrame({
            "dr7objid": ids["dr7objid"].numpy(), "asset_id": ids["asset_id"].numpy(),
            "arm_class": arm_class, "arm_fraction": ids["arm_fraction"].numpy(),
            "true": variant.targets(arm_class), "pred": np.argmax(proba, axis=1),
            **{f"prob_{n}": proba[:, i] for i, n in enumerate(variant.class_names)},
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    names = np.array(variant.class_names)
    if len(frame):
        frame.insert(6, "true_name", names[frame["true"]])
        frame.insert(7, "pred_name", names[frame["pred"]])
    return frame


def volunteer_columns(frame, votes, variant) -> tuple:
    """(`frame` with the volunteers' votes merged into the variant's classes: `volunteer_votes`
    (their total) and one `volunteer_<name>` fraction per class (NaN without votes), the merged
    counts (n, classes)), joined on dr7objid from `votes` (dr7objid and the t11 count columns)."""
    counts = frame[["dr7objid"]].merge(votes, on="dr7objid", how="left", validate="one_to_one")
    merged = variant.merge_votes(counts[ARM_COUNT].to_numpy(float))
    total = merged.sum(axis=1)
    out = frame.copy()
    out["volunteer_votes"] = total
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(total[:, None] > 0, merged / total[:, None], np.nan)
    for i, name in enumerate(variant.class_names):
        out[f"volunteer_{name}"] = fractions[:, i]
    return out, merged


def evaluate_experiment(experiment, model_path, subset_files: dict, settings: dict,
                        metrics_path, predictions_dir, n_boot=1000, physical=None,
                        votes=None) -> dict:
    """Predict each subset, write predictions/<subset>.parquet and metrics.json.

    `votes` (dr7objid and the six t11 count columns, from vote_labels.parquet): each subset's
    metrics gain `vote_fractions`, the mean absolute error of the predicted fractions against the
    volunteers' vote fractions (issue 20), and its predictions the volunteers' fractions.

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
        if votes is not None:
            frame, vote_counts = volunteer_columns(frame, votes, variant)
        with atomic.replacing(predictions_dir / f"{subset}.parquet") as partial:
            frame.to_parquet(partial, index=False)
        proba = frame[[f"prob_{n}" for n in variant.class_names]].to_numpy()
        subsets[subset] = {
            **compute_metrics(frame["true"], frame["pred"], proba, list(variant.class_names),
                              n_boot=n_boot, seed=experiment.seed),
            "class_names": list(variant.class_names),
        }
        if votes is not None:
            subsets[subset]["vote_fractions"] = vote_fraction_metrics(
                proba, vote_counts, variant.class_names, n_boot=n_boot, seed=experiment.seed)
        log.info("%s %s: n=%d accuracy=%.4f macro_f1=%.4f", experiment.name, subset,
                 len(frame), subsets[subset]["accuracy"], subsets[subset]["macro_f1"])
    primary = "test" if "test" in subsets else "val"
    metrics = {"experiment": experiment.name, "model": experiment.model,
               "classes": experiment.classes, "mode": experiment.mode, "seed": experiment.seed,
               "target": experiment.target,
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
    has_votes = all(c in labels for c in ARM_COUNT)
    return evaluate_experiment(
        Experiment.parse(experiment_name),
        model_path,
        shards.subset_files(shard_dir, subsets),
        settings,
        metrics_path,
        predictions_dir,
        n_boot=n_boot,
        physical=labels[["dr7objid", *physical]] if physical else None,
        votes=labels[["dr7objid", *ARM_COUNT]] if has_votes else None,
    )
