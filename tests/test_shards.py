"""TFRecord shards: round trip, bad JPEGs, manifest, determinism, shard size."""

import csv
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from fixtures_gz2 import galaxies, write_catalog, write_jpegs, write_mapping

from spiralarms.data.shards import (
    FEATURES,
    MANIFEST,
    ShardError,
    check_jpeg,
    feature_spec,
    parse_example,
    read_manifest,
    shard_files,
    write_shards,
)
from spiralarms.gz2.selection import run_labels

tf = pytest.importorskip("tensorflow")


def make_labels(n_train=10, n_val=4, n_overflow=3) -> pd.DataFrame:
    subsets = ["train"] * n_train + ["val"] * n_val + ["overflow"] * n_overflow
    n = len(subsets)
    asset_id = np.arange(500, 500 + n, dtype=np.int64)
    return pd.DataFrame({
        "dr7objid": 587_722_981_741_363_294 + np.arange(n, dtype=np.int64) * 7,
        "specobjid": 1_802_675_000_000_000_000 + np.arange(n, dtype=np.int64),
        "asset_id": asset_id,
        "arm_class": np.arange(n) % 6,
        "arm_fraction": np.linspace(0.3, 0.9, n),
        "subset": subsets,
        "image": [f"{a}.jpg" for a in asset_id],
    })


@pytest.fixture
def images(tmp_path):
    return write_jpegs(tmp_path / "images", make_labels()["asset_id"], size=16)


def read_records(files) -> list:
    return [{k: v.numpy() for k, v in parse_example(r).items()}
            for r in tf.data.TFRecordDataset(files)]


def test_round_trip_keeps_jpeg_bytes_and_labels_in_order(tmp_path, images):
    labels = make_labels()
    write_shards(labels, images, tmp_path / "shards", shard_size=4)
    for subset, expected in labels.groupby("subset", sort=False):
        records = read_records(shard_files(tmp_path / "shards", subset))
        assert [r["dr7objid"] for r in records] == list(expected["dr7objid"])
        assert [r["asset_id"] for r in records] == list(expected["asset_id"])
        assert [r["arm_class"] for r in records] == list(expected["arm_class"])
        assert np.allclose([r["arm_fraction"] for r in records], expected["arm_fraction"])
        for record, name in zip(records, expected["image"]):
            assert record["image"] == (images / name).read_bytes()  # no re-encoding


def test_parse_example_accepts_a_batch(tmp_path, images):
    write_shards(make_labels(), images, tmp_path / "shards")
    files = shard_files(tmp_path / "shards", "train")
    batch = next(iter(tf.data.TFRecordDataset(files).batch(3).map(parse_example)))
    assert batch["image"].shape == (3,) and batch["arm_class"].dtype == tf.int64
    assert batch["arm_fraction"].dtype == tf.float32


def test_shard_size_is_respected_and_files_are_named_in_order(tmp_path, images):
    manifest = write_shards(make_labels(), images, tmp_path / "shards", shard_size=4)
    train = [s for s in manifest["shards"] if s["subset"] == "train"]
    assert [s["file"] for s in train] == [f"train-{i:03d}-of-003.tfrecord" for i in range(3)]
    assert [s["count"] for s in train] == [4, 4, 2]
    assert [p.rsplit("/", 1)[-1] for p in shard_files(tmp_path / "shards", "train")] == \
        [s["file"] for s in train]


def test_rewrite_with_other_shard_size_leaves_no_stale_shards(tmp_path, images):
    write_shards(make_labels(), images, tmp_path / "shards", shard_size=2)
    write_shards(make_labels(), images, tmp_path / "shards", shard_size=100)
    assert sorted(p.name for p in (tmp_path / "shards").glob("*.tfrecord*")) == [
        "overflow-000-of-001.tfrecord", "train-000-of-001.tfrecord", "val-000-of-001.tfrecord"]


def spoil_images(images, labels):
    """Four bad files among the labels' images: truncated, text, absent, bogus Huffman table."""
    bad = labels.iloc[[1, 5, 11, 15]]
    paths = [images / name for name in bad["image"]]
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[:-10])  # ends inside the entropy-coded scan
    paths[1].write_text("<html>403 Forbidden</html>")
    paths[2].unlink()
    huffman = bytearray(paths[3].read_bytes())
    at = huffman.index(b"\xff\xc4")
    huffman[at + 5:at + 21] = b"\xff" * 16  # code counts summing past 256
    paths[3].write_bytes(bytes(huffman))
    return bad


def test_bad_jpegs_are_excluded_and_reported_by_id(tmp_path, images):
    labels = make_labels()
    bad = spoil_images(images, labels)
    manifest = write_shards(labels, images, tmp_path / "shards", shard_size=4)

    reported = {e["dr7objid"]: e for e in manifest["excluded"]}
    assert list(reported) == list(bad["dr7objid"])
    assert [reported[d]["asset_id"] for d in bad["dr7objid"]] == list(bad["asset_id"])
    reasons = [reported[d]["reason"] for d in bad["dr7objid"]]
    assert reasons[0].startswith("truncated")
    assert reasons[1].startswith("not a JPEG")
    assert reasons[2] == "image file missing"
    assert reasons[3].startswith("does not decode")
    written = {r["dr7objid"] for s in ("train", "val", "overflow")
               for r in read_records(shard_files(tmp_path / "shards", s))}
    assert written == set(labels["dr7objid"]) - set(bad["dr7objid"])
    with open(tmp_path / "shards" / "excluded.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["dr7objid"]) for r in rows] == list(bad["dr7objid"])


def test_structure_check_passes_a_bad_huffman_table_that_decode_catches(tmp_path, images):
    labels = make_labels()
    bad = spoil_images(images, labels)
    manifest = write_shards(labels, images, tmp_path / "shards", check="structure")
    assert [e["dr7objid"] for e in manifest["excluded"]] == list(bad["dr7objid"][:3])
    assert manifest["jpeg_check"] == "structure"


def test_manifest_reconciles_and_describes_every_shard(tmp_path, images):
    labels = make_labels()
    bad = spoil_images(images, labels)
    manifest = write_shards(labels, images, tmp_path / "shards", shard_size=4)
    assert manifest["reconciliation"] == {"labels_rows": len(labels),
                                          "written": len(labels) - len(bad), "excluded": len(bad)}
    kept = labels[~labels["dr7objid"].isin(bad["dr7objid"])]
    for subset, frame in kept.groupby("subset"):
        entry = manifest["subsets"][subset]
        assert entry["count"] == len(frame)
        assert entry["count_per_class"] == np.bincount(frame["arm_class"], minlength=6).tolist()
    for shard in manifest["shards"]:
        data = (tmp_path / "shards" / shard["file"]).read_bytes()
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
        assert shard["bytes"] == len(data)
        assert len(read_records([str(tmp_path / "shards" / shard["file"])])) == shard["count"]
    assert manifest["image_shapes"] == {"16x16x3": len(kept)}
    assert read_manifest(tmp_path / "shards") == json.loads(json.dumps(manifest))


def test_same_inputs_give_byte_identical_outputs_whatever_the_workers(tmp_path, images):
    labels = make_labels()
    spoil_images(images, labels)
    outputs = []
    for name, workers in (("a", 1), ("b", 3)):
        write_shards(labels, images, tmp_path / name, shard_size=4, workers=workers)
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert outputs[0] == outputs[1]
    assert MANIFEST in outputs[0]


def test_labels_from_the_labels_stage_shard_directly(tmp_path):
    rows = galaxies([0, 1, 2, 3, 4, 5] * 3)
    catalog = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping = write_mapping(rows, tmp_path / "gz2_filename_mapping.csv")
    images = write_jpegs(tmp_path / "images", rows["asset_id"], size=16)
    run_labels(catalog, mapping, images, {}, tmp_path / "labels.parquet", tmp_path / "r.json")
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    manifest = write_shards(labels, images, tmp_path / "shards")
    assert manifest["reconciliation"]["written"] == len(labels) == len(rows)
    records = read_records(shard_files(tmp_path / "shards", "val"))
    assert [r["dr7objid"] for r in records] == list(labels.loc[labels["subset"] == "val",
                                                               "dr7objid"])


def test_unknown_subset_and_missing_columns_are_named(tmp_path, images):
    write_shards(make_labels(), images, tmp_path / "shards")
    with pytest.raises(ShardError, match=r"no subset 'test'.*overflow"):
        shard_files(tmp_path / "shards", "test")
    with pytest.raises(ShardError, match="arm_fraction"):
        write_shards(make_labels().drop(columns="arm_fraction"), images, tmp_path / "x")


def test_wrong_image_folder_is_an_error_not_empty_shards(tmp_path):
    with pytest.raises(ShardError, match=r"500.jpg: image file missing.*right folder"):
        write_shards(make_labels(), tmp_path / "nowhere", tmp_path / "shards")


def test_check_jpeg_reports_shape_and_rejects_non_jpeg():
    from fixtures_gz2 import galaxy_jpeg

    assert check_jpeg(galaxy_jpeg(1, size=24)) == (None, "24x24x3")
    assert check_jpeg(b"\x89PNG\r\n\x1a\n")[0].startswith("not a JPEG")


def test_parse_spec_and_manifest_describe_every_field_a_record_holds(tmp_path, images):
    """What write_shards puts in a record, what parse_example reads and what the manifest tells
    a user are the same fields, of the same kinds."""
    write_shards(make_labels(), images, tmp_path / "shards")
    raw = next(iter(tf.data.TFRecordDataset(shard_files(tmp_path / "shards", "train"))))
    written = tf.train.Example.FromString(raw.numpy()).features.feature
    spec = feature_spec()
    assert set(written) == set(spec) == set(read_manifest(tmp_path / "shards")["features"])
    assert set(FEATURES) == set(spec)
    # dtype of the parse spec -> the record's list kind and the manifest's word for it
    kinds = {tf.string: ("bytes_list", "bytes"), tf.int64: ("int64_list", "int64"),
             tf.float32: ("float_list", "float32")}
    for name, feature in written.items():
        kind, word = kinds[spec[name].dtype]
        assert feature.WhichOneof("kind") == kind, name
        assert FEATURES[name].split(":")[0] == word, (name, FEATURES[name])
