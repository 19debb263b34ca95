"""Prediction on new images: any size and mode, bad files skipped with plain reasons, the training
preprocessing, framing, test-time augmentation, catalogues, chunks and the command line."""

import inspect
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml
from disk_support import full_folder, read_only_folder
from PIL import Image
from tiny_models import BAD, GOOD, IMAGE_SIZE, galaxy_pixels

from spiralarms.cli import main
from spiralarms.data.dataset import make_dataset
from spiralarms.data.images import decode, preprocess, read_rgb, to_rgb
from spiralarms.data.shards import EXCLUDED, shard_files, write_shards
from spiralarms.data.variants import VARIANTS
from spiralarms.models.model_card import ModelCardError
from spiralarms.predict import chunks
from spiralarms.predict.predictor import (
    ModelFileError,
    Predictor,
    entropy,
    load_model,
    model_input,
    predict_images,
    predict_rows,
    tta_views,
    window,
)
from spiralarms.predict.records import (
    SKIPPED_COLUMNS,
    NoImagesError,
    class_counts,
    write_predictions,
)

NAMES = list(VARIANTS["6class"].class_names)
PROBS = [f"prob_{n}" for n in NAMES]


@pytest.fixture(scope="module")
def predicted(model_path, images):
    return predict_images(model_path, [images], batch_size=2)


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor(model_path, batch_size=4)


def test_folder_gives_a_row_per_readable_image(predicted, images):
    table, _ = predicted
    assert sorted(table["path"]) == sorted(str(images / name) for name in GOOD)
    assert sorted(table["id"]) == sorted(GOOD)
    by_name = table.set_index("id")
    assert by_name.loc["rgba.png", ["width", "height", "mode"]].tolist() == [100, 60, "RGBA"]
    assert by_name.loc["galaxy.jpg", ["width", "height", "mode"]].tolist() == [424, 424, "RGB"]
    assert by_name.loc["grey.png", "mode"] == "L"
    assert by_name.loc["palette.png", "mode"] == "P"


def test_broken_files_are_skipped_with_plain_reasons(predicted, images):
    _, skipped = predicted
    assert sorted(s["path"] for s in skipped) == sorted(str(images / name) for name in BAD)
    reasons = {s["id"]: s for s in skipped}
    assert reasons["corrupt.jpg"]["code"] == "unreadable"
    assert reasons["corrupt.jpg"]["reason"].startswith("truncated or corrupt image file")
    assert reasons["notes.png"]["reason"].startswith("not an image file that can be read")
    for entry in skipped:  # words, not a Python exception's name or repr
        assert "Error" not in entry["reason"] and "<" not in entry["reason"]


def test_probabilities_and_names_are_consistent(predicted):
    table, _ = predicted
    proba = table[PROBS].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(table["p_max"], proba.max(axis=1))
    np.testing.assert_array_equal(table["pred_index"], proba.argmax(axis=1))
    assert table["pred_name"].tolist() == [NAMES[i] for i in table["pred_index"]]
    long = ["1 arm", "2 arms", "3 arms", "4 arms", "5+ arms", "can't tell"]
    assert table["pred_label"].tolist() == [long[i] for i in table["pred_index"]]
    np.testing.assert_allclose(table["entropy"], entropy(proba), rtol=1e-6)
    assert not any(c.startswith("std_") for c in table)  # only with test-time augmentation
    counts = class_counts(table)
    assert counts["count"].sum() == len(table) and counts["class"].tolist() == NAMES


def test_predict_reads_tensorflows_jpeg_pixels_like_the_shards(images):
    """predict's reader hands preprocess TensorFlow's JPEG pixels, as training decodes a shard's
    bytes, not PIL's (differently rounded) ones."""
    jpeg = (images / "galaxy.jpg").read_bytes()
    pixels, mode = read_rgb(images / "galaxy.jpg")
    assert mode == "RGB"
    np.testing.assert_array_equal(pixels, tf.io.decode_jpeg(jpeg, channels=3).numpy())
    pil = np.asarray(Image.open(images / "galaxy.jpg").convert("RGB"))
    assert not np.array_equal(pixels, pil)  # the two decoders differ: the choice matters


def test_prediction_input_is_the_training_pipelines_view_of_the_same_file(predictor, images,
                                                                          tmp_path):
    """galaxy.jpg through the training path (a shard read by make_dataset) and through both
    prediction paths (tf.data with the windowed decode; load + model_input): the same tensor."""
    (tmp_path / "images").mkdir()
    shutil.copy(images / "galaxy.jpg", tmp_path / "images" / "7.jpg")
    labels = pd.DataFrame([{"dr7objid": 1, "asset_id": 7, "arm_class": 2, "arm_fraction": 0.9,
                            "subset": "test", "image": "7.jpg"}])
    write_shards(labels, tmp_path / "images", tmp_path / "shards", workers=1)
    card = predictor.card
    images_seen, targets = next(iter(make_dataset(
        shard_files(tmp_path / "shards", "test"), model=card["model"],
        variant=VARIANTS[card["classes"]], image_size=int(card["image_size"]),
        crop_size=card["crop_size"], batch_size=1)))
    training = images_seen.numpy()[0]
    assert training.shape == (IMAGE_SIZE, IMAGE_SIZE, 1) and targets.numpy().argmax() == 2
    batch = next(iter(predictor.dataset([images / "galaxy.jpg"], [np.nan])))
    framed, *_ = predictor.load(images / "galaxy.jpg")
    np.testing.assert_array_equal(batch["image"].numpy()[0], predictor.model_input(framed))
    np.testing.assert_array_equal(batch["image"].numpy()[0], training)


@pytest.mark.parametrize("model", ["b0", "v2m"])
def test_the_model_sees_the_central_crop_in_its_own_channels(predictor, tmp_path, model):
    """By hand: a 424 px frame, white except its central 224 px of one colour. With the paper's
    224 crop the model sees that colour alone: its channel mean in [0, 1] for B0, RGB 0-255 for
    V2M."""
    frame = np.full((424, 424, 3), 255, np.uint8)
    frame[100:324, 100:324] = (200, 100, 50)
    Image.fromarray(frame).save(tmp_path / "framed.png")
    expected = {"b0": [(200 + 100 + 50) / 3 / 255], "v2m": [200.0, 100.0, 50.0]}[model]
    size = 48
    pixels, _ = read_rgb(tmp_path / "framed.png")
    seen = model_input(pixels, {"model": model, "image_size": size, "crop_size": 224})
    assert seen.shape == (size, size, len(expected))
    np.testing.assert_allclose(seen, np.broadcast_to(expected, seen.shape), rtol=1e-5)
    if model == "b0":  # and the predictor's own paths, on the tiny model's card (32 px)
        batch = next(iter(predictor.dataset([tmp_path / "framed.png"], [np.nan])))
        np.testing.assert_allclose(batch["image"].numpy()[0], expected[0], rtol=1e-5)
        framed, *_ = predictor.load(tmp_path / "framed.png")
        np.testing.assert_allclose(predictor.model_input(framed), expected[0], rtol=1e-5)


def test_prediction_sees_what_training_sees(model_path, images, tmp_path):
    """JPEG (windowed decode) and a lossless PNG copy both give the training tensor's output."""
    jpeg = (images / "galaxy.jpg").read_bytes()
    Image.fromarray(tf.io.decode_jpeg(jpeg, channels=3).numpy()).save(tmp_path / "same.png")
    shutil.copy(images / "galaxy.jpg", tmp_path / "same.jpg")
    table, _ = predict_images(model_path, [tmp_path])
    model = keras.models.load_model(model_path, safe_mode=True)
    expected = model.predict_on_batch(decode(jpeg, "b0", IMAGE_SIZE, 224)[None])
    for row in table[PROBS].to_numpy():
        np.testing.assert_array_equal(row[None], expected)


def test_windowed_jpeg_decode_equals_the_full_decode(predictor, tmp_path):
    """Odd sizes, progressive, greyscale and every chroma subsampling: the pipeline's input is
    the training preprocessing of the central square, bit for bit."""
    rng = np.random.default_rng(1)
    paths, expected = [], []
    for i in range(18):
        height, width = (int(v) for v in rng.integers(40, 480, 2))
        pixels = galaxy_pixels(max(height, width), i)[:height, :width]
        options = {"quality": int(rng.integers(60, 98)), "progressive": bool(i % 2)}
        if i % 6 == 0:
            Image.fromarray(pixels[..., 0]).save(tmp_path / f"{i}.jpg", **options)
        else:
            Image.fromarray(pixels).save(tmp_path / f"{i}.jpg", subsampling=i % 3, **options)
        paths.append(tmp_path / f"{i}.jpg")
        full = tf.io.decode_jpeg(paths[-1].read_bytes(), channels=3)
        side = min(height, width)
        square = full[(height - side) // 2:(height - side) // 2 + side,
                      (width - side) // 2:(width - side) // 2 + side]
        expected.append(preprocess(square, "b0", IMAGE_SIZE, 224).numpy())
    got = {}
    for batch in predictor.dataset(paths, np.full(len(paths), np.nan)):
        got.update(zip(batch["index"].numpy(), batch["image"].numpy()))
    assert sorted(got) == list(range(len(paths)))
    for i, image in got.items():
        np.testing.assert_array_equal(image, expected[i], err_msg=str(paths[i]))


def test_window_follows_central_crop_arithmetic():
    for side in [1, 2, 7, 60, 100, 223, 224, 317, 424, 1000]:
        image = tf.zeros((side, side, 1))
        cropped = tf.image.central_crop(image, 224 / 424).shape[0]
        top, left, size = window(side, side, 224)
        assert size == cropped and top == left == int((side - side * 224 / 424) / 2)
    assert window(60, 100, 224)[1] > window(60, 100, 224)[0]  # centred in the wider axis
    assert window(424, 424, 224, size_px=50) == (100, 100, 224)  # GZ2: R90 = 50 px
    assert window(212, 212, 224, size_px=25) == (50, 50, 112)
    assert window(100, 100, 224, size_px=100) == (-174, -174, 448)  # beyond the image


def test_non_square_images_are_centre_cropped_not_stretched(predictor, tmp_path):
    wide = galaxy_pixels(300, 3)[50:250]  # 200 x 300
    Image.fromarray(wide).save(tmp_path / "wide.png")
    square = wide[:, 50:250]
    framed, width, height, _ = predictor.load(tmp_path / "wide.png")
    assert (width, height) == (300, 200)
    expected = preprocess(square, "b0", IMAGE_SIZE, 224).numpy()
    np.testing.assert_array_equal(predictor.model_input(framed), expected)
    batch = next(iter(predictor.dataset([tmp_path / "wide.png"], [np.nan])))
    np.testing.assert_array_equal(batch["image"].numpy()[0], expected)


def test_framing_by_galaxy_size_rescales_to_the_gz2_frame(predictor, tmp_path):
    """A cut-out at half the GZ2 scale (R90 = 25 px) frames the galaxy as the full-size one."""
    big = galaxy_pixels(424, 4)
    Image.fromarray(big).save(tmp_path / "gz2.png")
    small = np.asarray(Image.fromarray(big).resize((212, 212), Image.BOX))
    Image.fromarray(small).save(tmp_path / "half.png")
    Image.fromarray(small[40:172, 20:192]).save(tmp_path / "tight.png")  # 132x172: pads
    batches = predictor.dataset([tmp_path / n for n in ("gz2.png", "half.png", "tight.png")],
                                [50.0, 25.0, 25.0])
    images = next(iter(batches))["image"].numpy()
    np.testing.assert_array_equal(images[0], preprocess(big, "b0", IMAGE_SIZE, 224))
    np.testing.assert_array_equal(images[1],
                                  preprocess(small[50:162, 50:162], "b0", IMAGE_SIZE, 0))
    assert np.abs(images[0] - images[1]).mean() < 0.02  # same galaxy, same framing
    framed, *_ = predictor.load(tmp_path / "tight.png", 25.0)
    assert framed.shape == (112, 112, 3)
    np.testing.assert_array_equal(predictor.model_input(framed), images[2])


def test_far_too_small_images_are_skipped_with_the_reason(model_path, tmp_path):
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(galaxy_pixels(6, 1)).save(tmp_path / "tiny.jpg")
    Image.fromarray(galaxy_pixels(20, 2)).save(tmp_path / "small.jpg")  # 12 px window: allowed
    table, skipped = predict_images(model_path, [tmp_path])
    assert table["id"].tolist() == ["small.jpg"]
    reasons = {s["id"]: s for s in skipped}
    assert set(reasons) == {"dot.png", "tiny.jpg"} and {s["code"] for s in skipped} == \
        {"too_small"}
    assert reasons["dot.png"]["reason"].startswith("image is 1x1 px: the model would enlarge")
    strict, skipped = predict_images(model_path, [tmp_path], max_upscale=1)
    assert len(strict) == 0 and len(skipped) == 3


def test_test_time_augmentation(model_path, images, predicted, predictor):
    one, _ = predict_rows(predictor, chunks.read_input(images))
    assert one["id"].tolist() == predicted[0]["id"].tolist()
    np.testing.assert_array_equal(one[PROBS].to_numpy(), predicted[0][PROBS].to_numpy())
    four = Predictor(model_path, tta=4)
    x = np.random.default_rng(0).random((3, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32)
    mean, std = four.infer(x)
    views = np.stack([four.model.predict_on_batch(np.rot90(x, k, axes=(1, 2))) for k in range(4)])
    np.testing.assert_allclose(mean, views.mean(0), atol=1e-6)
    np.testing.assert_allclose(std, views.std(0), atol=1e-6)
    assert (std > 0).any()  # the rotated copies really differ, so they were used
    table, _ = predict_rows(four, chunks.read_input(images))
    assert [c for c in table if c.startswith("std_")] == [f"std_{n}" for n in NAMES]
    np.testing.assert_allclose(table["entropy"], entropy(table[PROBS].to_numpy()), rtol=1e-6)
    eight = tta_views(tf.constant(x), 8)
    assert len({v.numpy().tobytes() for v in eight}) == 8  # the dihedral group, no repeats
    with pytest.raises(ValueError, match="tta must be 1..8"):
        Predictor(model_path, tta=9)


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 257, 32896, 65535]], np.uint16)).save(tmp_path / "deep.png")
    rgb, mode = read_rgb(tmp_path / "deep.png")
    assert mode == "I;16" and rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_wide_integer_images_are_stretched_to_eight_bits():
    stretched = to_rgb(Image.fromarray(np.array([[-1000, 0, 1000]], np.int32), "I"))
    assert stretched[0, :, 0].tolist() == [0, 128, 255]
    as_is = to_rgb(Image.fromarray(np.array([[0, 17, 255]], np.int32), "I"))
    assert as_is[0, :, 1].tolist() == [0, 17, 255]


def test_transparency_lands_on_black_sky():
    rgba = np.array([[[255, 255, 255, 0], [200, 100, 50, 255]]], np.uint8)
    rgb = to_rgb(Image.fromarray(rgba, "RGBA"))
    assert rgb.tolist() == [[[0, 0, 0], [200, 100, 50]]]


def test_model_without_card_needs_classes_and_crop(model_path, images, tmp_path):
    bare = tmp_path / "model.keras"
    shutil.copy(model_path, bare)
    with pytest.raises(ModelCardError, match="--classes --crop-size"):
        predict_images(bare, [images / "galaxy.jpg"])
    table, _ = predict_images(bare, [images / "galaxy.jpg"],
                              card={"classes": "6class", "crop_size": 224})
    with_card, _ = predict_images(model_path, [images / "galaxy.jpg"])
    pd.testing.assert_frame_equal(table, with_card)
    assert table.attrs["model_card"]["model"] == "b0"  # read from the 1-channel input


def test_the_cards_crop_decides_what_the_model_sees(model_path, images, tmp_path):
    """An imported model is fed as its card says, not as the paper's default: with a card crop of
    424 (the whole frame) the prediction is the network's output on the whole-frame training
    tensor, and differs from the same network's with the 224 crop."""
    folder = tmp_path / "whole_frame"
    folder.mkdir()
    shutil.copy(model_path, folder / "model.keras")
    card = json.loads(model_path.with_name("model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**card, "crop_size": 424}))
    whole, _ = predict_images(folder / "model.keras", [images / "galaxy.jpg"])
    central, _ = predict_images(model_path, [images / "galaxy.jpg"])
    model = keras.models.load_model(model_path, safe_mode=True)
    jpeg = (images / "galaxy.jpg").read_bytes()
    # bit for bit, as test_prediction_sees_what_training_sees: the untrained network's outputs
    # are all near 1/6, so only exact equality tells the two inputs apart
    for seen, crop in ((whole, 424), (central, 224)):
        expected = model.predict_on_batch(decode(jpeg, "b0", IMAGE_SIZE, crop)[None])
        np.testing.assert_array_equal(seen[PROBS].to_numpy(), expected)
    assert not np.array_equal(whole[PROBS].to_numpy(), central[PROBS].to_numpy())


def test_classes_that_do_not_fit_the_network_are_refused(model_path, images):
    with pytest.raises(ModelCardError, match="network outputs 6"):
        predict_images(model_path, [images / "galaxy.jpg"], card={"classes": "merge34"})


def test_no_images_is_an_error(model_path, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NoImagesError, match="no images"):
        predict_images(model_path, [tmp_path, tmp_path / "missing.jpg"])


@pytest.mark.parametrize("content, name, words", [
    (b"just text\n", "model.keras", "is not a Keras model file: it is neither a zip"),
    (b"\xff\xd8\xff\xe0 jpeg", "model.keras", "it is a JPEG image"),
    (b"", "model.keras", "the file is empty"),
    (b"PK\x03\x04 not really a zip", "model.keras", "is not a Keras model file"),
    (b"\x89HDF\r\n\x1a\n", "model.h5", "could not be loaded as a Keras model"),
])
def test_a_model_file_that_is_not_keras_says_so(tmp_path, content, name, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ModelFileError, match=words):
        load_model(tmp_path / name)


def test_model_folder_or_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.keras")


def test_write_predictions_lists_skipped_and_clears_stale_list(predicted, tmp_path):
    table, skipped = predicted
    out = tmp_path / "out" / "predictions.parquet"
    written = write_predictions(table, skipped, out)
    assert written == [out, tmp_path / "out" / "predictions.skipped.csv"]
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back.attrs["model_card"]["classes"] == "6class"
    listing = pd.read_csv(written[1])
    assert listing.columns.tolist() == ["id", "file", "path", "code", "reason"]
    assert listing["path"].tolist() == [s["path"] for s in skipped]
    assert write_predictions(table, [], out) == [out] and not written[1].exists()


def test_csv_output_is_csv_and_other_suffixes_are_refused(predicted, tmp_path):
    table, skipped = predicted
    write_predictions(table, skipped, tmp_path / "out.csv")
    back = pd.read_csv(tmp_path / "out.csv")
    assert back["id"].tolist() == table["id"].tolist()
    np.testing.assert_allclose(back[PROBS].to_numpy(), table[PROBS].to_numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"suffix must be .parquet, .csv, .fits \(FITS binary "):
        write_predictions(table, skipped, tmp_path / "out.txt")


def test_greyscale_becomes_three_equal_channels(images):
    rgb, mode = read_rgb(images / "grey.png")
    assert mode == "L" and rgb.shape == (80, 80, 3) and (rgb[..., 0] == rgb[..., 2]).all()


# --- catalogues --------------------------------------------------------------------------------

def write_catalogue(folder, images, extra_rows=()):
    """A Zoobot-style catalogue (relative paths) over copies of the test images, with bad rows."""
    cut = folder / "cutouts"
    cut.mkdir(parents=True, exist_ok=True)
    for name in GOOD + BAD:
        shutil.copy(images / name, cut / name)
    rows = [(f"obj{i}", f"cutouts/{name}") for i, name in enumerate(GOOD + BAD)]
    rows += [("obj_missing", "cutouts/missing.jpg"), ("obj0", "cutouts/galaxy.jpg"),
             ("", "cutouts/grey.png"), ("obj_nofile", ""), *extra_rows]
    frame = pd.DataFrame(rows, columns=["id_str", "file_loc"])
    frame.to_csv(folder / "catalog.csv", index=False)
    return folder / "catalog.csv", frame


def test_catalogue_rows_resolve_against_its_folder_and_reasons_are_counted(images, tmp_path,
                                                                            monkeypatch):
    catalogue, frame = write_catalogue(tmp_path / "survey", images)
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    table = chunks.read_input(catalogue)
    assert table["id"].tolist() == frame["id_str"].tolist()
    assert table["path"].iloc[0] == str((tmp_path / "survey/cutouts/galaxy.jpg").resolve())
    codes = dict(zip(table["id"], table["skip_code"]))
    assert table["skip_code"].tolist()[-3:] == ["duplicate_id", "empty_id", "empty_file"]
    assert codes["obj_missing"] == ""  # missing files are found when read, not here
    assert "first on catalogue row 0" in table["skip_reason"].iloc[-3]


def test_catalogue_without_the_named_columns(images, tmp_path):
    pd.DataFrame({"objid": [1], "path": ["a.jpg"]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(chunks.CatalogError, match=r"no column 'id_str', 'file_loc' \(its "
                                                  r"columns: objid, path\).*--id-column"):
        chunks.read_input(tmp_path / "c.csv")
    table = chunks.read_input(tmp_path / "c.csv", id_column="objid", file_column="path")
    assert table["id"].tolist() == ["1"]
    with pytest.raises(chunks.CatalogError, match="give a .csv or .parquet"):
        chunks.read_input(tmp_path / "c.json") if (tmp_path / "c.json").write_text("{}") else None


def test_parquet_catalogue_keeps_integer_ids_and_sizes(images, tmp_path):
    ids = np.array([587722982272139264, 587722982272139265], np.int64)
    pd.DataFrame({"id_str": ids, "file_loc": [str(images / "galaxy.jpg")] * 2,
                  "r90": [30.0, None]}).to_parquet(tmp_path / "c.parquet")
    table = chunks.read_input(tmp_path / "c.parquet", size_column="r90", pixel_scale=0.5)
    assert table["id"].tolist() == [str(i) for i in ids]
    assert table["size"].iloc[0] == 60.0 and table["skip_code"].tolist() == ["", "no_size"]


def test_chunks_are_deterministic_and_appending_keeps_earlier_ones(images, tmp_path):
    catalogue, frame = write_catalogue(tmp_path, images)
    first = chunks.plan_chunks(chunks.read_input(catalogue), 4)
    again = chunks.plan_chunks(chunks.read_input(catalogue), 4)
    assert first == again and [c["chunk"] for c in first["chunks"]] == ["000000", "000001",
                                                                        "000002"]
    longer = pd.concat([frame, pd.DataFrame({"id_str": ["new"], "file_loc": ["cutouts/grey.png"]})])
    longer.to_csv(catalogue, index=False)
    grown = chunks.plan_chunks(chunks.read_input(catalogue), 4)
    assert grown["chunks"][:2] == first["chunks"][:2]
    assert grown["chunks"][2]["fingerprint"] != first["chunks"][2]["fingerprint"]


def run_cli(*argv):
    return main(["predict", "-q", *map(str, argv)])


def chunk_mtimes(out):
    folder = out.with_suffix("") / "chunks"
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.parquet"))}


def test_cli_chunks_resume_and_equal_the_single_job(model_path, images, tmp_path, capsys):
    catalogue, frame = write_catalogue(tmp_path / "survey", images)
    single = tmp_path / "single.parquet"
    assert run_cli("--catalog", catalogue, "--model", model_path, "-o", single) == 0
    printed = capsys.readouterr().out
    assert "skipped 6 unreadable or missing inputs" in printed and "the file does not exist" in \
        printed
    out = tmp_path / "chunked.parquet"
    assert run_cli("--catalog", catalogue, "--model", model_path, "-o", out,
                   "--chunk-size", "4") == 0
    assert "3 chunks (3 predicted now, 0 already finished)" in capsys.readouterr().out
    gathered = pd.read_parquet(out)  # the dataset folder reads as one table
    pd.testing.assert_frame_equal(gathered, pd.read_parquet(single))
    assert sorted(p.name for p in out.iterdir()) == [f"part-00000{i}.parquet" for i in range(3)]
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["catalogue_rows"] == len(frame) == summary["predicted"] + summary["skipped"]
    assert summary["reconciles"] and summary["predicted"] == len(GOOD)
    assert {s["code"]: s["count"] for s in summary["skipped_by_reason"]} == {
        "unreadable": 2, "missing_file": 1, "duplicate_id": 1, "empty_id": 1, "empty_file": 1}
    assert sum(c["count"] for c in summary["classes"]) == len(GOOD)
    assert sum(map(sum, summary["confidence"]["counts"].values())) == len(GOOD)
    assert out.with_suffix(".confidence.png").stat().st_size > 1000
    assert "reconciled" in out.with_suffix(".summary.md").read_text()
    skipped = pd.read_csv(out.with_suffix(".skipped.csv"), keep_default_na=False)
    assert len(skipped) == 6 and skipped["reason"].str.len().min() > 10

    before = chunk_mtimes(out)  # a rerun finds every chunk finished
    assert run_cli("--catalog", catalogue, "--model", model_path, "-o", out,
                   "--chunk-size", "4") == 0
    assert "(0 predicted now, 3 already finished)" in capsys.readouterr().out
    assert chunk_mtimes(out) == before
    with open(catalogue, "a") as handle:  # a new row at the end: only the last chunk changes
        handle.write("obj_new,cutouts/upper.JPEG\n")
    assert run_cli("--catalog", catalogue, "--model", model_path, "-o", out,
                   "--chunk-size", "4") == 0
    after = chunk_mtimes(out)
    assert {k for k in after if after[k] != before.get(k)} == {"000002.parquet"}
    assert pd.read_parquet(out)["id"].iloc[-1] == "obj_new"
    os.remove(out.with_suffix("") / "chunks" / "000000.parquet")  # lost (crashed) chunk
    assert run_cli("--catalog", catalogue, "--model", model_path, "-o", out,
                   "--chunk-size", "4", "--tta", "2") == 0  # other settings: all redone
    assert "(3 predicted now, 0 already finished)" in capsys.readouterr().out
    assert "std_1" in pd.read_parquet(out).columns


def test_gather_refuses_chunks_that_do_not_match_the_plan(model_path, images, tmp_path):
    catalogue, _ = write_catalogue(tmp_path, images)
    out = tmp_path / "p.parquet"
    predictor = Predictor(model_path)
    settings = chunks.job_settings({"catalog": str(catalogue), "chunk_size": 5})
    chunks.run_chunked(predictor, catalogue, settings, out)
    paths = chunks.layout(out)
    plan = chunks.read_plan(paths["plan"])
    files = [chunks.chunk_path(paths, e["chunk"]) for e in plan["chunks"]]
    stale = dict(plan, chunks=[dict(plan["chunks"][0], fingerprint="0" * 64)]
                 + plan["chunks"][1:])
    with pytest.raises(chunks.ChunkError, match="other catalogue rows"):
        chunks.gather(stale, files, paths["dataset"], paths["skipped"], paths["summary"])
    with pytest.raises(chunks.ChunkError, match="chunk files for a plan"):
        chunks.gather(plan, files[:-1], paths["dataset"], paths["skipped"], paths["summary"])


def test_folder_in_chunks_and_an_all_skipped_chunk(model_path, images, tmp_path):
    out = tmp_path / "folder.parquet"
    predictor = Predictor(model_path)
    settings = chunks.job_settings({"images": str(images), "chunk_size": 2})
    summary = chunks.run_chunked(predictor, images, settings, out)
    assert summary["predicted"] == len(GOOD) and summary["skipped"] == len(BAD)
    table = pd.read_parquet(out)  # 'corrupt.jpg' + 'galaxy.jpg' ... sorted by name
    assert table["id"].tolist() == sorted(GOOD, key=str)
    assert table["row"].is_monotonic_increasing


def test_cli_bad_inputs_exit_2_with_a_message(model_path, images, tmp_path, capsys):
    model = str(model_path)
    cases = [
        (["--model", model, str(images), "-o", str(tmp_path / "p.txt")], "suffix must be"),
        (["--model", model, str(images), "-o", str(tmp_path / "p.csv"), "--chunk-size", "2"],
         "chunked predictions are a parquet dataset"),
        (["--model", model, "-o", str(tmp_path / "p.parquet")], "nothing to predict"),
        (["--model", str(images / "galaxy.jpg"), str(images), "-o", str(tmp_path / "p.parquet")],
         "is not a Keras model file: it is a JPEG image"),
        (["--model", model, "--catalog", str(images / "readme.txt"), "-o",
          str(tmp_path / "p.parquet")], "could not be read|give a .csv"),
        (["--model", model, str(images / "galaxy.jpg"), "--chunk-size", "3", "-o",
          str(tmp_path / "p.parquet")], "--chunk-size needs --catalog"),
        (["--model", model, str(images), "--tta", "12", "-o", str(tmp_path / "p.parquet")],
         "tta must be 1..8"),
        (["--model", model, str(images), "--fits-bands", "x", "-o", str(tmp_path / "p.parquet")],
         "--fits-bands 'x'"),
    ]
    for argv, words in cases:
        assert main(["predict", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("spiralarms predict: error: ") and "Traceback" not in err
        assert pd.Series([err]).str.contains(words).item(), (words, err)


def test_cli_csv_output_and_fits_options(model_path, images, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert run_cli(images, "--model", model_path, "-o", out, "--stretch", "linear",
                   "--percentiles", "1,99", "--fits-bands", "0") == 0
    assert len(pd.read_csv(out)) == len(GOOD)
    assert (tmp_path / "p.skipped.csv").exists()


def test_schema_defaults_are_the_code_defaults():
    from spiralarms.config_reference import SCHEMA

    spec = yaml.safe_load(SCHEMA.read_text())["properties"]["predict"]["additionalProperties"]
    defaults = {k: v.get("default") for k, v in spec["properties"].items()
                if k not in ("model", "cutouts", *chunks.SOURCES)}
    assert {**defaults, "fits": {}} == chunks.DEFAULTS
    from spiralarms.acquire.cutouts import CUTOUT_DEFAULTS, fetch_cutouts

    cutout_defaults = {k: v["default"]
                       for k, v in spec["properties"]["cutouts"]["properties"].items()}
    # the positions' column names go to read_positions, the rest to CutoutOptions
    assert cutout_defaults == {**CUTOUT_DEFAULTS, "ra_column": "ra", "dec_column": "dec"}
    signature = inspect.signature(fetch_cutouts).parameters
    assert (signature["ra_column"].default, signature["dec_column"].default) == ("ra", "dec")
    from spiralarms.predict.fits import FitsOptions

    fits_defaults = {k: v["default"] for k, v in spec["properties"]["fits"]["properties"].items()}
    assert fits_defaults == FitsOptions().as_dict()


def test_a_zero_byte_image_has_the_same_reason_in_predict_and_in_shards(model_path, images,
                                                                         tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(images / "galaxy.jpg", folder / "1.jpg")
    (folder / "2.jpg").write_bytes(b"")
    _, skipped = predict_images(model_path, [folder])
    assert [(s["id"], s["code"]) for s in skipped] == [("2.jpg", "unreadable")]
    labels = pd.DataFrame([{"dr7objid": i, "asset_id": i, "arm_class": 1, "arm_fraction": 0.9,
                            "subset": "test", "image": f"{i}.jpg"} for i in (1, 2)])
    write_shards(labels, folder, tmp_path / "shards", workers=1)
    excluded = pd.read_csv(tmp_path / "shards" / EXCLUDED)
    assert excluded["reason"].tolist() == [skipped[0]["reason"]] == ["empty file (0 bytes)"]


def test_cli_counts_the_images_it_predicted_and_those_it_skipped(model_path, images, tmp_path,
                                                                  capsys, caplog):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("galaxy.jpg", "grey.png", "corrupt.jpg"):
        shutil.copy(images / name, folder / name)
    (folder / "empty.png").write_bytes(b"")
    with caplog.at_level("INFO", logger="spiralarms.predict.predictor"):
        assert main(["predict", "--model", str(model_path), str(folder), "-o",
                     str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 predictions" in out and "skipped 2 " in out
    assert "predicted 2 images; skipped 2 that could not be read" in caplog.text
    assert "predicting 4" not in caplog.text and "predicted 4" not in caplog.text
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


def test_cli_refuses_an_output_folder_it_cannot_write_before_reading_images(
        model_path, images, tmp_path, capsys, caplog):
    (tmp_path / "a_file").write_text("not a folder")
    cases = [(read_only_folder(tmp_path) / "p.csv", "not writable"),
             (tmp_path / "a_file" / "p.csv", "is a file, not a folder")]
    for out, words in cases:
        with caplog.at_level("INFO"):
            assert main(["predict", "--model", str(model_path), str(images), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert words in err and str(out.parent) in err and "Traceback" not in err
        assert "reading" not in caplog.text  # refused before the first image
        caplog.clear()


def test_cli_on_a_full_disk_names_the_output_and_leaves_no_partial_result(model_path, images,
                                                                          tmp_path, capsys):
    with full_folder(tmp_path) as full:
        for name in ("p.csv", "p.parquet"):
            assert main(["predict", "-q", "--model", str(model_path), str(images), "-o",
                         str(full / name)]) == 2
            err = capsys.readouterr().err
            assert f"cannot write {full / name}: no space left on device" in err
        assert [p.name for p in full.iterdir()] == [".ballast"]


@pytest.mark.parametrize("value", ["-1", "0"])
def test_cli_max_upscale_out_of_range_is_refused_at_parsing(model_path, images, tmp_path, capsys,
                                                             value):
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--model", str(model_path), str(images), "-o", str(tmp_path / "p.csv"),
              f"--max-upscale={value}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--max-upscale must be a number greater than 0" in err and repr(value) in err


def test_cli_a_missing_input_folder_is_reported_missing(model_path, tmp_path, capsys):
    missing = tmp_path / "my_cutouts"
    for extra in ([], ["--chunk-size", "2"]):
        out = tmp_path / "p.parquet"
        assert main(["predict", "--model", str(model_path), str(missing), "-o", str(out),
                     *extra]) == 2
        err = capsys.readouterr().err
        assert f"{missing} does not exist" in err and "no images" not in err
    assert main(["predict", "--model", str(model_path), "--catalog", str(tmp_path / "s.csv"),
                 "-o", str(tmp_path / "p.parquet")]) == 2
    assert f"catalogue {tmp_path / 's.csv'} does not exist" in capsys.readouterr().err


def test_readme_lists_the_columns_written_for_folder_and_catalogue_input(predicted, tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    output = " ".join(readme[readme.index("**Output**"):readme.index("**In chunks**")].split())
    table, skipped = predicted
    written = pd.read_csv(write_predictions(table, skipped, tmp_path / "p.csv")[0]).columns
    for column in written:
        assert f"`{column}`" in output or column.startswith("prob_"), column
    assert "`row` (" in output and "row" not in written  # row: catalogue input only
    assert f"`{', '.join(SKIPPED_COLUMNS)}`" in output
    listing = pd.read_csv(tmp_path / "p.skipped.csv").columns
    assert f"a plain folder: `{', '.join(listing)}`" in output
