"""Where attribution falls: an energy-based pointing measure against the renderer's masks.

On the synthetic data the renderer knows, per galaxy, which pixels of the 424 frame are arm and
which are galaxy (`spiralarms.synthetic.render.galaxy_mask`, stored in the dataset's `masks.zip`). This
module brings those masks to the model's view and measures how much of an attribution map's
energy falls inside them (docs/xai-attribution.md):

- geometry: each binary mask goes through `images.preprocess` itself, the function that turns
  the JPEG into the model's input (central crop of `crop_size` of the 424 frame, antialiased
  resize to `image_size`), so a model pixel holds the fraction of its footprint that is arm
  (galaxy): a soft mask in [0, 1] on the attribution map's grid;
- energy share in a mask (Score-CAM's "energy-based pointing game", Wang et al. 2020):
  sum(max(map, 0) * mask) / sum(max(map, 0)), on the [0, 1] maps the figures show; undefined
  (NaN) for an all-zero map;
- area share (the chance level: a map spread evenly over the view scores it): mean(mask);
- sky = 1 - galaxy, for shares and areas alike.

A map beats the chance level in a region when its energy share there exceeds the region's area
share; `lift` is their ratio (mean share / mean area over the galaxies of a class).

The table over experiments (the `xai_summary` rule) is `spiralarms.report.attribution`.
"""

import numpy as np
import pandas as pd

from spiralarms.synthetic.render import MASK_ARM, MASK_GALAXY

REGIONS = ("arm", "galaxy", "sky")
METHODS = ("gradcam++", "smoothgrad")
NO_MASKS = "no masks (real data)"
ALL_CLASSES = "all"
# All classes, correctly classified galaxies only: the row issue 18 holds to an arm lift of 1.5
# (a map may rightly look elsewhere when the model is wrong).
ALL_CORRECT = "all correct"
# The explained class of every galaxy in the measure: its true class (Score-CAM's protocol:
# the map of the ground-truth category against that object's region).
TARGET = "true class"


def binary_masks(labels) -> dict:
    """{'arm', 'galaxy'}: (N, H, W) bool masks from (N, H, W) mask labels (0 sky, 1 galaxy,
    2 arm); arms lie within the galaxy."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3:
        raise ValueError(f"mask labels must be (N, H, W) or (H, W), got shape {labels.shape}")
    return {"arm": labels == MASK_ARM, "galaxy": labels >= MASK_GALAXY}


def mask_view(masks, image_size, crop_size) -> np.ndarray:
    """(N, H, W) bool masks in the 424 frame -> (N, image_size, image_size) float32 in [0, 1]:
    the masks cropped and resized by `images.preprocess`, exactly as the images are.

    A mask enters as a 0/255 uint8 image; preprocess's greyscale branch (b0: channel mean in
    [0, 1]) returns per model pixel the share of its footprint inside the mask.
    """
    from spiralarms.data import images  # TensorFlow: imported only where masks are measured

    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    views = []
    for start in range(0, len(masks), 64):  # bounded memory: 64 frames of float32 at a time
        frames = (masks[start:start + 64].astype(np.uint8) * np.uint8(255))[..., None]
        views.append(images.model_view(frames, "b0", image_size, crop_size))
    if not views:
        return np.zeros((0, image_size, image_size), np.float32)
    return np.clip(np.concatenate(views), 0.0, 1.0).astype(np.float32)


def model_view_regions(labels, image_size, crop_size) -> dict:
    """{'arm', 'galaxy'}: soft masks (N, image_size, image_size) of mask labels in the frame."""
    return {region: mask_view(mask, image_size, crop_size)
            for region, mask in binary_masks(labels).items()}


def energy_share(maps, masks) -> np.ndarray:
    """Per map, the share of its non-negative energy inside the (soft) mask: (N,) in [0, 1],
    NaN for a map with no positive value. maps and masks: (N, H, W) on the same grid."""
    maps = np.clip(np.asarray(maps, dtype=np.float64), 0.0, None)
    masks = np.asarray(masks, dtype=np.float64)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must have the same shape: "
                         "bring the masks to the maps' grid with mask_view first")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.full(len(maps), np.nan), where=total > 0)


def area_share(masks) -> np.ndarray:
    """Per mask, the share of the view it covers (the chance level of `energy_share`)."""
    masks = np.asarray(masks, dtype=np.float64)
    return masks.mean(axis=(-2, -1)).reshape(-1)


def pointing(maps, regions) -> pd.DataFrame:
    """Per map: <region>_share and <region>_area for arm, galaxy and sky, and zero_map.

    `regions` is model_view_regions' dict on the maps' grid."""
    frame = {}
    for region in ("arm", "galaxy"):
        frame[f"{region}_share"] = energy_share(maps, regions[region])
        frame[f"{region}_area"] = area_share(regions[region])
    frame["sky_share"] = 1.0 - frame["galaxy_share"]
    frame["sky_area"] = 1.0 - frame["galaxy_area"]
    frame["zero_map"] = np.isnan(frame["arm_share"])
    return pd.DataFrame(frame)


def galaxy_table(galaxies: pd.DataFrame, maps_by_method: dict, regions: dict,
                 class_names) -> pd.DataFrame:
    """One row per galaxy and method: asset_id, class (true), pred, correct, method, target,
    then `pointing`'s columns. `galaxies` has asset_id, true_index and pred_index, row i
    matching map i of every method."""
    rows = []
    names = np.asarray(list(class_names), dtype=object)
    for method, maps in maps_by_method.items():
        if len(maps) != len(galaxies):
            raise ValueError(f"{method}: {len(maps)} maps for {len(galaxies)} galaxies")
        measured = pointing(maps, regions)
        rows.append(pd.concat([pd.DataFrame({
            "asset_id": galaxies["asset_id"].to_numpy(),
            "class": names[galaxies["true_index"].to_numpy(int)],
            "pred": names[galaxies["pred_index"].to_numpy(int)],
            "correct": (galaxies["true_index"].to_numpy(int)
                        == galaxies["pred_index"].to_numpy(int)),
            "method": method,
            "target": TARGET,
        }), measured], axis=1))
    return pd.concat(rows, ignore_index=True)


SUMMARY_COLUMNS = ["method", "class", "n", "n_correct", "n_zero_maps",
                   "arm_share", "arm_area", "arm_lift",
                   "galaxy_share", "galaxy_area", "galaxy_lift",
                   "sky_share", "sky_area", "sky_lift"]


def summarise(table: pd.DataFrame, class_names) -> pd.DataFrame:
    """Per method and class, then 'all' classes and 'all correct' (all classes, correctly
    classified galaxies only): means of the shares over the galaxies whose map is not all zero,
    means of the areas over all galaxies of the row, lift = share / area."""
    rows = []
    for method in dict.fromkeys(table["method"]):
        of_method = table[table["method"] == method]
        groups = [(name, of_method[of_method["class"] == name]) for name in class_names]
        correct = of_method[of_method["correct"].astype(bool)]
        for name, group in [*groups, (ALL_CLASSES, of_method), (ALL_CORRECT, correct)]:
            if not len(group):
                continue
            measured = group[~group["zero_map"]]
            row = {"method": method, "class": name, "n": len(group),
                   "n_correct": int(group["correct"].sum()),
                   "n_zero_maps": int(group["zero_map"].sum())}
            for region in REGIONS:
                share = measured[f"{region}_share"].mean() if len(measured) else np.nan
                area = group[f"{region}_area"].mean()
                row[f"{region}_share"] = share
                row[f"{region}_area"] = area
                row[f"{region}_lift"] = share / area if area > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def choose_galaxies(labelled: pd.DataFrame, per_class: int) -> pd.DataFrame:
    """Up to `per_class` galaxies per true class, the lowest asset_ids (random draws of the
    catalogue, so an arbitrary but fixed sample), in class order. `labelled` comes from
    xai.label_predictions (true_index, pred_index)."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    return (labelled.sort_values(["true_index", "asset_id"], kind="stable")
            .groupby("true_index", sort=True).head(per_class).reset_index(drop=True))


SUMMARY_FILE = "attribution.csv"  # per xai folder; spiralarms.report.attribution gathers them
