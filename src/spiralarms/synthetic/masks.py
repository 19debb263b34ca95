"""The renderer's arm and galaxy masks as 2-bit palette PNGs in one zip (the dataset's masks.zip).

Per image, `<asset_id>.png` holds where its arms and its galaxy are in the 424 frame: labels 0 sky,
1 galaxy, 2 arm (`spiralarms.synthetic.render.galaxy_mask`). For the XAI attribution measure only.
"""

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from spiralarms.synthetic.render import MASK_ARM, MASK_GALAXY, MASK_SKY

MASK_PALETTE = [0, 0, 0, 128, 128, 128, 255, 255, 255]  # sky black, galaxy grey, arms white


def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def encode_mask(label) -> bytes:
    """A label image (0 sky, 1 galaxy, 2 arm) as a 2-bit palette PNG (sky black, galaxy grey,
    arms white): about 1 kB and 0.1 ms for a 424 frame, the same bytes for the same labels.

    Written here rather than by PIL (which reads it back): packing only the rows that hold the
    galaxy halves the cost, and the masks are drawn for every synthetic image."""
    label = np.ascontiguousarray(label, dtype=np.uint8)
    if label.ndim != 2 or label.max(initial=0) > MASK_ARM:
        raise ValueError(f"a mask is a 2-D image of labels {MASK_SKY}, {MASK_GALAXY} and "
                         f"{MASK_ARM}; got shape {label.shape}, max {label.max(initial=0)}")
    height, width = label.shape
    row_bytes = -(-width // 4)  # four 2-bit pixels per byte
    rows = np.zeros((height, 1 + row_bytes), np.uint8)  # each row: filter type 0, then pixels
    used = np.flatnonzero(label.max(axis=1))
    if len(used):
        top, bottom = used[0], used[-1] + 1
        part = label[top:bottom]
        if width % 4:
            part = np.pad(part, ((0, 0), (0, 4 * row_bytes - width)))
        quads = part.reshape(bottom - top, row_bytes, 4)
        packed = rows[top:bottom, 1:]
        np.left_shift(quads[..., 0], 6, out=packed)
        packed |= quads[..., 1] << 4
        packed |= quads[..., 2] << 2
        packed |= quads[..., 3]
    header = struct.pack(">IIBBBBB", width, height, 2, 3, 0, 0, 0)  # 2-bit, palette
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"PLTE", bytes(MASK_PALETTE))
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + _png_chunk(b"IEND", b""))


def decode_mask(data, name="mask") -> np.ndarray:
    """The (H, W) uint8 labels (MASK_SKY 0, MASK_GALAXY 1, MASK_ARM 2) of `encode_mask` bytes."""
    with Image.open(io.BytesIO(data)) as mask:
        if mask.mode != "P":
            raise ValueError(f"{name}: a mask is a palette PNG of labels 0-2, got mode "
                             f"{mask.mode!r}")
        label = np.asarray(mask)
    if label.max(initial=0) > MASK_ARM:
        raise ValueError(f"{name}: mask labels are {MASK_SKY}, {MASK_GALAXY} and {MASK_ARM}, "
                         f"found {label.max()}")
    return label


def write_masks(path, masks):
    """Write {asset_id: PNG bytes} as a zip of `<asset_id>.png` members, stored (PNG is
    compressed already) with fixed timestamps, so the same masks give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for asset_id, data in masks.items():
            info = zipfile.ZipInfo(f"{int(asset_id)}.png", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def read_masks(path, asset_ids=None) -> dict:
    """{asset_id: (H, W) labels} from a masks.zip, for `asset_ids` (default all). A requested
    galaxy without a mask (no image) raises KeyError naming it."""
    with zipfile.ZipFile(path) as archive:
        names = {int(Path(name).stem): name for name in archive.namelist()}
        wanted = names if asset_ids is None else [int(a) for a in asset_ids]
        absent = [a for a in wanted if a not in names]
        if absent:
            raise KeyError(f"{path} holds no mask for asset_id(s) {absent[:10]}"
                           + (f" and {len(absent) - 10} more" if len(absent) > 10 else ""))
        return {a: decode_mask(archive.read(names[a]), f"{path}:{names[a]}") for a in wanted}
