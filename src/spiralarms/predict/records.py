"""What a prediction reads and writes, without TensorFlow: the folder scan, the skip vocabulary,
the output columns and their writers. The workflow's light steps (split, gather) and the CLI's
reporting use this module; only `predictor` starts TensorFlow.

Outputs go through `spiralarms.atomic`: a prediction file appears complete or not at all.
"""

import os
from pathlib import Path

import pandas as pd

from spiralarms import atomic
from spiralarms.data.variants import get_variant, long_names
from spiralarms.predict.fits import FITS_SUFFIXES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
INPUT_SUFFIXES = IMAGE_SUFFIXES + FITS_SUFFIXES  # what a folder scan picks up

# Plain words for each reason a row can be skipped (summary tables and the skipped list).
SKIP_MEANINGS = {
    "missing_file": "the file does not exist",
    "unreadable": "the file is not an image that can be read (empty, corrupt, truncated or "
                  "another format)",
    "too_small": "the image is far smaller than the training frame",
    "no_image_data": "the FITS file holds no image data",
    "no_finite_pixels": "every pixel of the FITS image is NaN or infinite",
    "blank": "every pixel has the same value",
    "bad_bands": "the FITS image's bands do not fit the band choice",
    "no_size": "the galaxy-size column is empty or not a positive number",
    "empty_id": "the id is empty",
    "empty_file": "no file is given",
    "duplicate_id": "the id occurs on an earlier row (only the first is predicted)",
    # rows the cut-out fetcher (spiralarms.acquire.cutouts) could not provide, from its manifest
    "bad_position": "ra or dec is empty or not a number",
    "outside_sky": "ra is outside 0-360 degrees or dec outside -90-+90 degrees",
    "not_an_image": "the cut-out service answered with something that is not an image",
    "no_data": "the cut-out is blank: the survey has no data there (outside its footprint)",
    "http_error": "the cut-out service refused the request (a 4xx answer)",
    "fetch_failed": "the cut-out service did not answer in time or kept failing; a rerun of the "
                    "fetch tries again",
}

# Columns of `<out>.skipped.csv`; `row` (the catalogue row, from 0) only for catalogue and chunked
# input, where rows have numbers.
SKIPPED_COLUMNS = ["row", "id", "file", "path", "code", "reason"]
OUTPUT_SUFFIXES = (".parquet", ".csv", ".fits", ".vot")  # .fits/.vot: astro_tables
INT_COLUMNS = ("row", "width", "height", "pred_index")
FLOAT_COLUMNS = ("p_max", "entropy")


def check_max_upscale(value) -> float:
    """`max_upscale` as a number, or ValueError saying the allowed range (0 or less would skip
    every image as too small)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0:
        raise ValueError(f"max_upscale must be a number greater than 0 (how many times the model "
                         f"may enlarge an image's window; 1 = never enlarge, default 4), got "
                         f"{value!r}")
    return number


class NoImagesError(ValueError):
    """No image files were found among the inputs."""


# --- finding images ------------------------------------------------------------------------------

def find_images(inputs) -> tuple[list, list]:
    """Image paths from files and folders (folders: .jpg/.jpeg/.png and FITS, any case, sorted),
    and `skipped` entries for inputs that do not exist. Explicit files are taken whatever their
    name."""
    images, skipped = [], []
    for item in map(Path, as_list(inputs)):
        if item.is_dir():
            images += scan_folder(item)
        elif item.is_file():
            images.append(item)
        else:
            skipped.append({"path": str(item), "code": "missing_file",
                            "reason": f"no such file or folder: {item}"})
    if not images:
        folders = [str(item) for item in map(Path, as_list(inputs)) if item.is_dir()]
        problems = [f"no images ({', '.join(INPUT_SUFFIXES)}) found in {', '.join(folders)}"
                    ] if folders else []
        problems += [f"input {s['path']} does not exist" for s in skipped]
        raise NoImagesError("; ".join(problems or ["no inputs given"]) +
                            ": give existing image files or folders of images")
    return list(dict.fromkeys(images)), skipped  # a file named twice is predicted once


def scan_folder(folder) -> list:
    """Image and FITS files of `folder` (not its subfolders), sorted by name."""
    # dotfiles are macOS resource forks ('._x.jpg') and editor droppings, not images
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(INPUT_SUFFIXES))


def as_list(inputs) -> list:
    """One path or many."""
    return [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)


# --- tables ------------------------------------------------------------------------------------

def arrow_table(frame: pd.DataFrame):
    """`frame` with one fixed type per column (an empty chunk must not give null columns, or
    the dataset's parts would not read as one table)."""
    import pyarrow as pa

    def kind(name):
        if name in INT_COLUMNS:
            return pa.int64()
        if name in FLOAT_COLUMNS or name.startswith(("prob_", "std_")):
            return pa.float32()
        return pa.string()

    schema = pa.schema([(name, kind(name)) for name in frame.columns])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def class_counts(table) -> pd.DataFrame:
    """Predicted galaxies per class (every class, zeros included) and their share."""
    card = table.attrs["model_card"]
    return counts_frame(table["pred_name"].value_counts(), card)


def counts_frame(counts: pd.Series, card: dict) -> pd.DataFrame:
    names = list(card["class_names"])
    counts = counts.reindex(names, fill_value=0)
    labels = long_names(get_variant(card["classes"]))
    total = max(1, int(counts.sum()))
    return pd.DataFrame({"class": names, "label": labels, "count": counts.to_numpy(),
                         "share": counts.to_numpy() / total})


# --- writing -----------------------------------------------------------------------------------

def check_output_path(out_path) -> Path:
    """The output path if this command writes its suffix (.parquet or .csv), else ValueError."""
    out_path = Path(out_path)
    if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {out_path}: the suffix must be .parquet, .csv, .fits (FITS "
                         f"binary table) or .vot (VOTable), the format written; got "
                         f"{out_path.suffix or 'none'!r}")
    return out_path


def skipped_path(out_path) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".skipped.csv")


def write_skipped(skipped, path) -> Path:
    """The skipped rows (dicts or a frame with SKIPPED_COLUMNS, `row` optional) as CSV."""
    frame = pd.DataFrame(skipped)
    frame = frame.reindex(columns=[c for c in SKIPPED_COLUMNS if c in frame.columns or c != "row"])
    with atomic.replacing(path) as partial:
        frame.to_csv(partial, index=False)
    return Path(path)


def write_predictions(table, skipped, out_path, catalog=None) -> list:
    """Parquet (or CSV, FITS binary table, VOTable for a .csv, .fits, .vot path) of the
    predictions, plus `<out stem>.skipped.csv` (row for catalogue input, id, file, path, code,
    reason) when anything was skipped; a stale list from an earlier run is removed. Each file is
    renamed into place once complete. `catalog`: the input catalogue, whose ra/dec a FITS or
    VOTable carries over. Returns the written paths."""
    from spiralarms.predict import astro_tables

    out_path = check_output_path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if astro_tables.table_format(out_path):
        astro_tables.write_table(table, out_path, table.attrs["model_card"],
                                 table.attrs.get("tta", 1), catalog)
    else:
        with atomic.replacing(out_path) as partial:
            if out_path.suffix.lower() == ".csv":
                table.to_csv(partial, index=False)
            else:
                table.to_parquet(partial, index=False, schema=arrow_table(table).schema)
    written = [out_path]
    listing = skipped_path(out_path)
    if skipped:
        written.append(write_skipped(skipped, listing))
    elif listing.exists():
        listing.unlink()
    return written
