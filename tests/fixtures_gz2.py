"""Build small Galaxy Zoo 2 inputs in the real file formats, for tests and benchmarks.

- catalogue: gzip CSV with all 233 columns of `zoo2MainSpecz.csv.gz`, header first, IDs as integers;
- mapping: `gz2_filename_mapping.csv` (objid, sample, asset_id);
- images: `<asset_id>.jpg` JPEG files.

`galaxies(...)` makes rows that pass every cut of the paper's selection with a chosen arm class;
tests then spoil single columns to make chosen rows fail a chosen cut.
"""

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from PIL import Image

from spiralarms import gz2

ARM_DEBIASED = [f"{a}_debiased" for a in gz2.ARM_ANSWERS]
ARM_FLAG = [f"{a}_flag" for a in gz2.ARM_ANSWERS]
FEATURES_WF = f"{gz2.FEATURES}_weighted_fraction"
NOT_EDGEON_WF = f"{gz2.NOT_EDGEON}_weighted_fraction"
SPIRAL_WF = f"{gz2.SPIRAL}_weighted_fraction"

# Real-looking identifiers. Consecutive specobjids differ by 1, far below float64's resolution at
# 1e18 (256): any float64 round trip merges them, so tests catch it.
SPECOBJID_BASE = 1_802_675_000_000_000_000
DR7OBJID_BASE = 587_722_981_741_363_294
DR8OBJID_BASE = 1_237_645_879_551_066_262

_STRING_DEFAULTS = {
    "rastring": "00:00:00.00", "decstring": "+00:00:00.0", "sample": "original", "gz2class": "Sc2t",
}


def galaxies(arm_classes, start=0, votes=60) -> pd.DataFrame:
    """One row per entry of `arm_classes`, each passing every selection cut.

    The row's largest arm answer (debiased) is its class, and that answer's clean flag is 1.
    Row i gets specobjid/dr7objid/dr8objid = base + start + i and asset_id = 1000 + start + i.
    """
    arm_classes = np.asarray(arm_classes, dtype=np.int64)
    n = len(arm_classes)
    offset = np.arange(start, start + n, dtype=np.int64)
    rows = pd.DataFrame({
        "specobjid": SPECOBJID_BASE + offset,
        "dr8objid": DR8OBJID_BASE + offset,
        "dr7objid": DR7OBJID_BASE + offset,
        "asset_id": 1000 + offset,
        "total_votes": np.full(n, votes, dtype=np.int64),
        FEATURES_WF: 0.9,
        NOT_EDGEON_WF: 0.9,
        SPIRAL_WF: 0.9,
    })
    for j, (deb, flag) in enumerate(zip(ARM_DEBIASED, ARM_FLAG)):
        rows[deb] = np.where(arm_classes == j, 0.6, 0.08)
        rows[flag] = (arm_classes == j).astype(np.int64)
    return rows


def catalog_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """All 233 catalogue columns in the release's order; columns `rows` lacks get plain values."""
    n = len(rows)
    out = {}
    for col in gz2.CATALOG_COLUMNS:
        if col in rows:
            out[col] = rows[col].to_numpy()
        elif col in _STRING_DEFAULTS:
            out[col] = np.full(n, _STRING_DEFAULTS[col], dtype=object)
        elif col in ("ra", "dec") or col.endswith(("fraction", "debiased", "weight")):
            out[col] = np.zeros(n)
        else:  # counts, flags, total_classifications
            out[col] = np.zeros(n, dtype=np.int64)
    return pd.DataFrame(out)


def write_catalog(rows: pd.DataFrame, path) -> Path:
    """`rows` (extra columns such as asset_id are dropped) as a gzip CSV in the release's format."""
    path = Path(path)
    catalog_frame(rows).to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
    return path


def write_mapping(rows: pd.DataFrame, path, shuffle_seed=None) -> Path:
    """The image-id map for `rows` (dr7objid -> asset_id), optionally in shuffled row order."""
    path = Path(path)
    mapping = pd.DataFrame({
        "objid": rows["dr7objid"].to_numpy(),
        "sample": "original",
        "asset_id": rows["asset_id"].to_numpy(),
    })
    if shuffle_seed is not None:
        mapping = mapping.sample(frac=1.0, random_state=shuffle_seed)
    mapping.to_csv(path, index=False)
    return path


def write_physical(rows: pd.DataFrame, path, log_mass, sfr) -> Path:
    """A `stellar mass_SFR.csv` table for `rows` (specObjID, LGM_TOT_P50, sfr_tot_p50)."""
    path = Path(path)
    n = len(rows)
    table = pd.DataFrame({
        "specObjID": rows["specobjid"].to_numpy(),
        "LGM_TOT_P50": np.broadcast_to(np.asarray(log_mass, dtype=float), n),
        "sfr_tot_p50": np.broadcast_to(np.asarray(sfr, dtype=float), n),
    })
    table.to_csv(path, index=False)
    return path


def galaxy_jpeg(seed: int, size: int = 424, quality: int = 80) -> bytes:
    """A JPEG that compresses like a GZ2 cut-out: dark sky, faint noise, a bright smooth blob.

    At 424 px and quality 80 the files average ~12.8 KB, like the real images (3.06 GB / 243,500).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    scale = size / rng.uniform(8, 16)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / rng.uniform(1.0, 2.5)
    blob = 230 * np.exp(-np.hypot(u, v) / scale)
    noise = rng.normal(0, 4, (size, size, 3))
    tint = np.array([1.0, 0.9, 0.8]) * rng.uniform(0.8, 1.0)
    pixels = np.clip(blob[..., None] * tint + 6 + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_jpegs(images_dir, asset_ids, size: int = 16) -> Path:
    """`<asset_id>.jpg` for each id, small by default so tests stay fast."""
    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    for asset_id in asset_ids:
        (images_dir / f"{int(asset_id)}.jpg").write_bytes(galaxy_jpeg(int(asset_id), size))
    return images_dir


def full_size_catalog(path, n: int = 243_500, seed: int = 0) -> Path:
    """A catalogue with the real size and layout (n rows x 233 columns, gzip), made in seconds.

    Fractions are uniform random, so roughly the real share of rows passes the cuts; every column
    has the real type. Written with pyarrow (unquoted, like the release) rather than pandas.
    """
    rng = np.random.default_rng(seed)
    offset = rng.permutation(n).astype(np.int64)  # release order is not ID order
    columns = {}
    for col in gz2.CATALOG_COLUMNS:
        if col == "specobjid":
            columns[col] = SPECOBJID_BASE + offset * 4096
        elif col == "dr8objid":
            columns[col] = DR8OBJID_BASE + offset
        elif col == "dr7objid":
            columns[col] = DR7OBJID_BASE + offset
        elif col in _STRING_DEFAULTS:
            columns[col] = pa.array(np.full(n, _STRING_DEFAULTS[col]))
        elif col in ("ra", "dec"):
            columns[col] = np.round(rng.uniform(0, 90, n), 6)
        elif col in ("total_classifications", "total_votes") or col.endswith("count"):
            columns[col] = rng.integers(0, 400, n)
        elif col.endswith("flag"):
            columns[col] = rng.integers(0, 2, n)
        else:  # fractions, weights, debiased: three decimals like the release
            columns[col] = np.round(rng.random(n), 3)
    table = pa.table(columns)
    options = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
    with gzip.open(path, "wb", compresslevel=6) as out:
        pacsv.write_csv(table, out, options)
    return Path(path)


def full_size_mapping(path, n: int = 243_500) -> Path:
    """The image-id map matching `full_size_catalog(n=n)`, in objid order like the release."""
    objid = DR7OBJID_BASE + np.arange(n, dtype=np.int64)
    table = pa.table({"objid": objid, "sample": pa.array(np.full(n, "original")),
                      "asset_id": np.arange(1, n + 1, dtype=np.int64)})
    pacsv.write_csv(table, str(path), pacsv.WriteOptions(quoting_style="none",
                                                        quoting_header="none"))
    return Path(path)
