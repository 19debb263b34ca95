"""Read the Galaxy Zoo 2 catalogue, the image-id map and the physical-properties table.

Only the columns a step needs are parsed (pyarrow `include_columns`), and every object id is read as
int64: specobjid, dr8objid and dr7objid exceed 2**53, so a float64 round trip (the notebook's
`1.802675e+18`) would merge distinct galaxies.
"""

import gzip
import re
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from spiralarms import gz2

ARM_DEBIASED = [f"{a}_debiased" for a in gz2.ARM_ANSWERS]
ARM_FLAG = [f"{a}_flag" for a in gz2.ARM_ANSWERS]
ARM_COUNT = [f"{a}_count" for a in gz2.ARM_ANSWERS]  # the volunteers' raw votes (issue 20)
FEATURES_WF = f"{gz2.FEATURES}_weighted_fraction"
NOT_EDGEON_WF = f"{gz2.NOT_EDGEON}_weighted_fraction"
SPIRAL_WF = f"{gz2.SPIRAL}_weighted_fraction"

# What the paper's selection reads from the 233 catalogue columns.
SELECTION_COLUMNS = [
    "specobjid", "dr7objid", "total_votes", FEATURES_WF, NOT_EDGEON_WF, SPIRAL_WF,
    *ARM_DEBIASED, *ARM_FLAG,
]
# Object ids of any of the three tables, read as int64 wherever a table has them.
INT64_COLUMNS = ("specobjid", "dr8objid", "dr7objid", "objid", "asset_id", "specObjID")
# What the pipeline reads of the image-id map (its file has gz2.MAPPING_FILE_COLUMNS).
MAPPING_COLUMNS = ["objid", "asset_id"]
PHYSICAL_COLUMNS = ["specObjID", "LGM_TOT_P50", "sfr_tot_p50"]
NUMERIC_COLUMNS = {c for c in SELECTION_COLUMNS + ARM_COUNT + PHYSICAL_COLUMNS
                   if c not in INT64_COLUMNS}


class CatalogError(ValueError):
    """An input table is missing a column, has an unreadable value or a blank id."""


def require_columns(what: str, path, wanted, present, fix: str) -> None:
    """CatalogError unless every column of `wanted` is `present`: it names `what` (e.g.
    "catalogue") and the file, the missing columns and the first 30 it has, then `fix`."""
    missing = [c for c in dict.fromkeys(wanted) if c not in present]
    if missing:
        shown = ", ".join(present[:30]) + (" ..." if len(present) > 30 else "")
        raise CatalogError(f"{what} {path} has no column {', '.join(map(repr, missing))} (its "
                           f"columns: {shown}); {fix}")


def read_catalog(path, columns=SELECTION_COLUMNS) -> pd.DataFrame:
    """The GZ2 catalogue (`zoo2MainSpecz.csv[.gz]`), restricted to `columns`."""
    return _read_table(path, list(columns), "the GZ2 catalogue (zoo2MainSpecz.csv.gz)")


def read_mapping(path) -> pd.DataFrame:
    """The image-id map (`gz2_filename_mapping.csv`): objid (= dr7objid) and asset_id, int64."""
    return _read_table(path, MAPPING_COLUMNS, "the image-id map (gz2_filename_mapping.csv)")


def read_physical(path, shown_as=None) -> pd.DataFrame:
    """Stellar mass and SFR per spectrum (`stellar mass_SFR.csv` from the MPA-JHU tables).

    `shown_as`: how error messages name the file (default `path`), e.g. the archive member it was
    extracted from, so that the user reads the name of the file they gave."""
    return _read_table(path, PHYSICAL_COLUMNS,
                       "the physical-properties table (stellar mass_SFR.csv)", shown_as)


def read_header(path, shown_as=None) -> list:
    """Column names from the first line of a plain or gzip CSV (`shown_as`: see read_physical)."""
    path = Path(path)
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            first = f.readline()
    except (EOFError, OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise CatalogError(_unreadable(shown_as or path, err)) from None
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(",")]


def _unreadable(name, err) -> str:
    check = f" (`gzip -t {name}` checks a .gz file)" if str(name).endswith(".gz") else ""
    return (f"{name}: the file ends early or is corrupt ({type(err).__name__}: {err}), most "
            f"likely an interrupted download or copy; delete it and download it again{check}")


def _read_table(path, columns, what, shown_as=None) -> pd.DataFrame:
    path = Path(path)
    name = shown_as or path  # what messages call the file
    if not path.is_file():
        raise CatalogError(f"{name}: file not found; expected {what}")
    header = read_header(path, shown_as)
    missing = [c for c in columns if c not in header]
    if missing:
        raise CatalogError(
            f"{name}: missing column(s) {missing} in {what}; the header has {len(header)} columns "
            f"starting {header[:4]}. Check that the file is the right table and not truncated."
        )
    types = {c: pa.int64() for c in columns if c in INT64_COLUMNS}
    try:
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types)
        )
    except pa.ArrowInvalid as err:  # e.g. an id written as 1.8e+18, or a stray text value
        raise CatalogError(f"{name}: cannot parse {what}{_column_named(err, header)}: {err}") \
            from None
    except OSError as err:  # pyarrow's "Truncated compressed stream"
        raise CatalogError(_unreadable(name, err)) from None
    for column in types:
        _require_no_blank_ids(table, column, name)
    for column in columns:
        if column in NUMERIC_COLUMNS:
            _require_numbers(table, column, name, what)
    return table.to_pandas()


def _require_numbers(table: pa.Table, name: str, path, what: str):
    """A numeric column that pyarrow read as text holds a value that is not a number."""
    column = table.column(name)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return
    values = column.to_pandas()
    bad = (pd.to_numeric(values, errors="coerce").isna() & values.notna()).to_numpy()
    rows = bad.nonzero()[0]
    shown = ", ".join(f"data row {r + 1}: {values.iat[r]!r}" for r in rows[:5])
    raise CatalogError(
        f"{path}: column {name!r} of {what} must hold numbers, but {len(rows)} row(s) hold text "
        f"({shown}{', ...' if len(rows) > 5 else ''}); write decimals with a point (0.61, not "
        f"0,61) and leave a missing value empty.")


def _column_named(err, header) -> str:
    """Arrow reports a bad value by column number; name the column for the user."""
    found = re.search(r"column #(\d+)", str(err))
    if found and int(found.group(1)) < len(header):
        return f", column {header[int(found.group(1))]!r}"
    return ""


def _require_no_blank_ids(table: pa.Table, name: str, path):
    column = table.column(name)
    if column.null_count:
        row = column.is_null().to_numpy(zero_copy_only=False).argmax()
        raise CatalogError(
            f"{path}: column {name!r} is blank in {column.null_count} row(s), first at data row "
            f"{row + 1}; every galaxy needs an integer id (fix or drop those rows)."
        )
