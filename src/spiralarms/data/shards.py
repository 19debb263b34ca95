"""TFRecord shards of the labelled galaxies, and the helpers that read them back.

One shard set per subset (`<subset>-<i>-of-<n>.tfrecord`, i from 000), each record a
tf.train.Example holding the image file's own JPEG bytes (never re-encoded) and its labels.
Records keep the labels' row order, so the same labels and images give byte-identical shards and
manifest. An image that is missing or does not decode is left out and listed by id in
`manifest.json` and `excluded.csv`, instead of failing the run or, later, a training epoch.

TensorFlow is imported inside the functions that need it: importing this module (e.g. to list
shard files while building a workflow) stays cheap.
"""

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections import deque, namedtuple
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from PIL import Image

from spiralarms import atomic, gz2, logs

logger = logging.getLogger(__name__)
SUBSET_ORDER = ("train", "val", "test", "overflow")
MANIFEST = "manifest.json"
EXCLUDED = "excluded.csv"
CHECKS = ("decode", "structure")
REQUIRED_COLUMNS = ("dr7objid", "asset_id", "arm_class", "arm_fraction", "subset", "image")
FEATURES = {
    "image": "bytes: the JPEG file as downloaded",
    "arm_class": "int64: 0-5 for 1, 2, 3, 4, 5+ arms, can't tell",
    "dr7objid": "int64",
    "asset_id": "int64",
    "arm_fraction": "float32: largest debiased arm-number fraction (rho)",
}
# Vote shards only (issue 20: experiments that learn from the votes); label shards stay as they were.
VOTE_FEATURES = {"arm_votes": "int64[6]: t11 vote counts for 1, 2, 3, 4, 5+ arms, can't tell"}
_SHARD_NAME = re.compile(r"^[a-z]+-\d{3,}-of-(\d{3,}|NNN)\.tfrecord$")


class ShardError(ValueError):
    """Labels or a shard folder cannot be written or read as asked."""


def feature_spec(votes: bool = False) -> dict:
    """tf.io parsing spec of one record; with `votes`, also the vote shards' `arm_votes`."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "arm_class": tf.io.FixedLenFeature([], tf.int64),
        "dr7objid": tf.io.FixedLenFeature([], tf.int64),
        "asset_id": tf.io.FixedLenFeature([], tf.int64),
        "arm_fraction": tf.io.FixedLenFeature([], tf.float32),
    }
    if votes:
        spec["arm_votes"] = tf.io.FixedLenFeature([len(gz2.ARM_ANSWERS)], tf.int64)
    return spec


def parse_example(serialized, votes: bool = False):
    """Dict of image (JPEG bytes), arm_class, dr7objid, asset_id, arm_fraction (and arm_votes
    with `votes`, from vote shards).

    Takes one serialized record, or a 1-D batch of them (then every value has a batch axis).
    """
    import tensorflow as tf

    serialized = tf.convert_to_tensor(serialized, dtype=tf.string)
    if serialized.shape.rank == 1:
        return tf.io.parse_example(serialized, feature_spec(votes))
    return tf.io.parse_single_example(serialized, feature_spec(votes))


def shard_files(shard_dir, subset) -> list:
    """Paths of one subset's shards, in order, as the manifest lists them."""
    manifest = read_manifest(shard_dir)
    if subset not in manifest["subsets"]:
        raise ShardError(f"{Path(shard_dir) / MANIFEST}: no subset {subset!r}; "
                         f"it has {sorted(manifest['subsets'])}")
    return [str(Path(shard_dir) / name) for name in manifest["subsets"][subset]["files"]]


def subset_files(shard_dir, subsets) -> dict:
    """subset -> its shard paths, [] for a subset the selection left empty (nothing written)."""
    present = read_manifest(shard_dir)["subsets"]
    return {s: shard_files(shard_dir, s) if s in present else [] for s in subsets}


def read_manifest(shard_dir) -> dict:
    path = Path(shard_dir) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{path} not found: write the shards first (write_shards)")
    return json.loads(path.read_text())


# The reason for a zero-byte image, in these words wherever it is met (shards, predict).
EMPTY_FILE = "empty file (0 bytes)"


def check_jpeg(data: bytes, decode: bool = True):
    """(reason, shape): reason is None for a sound JPEG; shape is 'WxHxC' from its frame header.

    First the marker structure (cheap, pure Python): start-of-image, well-formed header segments,
    a frame header a JPEG decoder supports, and an end-of-image marker after the scan, which a
    truncated file lacks. Then, with `decode`, a real decode at 1/8 scale (libjpeg's DCT scaling):
    several times cheaper than a full decode, yet every entropy-coded byte is still read.
    """
    reason, shape = _jpeg_structure(data)
    if reason is not None or not decode:
        return reason, shape
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.draft(None, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except (OSError, SyntaxError, ValueError) as err:
        return f"does not decode: {err}", None
    return None, shape


# Frame headers libjpeg(-turbo) decodes: baseline, extended sequential, progressive (Huffman).
_SUPPORTED_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
_OTHER_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_structure(data: bytes):
    """(reason, shape) from walking the header segments up to the first scan."""
    if not data:
        return EMPTY_FILE, None
    if not data.startswith(b"\xff\xd8"):
        return "not a JPEG (no start-of-image marker)", None
    pos, shape = 2, None
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return f"corrupt or truncated header (no marker at byte {pos})", None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            return f"corrupt or truncated header (segment 0x{marker:02X} at byte {pos})", None
        if marker in _OTHER_SOF:
            return f"unsupported JPEG coding (frame marker 0x{marker:02X})", None
        if marker in _SUPPORTED_SOF:
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            channels = data[pos + 9]
            if not (width and height and channels in (1, 3, 4)):
                return f"bad frame header ({width}x{height}, {channels} components)", None
            shape = f"{width}x{height}x{channels}"
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + length
    if shape is None:
        return "no frame header before the scan", None
    # Entropy-coded data never holds FF D9 (an FF there is followed by 00 or a restart code).
    if data.rfind(b"\xff\xd9") < pos + 2 + length:
        return "truncated (no end-of-image marker after the scan)", None
    return None, shape


def write_shards(labels, images_dir, out_dir, shard_size: int = 256, workers: int = 2,
                 check: str = "decode", votes: bool = False) -> dict:
    """Write every subset's shards, `manifest.json` and `excluded.csv` into `out_dir`.

    `votes`: vote shards (issue 20), each record also holding `arm_votes`, the six t11 vote
    counts from the labels' `<answer>_count` columns (the vote_labels stage writes them). Label
    shards (the default) are written exactly as before, byte for byte.

    `check` is "decode" (structure plus a 1/8-scale decode of every image) or "structure"
    (marker walk only, about as fast as copying the files; see check_jpeg). `workers` threads
    read and check the JPEGs (PIL releases the GIL while decoding); records are written in the
    labels' order whatever the number of workers. Returns the manifest.
    """
    import tensorflow as tf

    if shard_size < 1:
        raise ShardError(f"shard_size={shard_size} must be >= 1")
    if check not in CHECKS:
        raise ShardError(f"check={check!r} must be one of {CHECKS}")
    _require_columns(labels, votes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_old_shards(out_dir)
    load = partial(_load, images_dir=str(images_dir), decode=check == "decode")
    shards, excluded, shapes = [], [], {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for subset in _subsets(labels):
            rows = _rows(labels[labels["subset"] == subset], votes)
            writer = _SubsetWriter(tf, out_dir, subset, shard_size)
            # The structure check costs less than handing work to a thread.
            loaded = _ordered_map(pool, load, rows) if check == "decode" else map(load, rows)
            for row, (data, reason, shape) in zip(rows, loaded):
                if reason is None:
                    writer.add(row, data)
                    shapes[shape] = shapes.get(shape, 0) + 1
                else:
                    excluded.append({"dr7objid": row.dr7objid, "asset_id": row.asset_id,
                                     "subset": subset, "image": row.image, "reason": reason})
            shards += writer.finish()
    if len(labels) and not shards:
        raise ShardError(f"no image in {images_dir} could be sharded (first: "
                         f"{excluded[0]['image']}: {excluded[0]['reason']}); is it the right folder?")
    manifest = _manifest(labels, shards, excluded, shapes, shard_size, check, votes)
    _write_excluded_csv(out_dir / EXCLUDED, excluded)
    atomic.write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")  # last: done
    logger.info("shards: %s", describe(manifest), extra=logs.TERMINAL)
    return manifest


def run_shards(labels_path, images_dir, out_dir, shard_size: int = 256, workers: int = 2,
               check: str = "decode", votes: bool = False) -> dict:
    """The `shards` rule (and `vote_shards`, with `votes`): write_shards for the labels in the
    parquet file `labels_path`."""
    import pandas as pd

    return write_shards(pd.read_parquet(labels_path), images_dir, out_dir, shard_size=shard_size,
                        workers=workers, check=check, votes=votes)


def describe(manifest: dict) -> str:
    """The shards in one line: galaxies written per subset, and those left out by reason."""
    done = manifest["reconciliation"]
    subsets = ", ".join(f"{name} {s['count']} in {len(s['files'])} shard(s)"
                        for name, s in manifest["subsets"].items())
    by_reason = {}
    for entry in manifest["excluded"]:  # "does not decode: <detail>" -> "does not decode"
        by_reason.setdefault(re.split(r":| \(", entry["reason"])[0], []).append(entry["dr7objid"])
    reasons = "; ".join(
        f"{len(ids)} {reason} (dr7objid {', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''})"
        for reason, ids in by_reason.items())
    return (f"wrote {done['written']} of {done['labels_rows']} labelled galaxies ({subsets}); "
            f"excluded: {reasons or 'none'} (all in {EXCLUDED})")


_Row = namedtuple("_Row", ["dr7objid", "asset_id", "subset", "image", "arm_class",
                           "arm_fraction", "arm_votes"])


def _rows(labels, votes: bool = False) -> list:
    """The labels as plain Python values (pandas row access costs more than the work)."""
    columns = [labels[c].tolist() for c in _Row._fields[:-1]]
    arm_votes = (labels[_count_columns()].astype("int64").to_numpy().tolist() if votes
                 else [None] * len(labels))
    return [_Row._make(values) for values in zip(*columns, arm_votes)]


def _count_columns() -> list:
    return [f"{a}_count" for a in gz2.ARM_ANSWERS]


def _ordered_map(pool, fn, items, window: int = 256):
    """pool.map that keeps at most `window` results in flight, so memory stays bounded."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _require_columns(labels, votes: bool = False):
    missing = [c for c in REQUIRED_COLUMNS if c not in labels.columns]
    if missing:
        raise ShardError(f"labels lack column(s) {missing}; pass the labels written by the "
                         "labels stage (labels.parquet)")
    if votes:
        counts = _count_columns()
        missing = [c for c in counts if c not in labels.columns]
        if missing:
            raise ShardError(f"vote shards need the t11 vote counts, but the labels lack "
                             f"{missing}; pass vote_labels.parquet (the vote_labels stage)")
        blank = labels.loc[labels[counts].isna().any(axis=1), "dr7objid"]
        if len(blank):
            raise ShardError(f"labels have blank t11 vote counts for dr7objid "
                             f"{blank.iloc[:5].tolist()} ({len(blank)} galaxies)")
    bad = labels.loc[~labels["arm_class"].isin(range(len(gz2.ARM_ANSWERS))), "dr7objid"]
    if len(bad):
        raise ShardError(f"labels have arm_class outside 0-5 for dr7objid {bad.iloc[:5].tolist()}")


def _subsets(labels) -> list:
    present = set(labels["subset"])
    unknown = sorted(present - set(SUBSET_ORDER))
    if unknown:
        raise ShardError(f"labels have unknown subset(s) {unknown}; expected {SUBSET_ORDER}")
    return [s for s in SUBSET_ORDER if s in present]


def _remove_old_shards(out_dir: Path):
    """Shards of an earlier run with other counts would linger beside the new ones."""
    for path in out_dir.glob("*.tfrecord*"):
        if _SHARD_NAME.match(path.name.removesuffix(".partial")):
            path.unlink()


def _load(row, images_dir: str, decode: bool):
    """(jpeg bytes, None, shape) or (None, reason, None)."""
    try:
        with open(os.path.join(images_dir, row.image), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, "image file missing", None
    except OSError as err:
        return None, f"cannot read image file: {err.strerror}", None
    reason, shape = check_jpeg(data, decode)
    return (data, None, shape) if reason is None else (None, reason, None)


class _SubsetWriter:
    """Streams one subset's records into shards of `shard_size`.

    Shards are written under a provisional name and renamed once the subset's shard count is
    known, so records never wait in memory for the count.
    """

    def __init__(self, tf, out_dir: Path, subset: str, shard_size: int):
        self.tf, self.out_dir, self.subset, self.shard_size = tf, out_dir, subset, shard_size
        self.done, self.writer, self.counts = [], None, None

    def add(self, row, data: bytes):
        if self.writer is None:
            self.counts = [0] * len(gz2.ARM_ANSWERS)
            self.writer = self.tf.io.TFRecordWriter(str(self._partial(len(self.done))))
        self.writer.write(_example(self.tf, row, data))
        self.counts[row.arm_class] += 1
        if sum(self.counts) == self.shard_size:
            self._close()

    def _partial(self, index) -> Path:
        return self.out_dir / f"{self.subset}-{index:03d}-of-NNN.tfrecord.partial"

    def _close(self):
        self.writer.close()
        self.done.append(self.counts)
        self.writer = None

    def finish(self) -> list:
        if self.writer is not None:
            self._close()
        entries = []
        for index, counts in enumerate(self.done):
            final = self.out_dir / f"{self.subset}-{index:03d}-of-{len(self.done):03d}.tfrecord"
            self._partial(index).replace(final)
            entries.append({"file": final.name, "subset": self.subset, "count": sum(counts),
                            "count_per_class": counts, **_digest(final)})
        return entries


def _example(tf, row, data: bytes) -> bytes:
    def int64(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "arm_class": int64(row.arm_class),
        "dr7objid": int64(row.dr7objid),
        "asset_id": int64(row.asset_id),
        "arm_fraction": tf.train.Feature(float_list=tf.train.FloatList(value=[row.arm_fraction])),
    }
    if row.arm_votes is not None:
        feature["arm_votes"] = tf.train.Feature(int64_list=tf.train.Int64List(value=row.arm_votes))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # map fields in key order


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _manifest(labels, shards, excluded, shapes, shard_size, check, votes=False) -> dict:
    subsets = {}
    for subset in _subsets(labels):
        own = [s for s in shards if s["subset"] == subset]
        per_class = [sum(counts) for counts in zip(*(s["count_per_class"] for s in own))]
        subsets[subset] = {
            "labels_rows": int((labels["subset"] == subset).sum()),
            "count": int(sum(s["count"] for s in own)),
            "count_per_class": per_class or [0] * len(gz2.ARM_ANSWERS),
            "excluded": sum(e["subset"] == subset for e in excluded),
            "files": [s["file"] for s in own],
        }
    written = sum(s["count"] for s in shards)
    reconciliation = {"labels_rows": len(labels), "written": written, "excluded": len(excluded)}
    if written + len(excluded) != len(labels):  # a lost or doubled record is a bug here
        raise ShardError(f"shards do not reconcile with the labels: {reconciliation}")
    return {
        "format": "TFRecord (uncompressed) of tf.train.Example",
        "features": {**FEATURES, **(VOTE_FEATURES if votes else {})},
        "class_names": list(gz2.ARM_CLASS_NAMES),
        "shard_size": shard_size,
        "jpeg_check": check,
        "shards": shards,
        "subsets": subsets,
        "image_shapes": dict(sorted(shapes.items())),
        "excluded": excluded,
        "reconciliation": reconciliation,
    }


def _write_excluded_csv(path: Path, excluded: list):
    with atomic.replacing(path) as partial, partial.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["dr7objid", "asset_id", "subset", "image", "reason"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(excluded)
