"""A table of sky positions (CSV or parquet) read for the cut-out fetcher.

Columns: an id (`id_str` unless named otherwise), `ra` and `dec` in degrees (ICRS, as SDSS and
the Legacy Surveys give them), and optionally a galaxy size in arcsec (e.g. SDSS's `petroR90_r`)
that frames each cut-out as Galaxy Zoo 2 did. Every row is kept, in order: a row that cannot be
fetched gets a skip code and a reason in words, so rows fetched + rows skipped = rows given.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.gz2.catalog import CatalogError, require_columns

# Plain words for the skip codes this module and the fetcher give (also used by the prediction
# summaries, through predict.records.SKIP_MEANINGS).
POSITION_SKIPS = {
    "bad_position": "ra or dec is empty or not a number",
    "outside_sky": "ra is outside 0-360 degrees or dec outside -90-+90 degrees",
    "empty_id": "the id is empty",
    "duplicate_id": "the id occurs on an earlier row (only the first is fetched)",
    "no_size": "the galaxy-size column is empty or not a positive number",
}
POSITION_COLUMNS = ["row", "id", "ra", "dec", "size_arcsec", "skip_code", "skip_reason"]


def read_positions(path, id_column: str = "id_str", ra_column: str = "ra",
                   dec_column: str = "dec", size_column: str | None = None) -> pd.DataFrame:
    """One row per row of the table (row, id, ra, dec, size_arcsec, skip_code, skip_reason);
    CatalogError when the file cannot be read or lacks a column."""
    columns = [id_column, ra_column, dec_column] + ([size_column] if size_column else [])
    table = read_table(path, columns)
    ra = pd.to_numeric(table[ra_column], errors="coerce").to_numpy(np.float64)
    dec = pd.to_numeric(table[dec_column], errors="coerce").to_numpy(np.float64)
    size = (pd.to_numeric(table[size_column], errors="coerce").to_numpy(np.float64)
            if size_column else np.full(len(table), np.nan))
    positions = pd.DataFrame({
        "row": np.arange(len(table), dtype=np.int64), "id": table[id_column].map(_id_text),
        "ra": ra, "dec": dec, "size_arcsec": size, "skip_code": "", "skip_reason": ""})
    _mark(positions, positions["id"] == "", "empty_id",
          lambda r: f"row {r.row}: the id (column {id_column!r}) is empty")
    _mark(positions, ~(np.isfinite(ra) & np.isfinite(dec)), "bad_position",
          lambda r: f"row {r.row}: ra {table[ra_column].iloc[r.row]!r} / dec "
                    f"{table[dec_column].iloc[r.row]!r} is not a pair of numbers (degrees)")
    _mark(positions, (ra < 0) | (ra >= 360) | (dec < -90) | (dec > 90), "outside_sky",
          lambda r: f"row {r.row}: ra {r.ra:g}, dec {r.dec:g} is not on the sky (ra 0 to 360, "
                    f"dec -90 to +90 degrees; sexagesimal or radians must be converted)")
    if size_column:
        _mark(positions, ~(size > 0), "no_size",
              lambda r: f"row {r.row}: size {table[size_column].iloc[r.row]!r} (column "
                        f"{size_column!r}) is not a positive number of arcsec")
    _mark_duplicates(positions)
    return positions


def read_table(path, columns) -> pd.DataFrame:
    """The named columns of a CSV (as text: ids keep their digits) or parquet table;
    CatalogError naming the file, the missing columns and the columns it has."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise CatalogError(f"positions table {path} does not exist; check the path")
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            present = pq.ParquetFile(path).schema_arrow.names
            _check_columns(path, columns, present)
            return pd.read_parquet(path, columns=list(dict.fromkeys(columns)))
        if name.endswith((".csv", ".csv.gz", ".tsv")):
            separator = "\t" if name.endswith(".tsv") else ","
            present = list(pd.read_csv(path, sep=separator, nrows=0).columns)
            _check_columns(path, columns, present)
            return pd.read_csv(path, sep=separator, usecols=list(dict.fromkeys(columns)),
                               dtype=str, keep_default_na=False)
    except CatalogError:
        raise
    except (OSError, ValueError, ImportError) as error:  # pandas/pyarrow parse errors
        raise CatalogError(f"positions table {path} could not be read: "
                           f"{str(error).splitlines()[0]}") from error
    raise CatalogError(f"positions table {path}: give a .csv or .parquet file, not "
                       f"{path.suffix or 'a file without suffix'}")


def _check_columns(path, wanted, present) -> None:
    require_columns("positions table", path, wanted, present,
                    "name the columns with --id-column/--ra-column/--dec-column/--size-column "
                    "(workflow: predict.<name>.id_column, size_column, cutouts.ra_column/dec_column)")


def _id_text(value) -> str:
    """An id as text: empty for a missing one; an integer id stored as float loses its '.0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _mark(positions: pd.DataFrame, mask, code: str, reason) -> None:
    """Give rows not yet skipped in `mask` the skip `code`, with `reason(row)` in words."""
    mask = np.asarray(mask, bool) & (positions["skip_code"].to_numpy() == "")
    for index in np.flatnonzero(mask):
        positions.loc[index, "skip_code"] = code
        positions.loc[index, "skip_reason"] = reason(positions.iloc[index])


def _mark_duplicates(positions: pd.DataFrame) -> None:
    valid = positions[(positions["skip_code"] == "") & (positions["id"] != "")]
    repeated = valid["id"].duplicated(keep="first")
    if not repeated.any():
        return
    first = dict(zip(valid["id"][::-1], valid["row"][::-1]))
    for index in repeated[repeated].index:
        value = positions.at[index, "id"]
        positions.loc[index, "skip_code"] = "duplicate_id"
        positions.loc[index, "skip_reason"] = (f"row {index}: duplicate id {value!r} (first on "
                                               f"row {first[value]}, which is fetched)")
