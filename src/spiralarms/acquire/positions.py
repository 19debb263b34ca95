"""A table of sky positions (CSV or parquet) read for the cut-out fetcher.

Columns: an id (`id_str` unless named otherwise), `ra` and `dec` in degrees (ICRS, as SDSS and
the Legacy Surveys give them), and optionally a galaxy size in arcsec (e.g. SDSS's `petroR90_r`)
that frames each cut-out as Galaxy Zoo 2 did. Every row is kept, in order: a row that cannot be
fetched gets a skip code and a reason in words, so rows fetched + rows skipped = rows given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spiralarms.gz2.catalog import CatalogError

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
    from spiralarms.predict.chunks import _as_id, read_catalog_file

    columns = [id_column, ra_column, dec_column] + ([size_column] if size_column else [])
    try:
        table = read_catalog_file(path, columns)
    except CatalogError as error:
        raise CatalogError(str(error).replace(
            "name the id and file columns with --id-column/--file-column (workflow: "
            "predict.<name>.id_column/file_column)",
            "name the columns with --id-column/--ra-column/--dec-column/--size-column "
            "(workflow: predict.<name>.id_column, cutouts.ra_column, ...)")) from None
    ra = pd.to_numeric(table[ra_column], errors="coerce").to_numpy(np.float64)
    dec = pd.to_numeric(table[dec_column], errors="coerce").to_numpy(np.float64)
    size = (pd.to_numeric(table[size_column], errors="coerce").to_numpy(np.float64)
            if size_column else np.full(len(table), np.nan))
    positions = pd.DataFrame({
        "row": np.arange(len(table), dtype=np.int64), "id": table[id_column].map(_as_id),
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
