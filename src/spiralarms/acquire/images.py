"""Locate the GZ2 image folder, unpack a zip of it (Zenodo's images_gz2.zip) and check it against
the filename mapping."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from spiralarms.acquire.archive import safe_extract
from spiralarms.acquire.errors import AcquireError

logger = logging.getLogger(__name__)

# Layout of the Kaggle dataset jaimetrickz/galaxy-zoo-2-images: <root>/images_gz2/images/<id>.jpg
GZ2_IMAGE_SUBDIR = Path("images_gz2") / "images"
MISSING_EXAMPLES = 10
# Refuse a zip that would unpack to more than this: Zenodo's images_gz2.zip holds ~3.2 GB of JPEGs,
# stored; ten times that is no image release but a zip bomb or the wrong URL.
MAX_IMAGE_ZIP_BYTES = 32 * 10**9


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


def extract_images(archive: str | os.PathLike, images_dir: str | os.PathLike,
                   max_total_bytes: int = MAX_IMAGE_ZIP_BYTES) -> Path:
    """Unpack the image zip `archive` (safe_extract: no member outside, no links out) and leave
    its image folder (found by `find_image_folder`: Zenodo's `images/`, Kaggle's
    `images_gz2/images/`, or the folder with most .jpg) as `images_dir` (`<asset_id>.jpg`).

    Made for a Snakemake `directory()` output: the extraction goes to a hidden work folder beside
    `images_dir` (`.<name>.unzip`, which Snakemake does not wipe before a rerun), and the image
    folder is renamed into place in one step. A finished `images_dir` is kept as it is.
    """
    images_dir = Path(images_dir)
    if images_dir.is_dir() and jpg_names(images_dir):
        logger.info("%s already holds the images", images_dir)
        return images_dir
    work_dir = images_dir.with_name(f".{images_dir.name}.unzip")
    extracted = work_dir / "extracted"
    if not extracted.is_dir():  # an earlier run killed after extracting need not extract again
        safe_extract(archive, extracted, max_total_bytes=max_total_bytes)
    found = find_image_folder(extracted)
    logger.info("%s: %d images in %s", archive, len(jpg_names(found)),
                found.relative_to(extracted))
    if images_dir.is_dir():
        images_dir.rmdir()  # empty (checked above); a non-empty folder makes this fail loudly
    images_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(found, images_dir)
    shutil.rmtree(work_dir)  # what else the zip held
    return images_dir


def run_extract_images(archive: str | os.PathLike, images_dir: str | os.PathLike,
                       mapping_csv: str | os.PathLike) -> dict:
    """The `fetch_images` rule for a zip URL: extract_images, then check_image_count against the
    mapping (missing images are counted again by the labels stage; here the log says it early)."""
    return check_image_count(extract_images(archive, images_dir), mapping_csv)


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
