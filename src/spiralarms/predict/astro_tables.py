"""Predictions as the tables astronomers open: a FITS binary table (`.fits`) or a VOTable (`.vot`),
written with astropy, readable by TOPCAT, astropy and Aladin as they are.

TOPCAT's conventions, kept here: column names of letters, digits and `_` only (a class name such as
`5+` or `?` becomes `prob_5plus`, `prob_cant_tell`; the class as people read it is in the column's
description); no object columns (text is fixed-width: bytes in FITS, `char` in the VOTable); every
column has a description and, where it has one, a unit and a UCD (IVOA's Unified Content
Descriptors, which TOPCAT uses to find positions: `pos.eq.ra;meta.main`). FITS has no standard key
for descriptions or UCDs: they go in `TCOMMn` and `TUCDn`, the keys TOPCAT (STIL) reads and writes.
A catalogue's `ra` and `dec` (degrees) are carried over by `row` when it has them.
Both files are written through `spiralarms.atomic`: complete or absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import atomic
from spiralarms.data.variants import display_name

TABLE_SUFFIXES = {".fits": "fits", ".vot": "votable"}  # CLI -o suffix -> format
FORMAT_SUFFIXES = {"fits": ".fits", "votable": ".vot"}  # predict.<name>.tables -> file suffix
POSITION_COLUMNS = ("ra", "dec")
# column -> (unit, UCD, description) for the fixed columns of a prediction table
COLUMNS = {
    "row": (None, "meta.record", "Row of the input catalogue, counted from 0"),
    "id": (None, "meta.id;meta.main", "Galaxy id from the input (catalogue id column or file name)"),
    "ra": ("deg", "pos.eq.ra;meta.main", "Right ascension (J2000) from the input catalogue"),
    "dec": ("deg", "pos.eq.dec;meta.main", "Declination (J2000) from the input catalogue"),
    "file": (None, "meta.ref.url", "Image file as the input named it"),
    "path": (None, "meta.ref.url", "Image file as read (resolved path)"),
    "width": ("pix", "meta.number", "Width of the image as read"),
    "height": ("pix", "meta.number", "Height of the image as read"),
    "mode": (None, "meta.code", "Colour mode of the image as read (L, RGB, ...)"),
    "pred_index": (None, "meta.code.class", "Index of the predicted class (0 = first class)"),
    "pred_name": (None, "src.class", "Predicted arm-number class (short name)"),
    "pred_label": (None, "src.class", "Predicted arm-number class in words"),
    "p_max": (None, "stat.probability", "Probability of the predicted class"),
    "entropy": (None, "stat.value", ("Predictive entropy of the class probabilities in nats "
                                     "(0: certain; ln(number of classes): uniform)")),
}
PLAIN_NAME = re.compile(r"[^A-Za-z0-9_]")


class TableFormatError(ValueError):
    """An output suffix or a table setting that names no table format."""


def table_format(path) -> str | None:
    """'fits' or 'votable' for an output path ending in .fits or .vot, else None."""
    return TABLE_SUFFIXES.get(Path(path).suffix.lower())


def plain_class(name: str) -> str:
    """A class name as a plain column-name part: '5+' -> '5plus', '3-4' -> '3to4', '?' ->
    'cant_tell'."""
    if name == "?":
        return "cant_tell"
    return PLAIN_NAME.sub("_", name.replace("+", "plus").replace("-", "to"))


def with_positions(table: pd.DataFrame, catalog) -> pd.DataFrame:
    """`table` with the catalogue's `ra` and `dec` (float64 degrees) joined by `row`, after `id`;
    unchanged when the catalogue (or the table's `row`) is missing or lacks both columns. Values
    that are not numbers become NaN (the prediction itself did not need them)."""
    if catalog is None or "row" not in table or not Path(catalog).is_file():
        return table
    positions = _read_positions(Path(catalog))
    if positions is None:
        return table
    out = table.copy()
    rows = out["row"].to_numpy(np.int64)
    at = out.columns.get_loc("id") + 1 if "id" in out else len(out.columns)
    for offset, column in enumerate(POSITION_COLUMNS):
        out.insert(at + offset, column, positions[column].to_numpy(np.float64)[rows])
    return out


def _read_positions(catalog: Path) -> pd.DataFrame | None:
    name = catalog.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        present = pq.ParquetFile(catalog).schema_arrow.names
        if not all(c in present for c in POSITION_COLUMNS):
            return None
        frame = pd.read_parquet(catalog, columns=list(POSITION_COLUMNS))
    elif name.endswith((".csv", ".csv.gz", ".tsv")):
        separator = "\t" if name.endswith(".tsv") else ","
        present = list(pd.read_csv(catalog, sep=separator, nrows=0).columns)
        if not all(c in present for c in POSITION_COLUMNS):
            return None
        frame = pd.read_csv(catalog, sep=separator, usecols=list(POSITION_COLUMNS), dtype=str,
                            keep_default_na=False)
    else:
        return None
    return frame.apply(pd.to_numeric, errors="coerce")


def astropy_table(table: pd.DataFrame, card: dict, tta: int = 1):
    """An astropy Table of the predictions: plain names, fixed-width text, units, UCDs and
    descriptions; the model card's model, classes and sizes in its meta."""
    from astropy.table import Column, Table

    out = Table(meta={"MODEL": card.get("model", ""), "CLASSES": card.get("classes", ""),
                      "IMGSIZE": int(card.get("image_size") or 0),
                      "CROPSIZE": int(card.get("crop_size") or 0), "TTA": int(tta or 1),
                      "ORIGIN": "spiralarms predict", "REFERENC": "arXiv:2412.11696"})
    for name in table.columns:
        unit, ucd, description = _describe(name, card)
        plain = _plain_column(name)
        out.add_column(Column(_values(table[name]), name=plain, unit=unit,
                              description=description, meta={"ucd": ucd} if ucd else {}))
    return out


def _plain_column(name: str) -> str:
    for prefix in ("prob_", "std_"):
        if name.startswith(prefix):
            return prefix + plain_class(name.removeprefix(prefix))
    return PLAIN_NAME.sub("_", name)


def _describe(name: str, card: dict) -> tuple[str | None, str | None, str]:
    if name in COLUMNS:
        return COLUMNS[name]
    for prefix, ucd, what in (("prob_", "stat.probability", "Probability of class"),
                              ("std_", "stat.stdev;stat.probability",
                               ("Standard deviation over the test-time views of the probability "
                                "of class"))):
        if name.startswith(prefix):
            return None, ucd, f"{what} {display_name(name.removeprefix(prefix))}"
    return None, None, f"Column {name} of the input"


def _values(column: pd.Series) -> np.ndarray:
    """A numpy array of a fixed type: numbers as they are, text as fixed-width UTF-8 bytes (no
    object columns; None and NaN text become empty)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    text = [("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).encode()
            for v in column]
    width = max((len(t) for t in text), default=1) or 1
    return np.array(text, dtype=f"S{width}")


def write_table(table: pd.DataFrame, path, card: dict, tta: int = 1, catalog=None) -> Path:
    """The predictions `table` as a FITS binary table (.fits) or VOTable (.vot) at `path`, with the
    catalogue's ra/dec carried over by row when `catalog` has them."""
    path = Path(path)
    kind = table_format(path)
    if kind is None:
        raise TableFormatError(f"output {path}: a table is written as .fits (FITS binary table) "
                               f"or .vot (VOTable), got {path.suffix or 'no suffix'!r}")
    astro = astropy_table(with_positions(table, catalog), card, tta)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as partial:
        if kind == "fits":
            _fits_hdus(astro).writeto(partial)
        else:
            astro.write(partial, format="votable")
    return path


def _fits_hdus(astro):
    from astropy.io import fits

    hdu = fits.table_to_hdu(astro)
    hdu.name = "PREDICTIONS"
    for index, column in enumerate(astro.columns.values(), start=1):
        hdu.header[f"TCOMM{index}"] = column.description[:68]
        if column.meta.get("ucd"):
            hdu.header[f"TUCD{index}"] = column.meta["ucd"]
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def read_dataset(dataset) -> pd.DataFrame:
    """A gathered prediction dataset (folder of parquet parts) or single parquet/CSV file."""
    dataset = Path(dataset)
    if dataset.suffix.lower() == ".csv":
        return pd.read_csv(dataset, dtype={"id": str})
    return pd.read_parquet(dataset)


def run_predict_table(dataset, summary_json, source, out) -> Path:
    """The `predict_table` rule: the gathered dataset of predict.<name> as a FITS binary table or
    VOTable (by `out`'s suffix), with the model card and test-time views from its summary and the
    ra/dec of its catalogue `source` (a folder of images has none)."""
    import json

    summary = json.loads(Path(summary_json).read_text())
    return write_table(read_dataset(dataset), out, summary["model_card"], summary.get("tta", 1),
                       source if Path(source).is_file() else None)
