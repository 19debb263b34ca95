"""The XAI stage of an `xai`-mode experiment: explain chosen validation galaxies, write figures,
and on synthetic data measure where the attribution falls (`spiralarms.xai.attribution`)."""

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from spiralarms import atomic, runtime
from spiralarms.data.images import load_as_seen
from spiralarms.models import model_card
from spiralarms.models.networks import FEATURE_LAYERS
from spiralarms.synthetic.masks import read_masks
from spiralarms.training.experiment import Experiment
from spiralarms.xai import attribution, plots
from spiralarms.xai.maps import (
    SmoothGrad,
    choose_examples,
    explain_experiment,
    gradcam_plus_plus,
    label_predictions,
)

log = logging.getLogger(__name__)

# The layer GradCAM++ reads unless xai.cam_layer says otherwise: the notebook's
# penultimate_layer=-1, the last convolution (docs/method.md, XAI row).
CAM_LAYER = "top_conv"


def run_xai(experiment: str, model_path, predictions_dir, images_dir, settings, xai, out_dir,
            masks=None, threads=None) -> dict:
    """The `xai` rule: explain the validation subset (the one the notebook used), or test when
    val is absent.

    `experiment`: the experiment's name. `masks`: the synthetic dataset's masks.zip, for the
    attribution measure (attribution.csv, attribution_galaxies.csv and xai.json's
    "attribution"); None (or empty) on real data, which skips it. `threads`: TensorFlow's cores
    (`runtime.configure`, before anything runs); None leaves TensorFlow as it is.
    """
    if threads is not None:
        runtime.configure(threads)
    experiment = Experiment.parse(experiment)
    masks = masks or None  # the rule's input is [] on real data
    settings = model_card.preprocessing(model_path, settings)  # an imported model's own sizes
    predictions_dir = Path(predictions_dir)
    subset = "val" if (predictions_dir / "val.parquet").exists() else "test"
    predictions = pd.read_parquet(predictions_dir / f"{subset}.parquet")
    # row i of the examples is image i: only the chosen galaxies are read
    examples = choose_examples(predictions, per_class=xai["per_class"],
                               class_names=list(experiment.variant.class_names))
    examples = examples.reset_index(drop=True)
    images = load_as_seen(images_dir, examples["asset_id"], experiment.model,
                          settings["image_size"], settings["crop_size"])
    model = keras.models.load_model(model_path, safe_mode=True)
    smooth = SmoothGrad(model)  # one linear copy and one trace for the figures and the measure
    cam_layer = xai.get("cam_layer") or CAM_LAYER
    result = explain_experiment(
        model, images, examples, list(experiment.variant.class_names), out_dir,
        layers=FEATURE_LAYERS[experiment.model], samples=xai["smooth_samples"],
        noise=xai["smooth_noise"], batch_size=xai["batch_size"], cam_layer=cam_layer,
        seed=experiment.seed, smooth=smooth,
    )
    result = {"subset": subset, **{k: v for k, v in result.items() if k != "files"},
              "files": [str(f) for f in result.get("files", [])]}
    log.info("%s: GradCAM++ %.3f s/image, SmoothGrad %.3f s/image", experiment.name,
             result["gradcam_s_per_image"], result["smoothgrad_s_per_image"])
    if masks is None:
        log.info("%s: attribution measure skipped: %s (the arm and galaxy masks come with the "
                 "synthetic dataset only)", experiment.name, attribution.NO_MASKS)
        result["attribution"] = {"status": attribution.NO_MASKS}
    else:
        result["attribution"] = measure_attribution(
            experiment, model, predictions, images_dir, masks, settings, xai, out_dir, smooth)
        result["files"] += result["attribution"].pop("files")
    atomic.write_text(Path(out_dir) / "xai.json", json.dumps(result, indent=1, default=str))
    return result


def measure_attribution(experiment, model, predictions, images_dir, masks, settings, xai,
                        out_dir, smooth) -> dict:
    """Energy-based pointing of GradCAM++ and SmoothGrad on up to xai.attribution_per_class
    galaxies per true class, each explained for its true class, against the renderer's arm and
    galaxy masks brought to the model's view (`smooth`: the model's SmoothGrad, which made the
    figures' maps). Writes attribution.csv (per method and class) and
    attribution_galaxies.csv (per galaxy and method); returns xai.json's "attribution"."""
    class_names = list(experiment.variant.class_names)
    galaxies = attribution.choose_galaxies(
        label_predictions(predictions, class_names), xai.get("attribution_per_class", 10))
    images = load_as_seen(images_dir, galaxies["asset_id"], experiment.model,
                          settings["image_size"], settings["crop_size"])
    labels = read_masks(masks, galaxies["asset_id"])
    regions = attribution.model_view_regions(
        np.stack([labels[int(a)] for a in galaxies["asset_id"]]), settings["image_size"],
        settings["crop_size"])
    targets = galaxies["true_index"].to_numpy(int)
    cam_layer = xai.get("cam_layer") or CAM_LAYER
    maps = {
        "gradcam++": gradcam_plus_plus(model, images, targets, layer=cam_layer,
                                       batch_size=xai["batch_size"]),
        "smoothgrad": smooth(
            images, targets, samples=xai["smooth_samples"], noise=xai["smooth_noise"],
            batch_size=xai["batch_size"], seed=experiment.seed),
    }
    table = attribution.galaxy_table(galaxies, maps, regions, class_names)
    summary = attribution.summarise(table, class_names)
    out_dir = Path(out_dir)
    files = [out_dir / attribution.SUMMARY_FILE, out_dir / "attribution_galaxies.csv"]
    for frame, path in ((summary, files[0]), (table, files[1])):
        with atomic.replacing(path) as partial:
            frame.to_csv(partial, index=False, float_format="%.4f", lineterminator="\n")
    files += _plot_first_of_each_class(galaxies, images, regions, maps, table, class_names,
                                       out_dir / "attribution_masks")
    overall = summary["class"].isin([attribution.ALL_CLASSES, attribution.ALL_CORRECT])
    for row in summary[overall].to_dict("records"):
        if row["n_zero_maps"] == row["n"]:
            log.info("%s: %s (%s): all %d maps are zero, no energy to measure (at this input "
                     "size %s may be 1 x 1)", experiment.name, row["method"], row["class"],
                     row["n"], cam_layer)
            continue
        log.info("%s: %s (%s) energy on arms %.3f (area %.3f, lift %.2f), galaxy %.3f (area "
                 "%.3f), sky %.3f (area %.3f) over %d galaxies", experiment.name, row["method"],
                 row["class"], row["arm_share"], row["arm_area"], row["arm_lift"],
                 row["galaxy_share"], row["galaxy_area"], row["sky_share"], row["sky_area"],
                 row["n"])
    return {
        "status": "measured",
        "target": attribution.TARGET,
        "n_galaxies": len(galaxies),
        "cam_layer": cam_layer,
        "image_size": int(settings["image_size"]),
        "crop_size": int(settings["crop_size"]),
        "table": json.loads(summary.to_json(orient="records")),
        "files": [str(f) for f in files],
    }


SHORT = {"gradcam++": "CAM++", "smoothgrad": "SG"}


def _plot_first_of_each_class(galaxies, images, regions, maps, table, class_names, stem):
    """attribution_masks.png/.pdf: the first measured galaxy of each class, with its masks."""
    rows = galaxies.groupby("true_index", sort=True).head(1).index.to_numpy()
    titles = []
    for i in rows:
        shares = table[table["asset_id"] == galaxies.loc[i, "asset_id"]].set_index("method")
        arm = " ".join(f"{SHORT[m]} {shares.loc[m, 'arm_share']:.2f}" for m in maps)
        titles.append(f"true {class_names[int(galaxies.loc[i, 'true_index'])]}, arm area "
                      f"{shares['arm_area'].iloc[0]:.2f}\narm share {arm}")
    return plots.plot_attribution_masks(
        images[rows], {k: v[rows] for k, v in regions.items()},
        {m: v[rows] for m, v in maps.items()}, titles, stem)
