"""The XAI stage of an `xai`-mode experiment: explain chosen validation galaxies, write figures."""

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from . import model_card
from .dataset import preprocess
from .models import FEATURE_LAYERS
from .xai import choose_examples, explain_experiment

log = logging.getLogger(__name__)


def load_as_seen(images_dir, asset_ids, model_name, settings) -> np.ndarray:
    """The JPEGs preprocessed exactly as in training (crop, resize, colour, scale)."""
    images = []
    for asset_id in asset_ids:
        data = tf.io.read_file(str(Path(images_dir) / f"{int(asset_id)}.jpg"))
        image = tf.io.decode_jpeg(data, channels=3)
        images.append(preprocess(image, model_name, settings["image_size"],
                                 settings["crop_size"]).numpy())
    return np.stack(images)


def run_xai(experiment, model_path, predictions_dir, images_dir, settings, xai, out_dir) -> dict:
    """Explain the validation subset (the one the notebook used), or test when val is absent."""
    settings = model_card.preprocessing(model_path, settings)  # an imported model's own sizes
    predictions_dir = Path(predictions_dir)
    subset = "val" if (predictions_dir / "val.parquet").exists() else "test"
    predictions = pd.read_parquet(predictions_dir / f"{subset}.parquet")
    chosen = choose_examples(predictions, per_class=xai["per_class"],
                             class_names=list(experiment.variant.class_names))
    chosen = predictions.loc[predictions["asset_id"].isin(chosen["asset_id"])].reset_index(drop=True)
    images = load_as_seen(images_dir, chosen["asset_id"], experiment.model, settings)
    model = keras.models.load_model(model_path, safe_mode=True)
    result = explain_experiment(
        model, images, None, chosen, list(experiment.variant.class_names), out_dir,
        layers=FEATURE_LAYERS[experiment.model], samples=xai["smooth_samples"],
        noise=xai["smooth_noise"], batch_size=xai["batch_size"], seed=experiment.seed,
        per_class=xai["per_class"],
    )
    result = {"subset": subset, **{k: v for k, v in result.items() if k != "files"},
              "files": [str(f) for f in result.get("files", [])]}
    log.info("%s: GradCAM++ %.3f s/image, SmoothGrad %.3f s/image", experiment.name,
             result["gradcam_s_per_image"], result["smoothgrad_s_per_image"])
    (Path(out_dir) / "xai.json").write_text(json.dumps(result, indent=1, default=str))
    return result
