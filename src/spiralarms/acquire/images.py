"""Locate the GZ2 image folder and check it against the filename mapping."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from spiralarms.acquire.errors import AcquireError

logger = logging.getLogger(__name__)

# Layout of the Kaggle dataset jaimetrickz/galaxy-zoo-2-images: <root>/images_gz2/images/<id>.jpg
GZ2_IMAGE_SUBDIR = Path("images_gz2") / "images"
MISSING_EXAMPLES = 10


def jpg_names(folder: str | os.PathLike) -> set[str]:
    """Names of the .jpg files directly inside `folder` (one directory listing, no stat per file)."""
    with os.scandir(folder) as entries:
        return {e.name for e in entries if e.name.lower().endswith(".jpg")}


def find_image_folder(root: str | os.PathLike) -> Path:
    """The folder under `root` holding the images: `images_gz2/images` if present, else the
    folder with the most .jpg files."""
    root = Path(root)
    preferred = root / GZ2_IMAGE_SUBDIR
    if preferred.is_dir() and jpg_names(preferred):
        return preferred
    counts = {Path(folder): sum(f.lower().endswith(".jpg") for f in files)
              for folder, _, files in os.walk(root)}
    best = max(counts, key=counts.get, default=None)
    if best is None or counts[best] == 0:
        raise AcquireError(
            f"no .jpg files found under {root}; expected {GZ2_IMAGE_SUBDIR}/<asset_id>.jpg. "
            "Delete the folder to download and extract it again."
        )
    return best


def check_image_count(images_dir: str | os.PathLike, mapping_csv: str | os.PathLike) -> dict:
    """Count mapping rows whose `<asset_id>.jpg` is in `images_dir` and rows whose image is missing.

    Returns rows, present, missing and up to 10 missing asset ids. Missing images are a warning
    (the real release lacks about 63 of 243,500), not an error: the caller decides what is too many.
    """
    images_dir, mapping_csv = Path(images_dir), Path(mapping_csv)
    if not images_dir.is_dir():
        raise AcquireError(f"image folder {images_dir} does not exist (config key data.images)")
    asset_ids = _asset_ids(mapping_csv)
    available = jpg_names(images_dir)
    missing = [a for a in asset_ids if f"{a}.jpg" not in available]
    counts = {
        "images_dir": str(images_dir),
        "mapping": str(mapping_csv),
        "rows": len(asset_ids),
        "present": len(asset_ids) - len(missing),
        "missing": len(missing),
        "missing_examples": missing[:MISSING_EXAMPLES],
    }
    if missing:
        logger.warning(
            "%d of %d images listed in %s are missing from %s (e.g. %s)",
            len(missing), len(asset_ids), mapping_csv, images_dir,
            ", ".join(f"{a}.jpg" for a in missing[:3]),
        )
    else:
        logger.info("all %d images listed in %s are in %s", len(asset_ids), mapping_csv, images_dir)
    return counts


def _asset_ids(mapping_csv: Path) -> list[str]:
    if not mapping_csv.is_file():
        raise AcquireError(f"mapping file {mapping_csv} does not exist (config key data.mapping)")
    header = pd.read_csv(mapping_csv, nrows=0).columns
    if "asset_id" not in header:
        raise AcquireError(
            f"{mapping_csv} has no 'asset_id' column (columns: {', '.join(header)}); "
            "expected the GZ2 filename mapping with columns objid, sample, asset_id"
        )
    # Read as text so ids match file names exactly (no 123.0 from a float column).
    ids = pd.read_csv(mapping_csv, usecols=["asset_id"], dtype={"asset_id": "string"})["asset_id"]
    return ids.dropna().str.strip().tolist()
