"""Prediction on new images: any size and mode, bad files skipped, training preprocessing."""

import shutil

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image
from tiny_models import BAD, GOOD, IMAGE_SIZE

from spiralarms import dataset
from spiralarms.predict import (
    ModelCardError,
    NoImagesError,
    class_counts,
    model_input,
    predict_images,
    read_rgb,
    to_rgb,
    write_predictions,
)
from spiralarms.variants import VARIANTS


@pytest.fixture(scope="module")
def predicted(model_path, images):
    return predict_images(model_path, [images], batch_size=2)


def test_folder_gives_a_row_per_readable_image(predicted, images):
    table, _ = predicted
    assert sorted(table["path"]) == sorted(str(images / name) for name in GOOD)
    by_name = table.set_index(table["path"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert by_name.loc["rgba.png", ["width", "height", "mode"]].tolist() == [100, 60, "RGBA"]
    assert by_name.loc["galaxy.jpg", ["width", "height", "mode"]].tolist() == [424, 424, "RGB"]
    assert by_name.loc["grey.png", "mode"] == "L"
    assert by_name.loc["palette.png", "mode"] == "P"


def test_broken_files_are_skipped_with_reasons(predicted, images):
    _, skipped = predicted
    assert sorted(s["path"] for s in skipped) == sorted(str(images / name) for name in BAD)
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in skipped}
    assert "truncated" in reasons["corrupt.jpg"]
    assert "UnidentifiedImageError" in reasons["notes.png"]


def test_probabilities_and_names_are_consistent(predicted):
    table, _ = predicted
    names = list(VARIANTS["6class"].class_names)
    proba = table[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(table["p_max"], proba.max(axis=1))
    np.testing.assert_array_equal(table["pred_index"], proba.argmax(axis=1))
    assert table["pred_name"].tolist() == [names[i] for i in table["pred_index"]]
    long = ["1 arm", "2 arms", "3 arms", "4 arms", "5+ arms", "can't tell"]
    assert table["pred_label"].tolist() == [long[i] for i in table["pred_index"]]
    counts = class_counts(table)
    assert counts["count"].sum() == len(table) and counts["class"].tolist() == names


@pytest.mark.parametrize("model", ["b0", "v2m"])
def test_preprocessing_is_the_training_pipeline(images, model):
    jpeg = (images / "galaxy.jpg").read_bytes()
    card = {"model": model, "image_size": 48, "crop_size": 224}
    training = dataset.decode(jpeg, model, 48, 224).numpy()
    same_pixels = tf.io.decode_jpeg(jpeg, channels=3).numpy()
    np.testing.assert_array_equal(model_input(same_pixels, card), training)
    # and predict's reader hands preprocess those very pixels, not PIL's (differently rounded) ones
    pixels, _ = read_rgb(images / "galaxy.jpg")
    np.testing.assert_array_equal(pixels, same_pixels)
    pil = np.asarray(Image.open(images / "galaxy.jpg").convert("RGB")).astype(int)
    print(f"PIL vs tf.io.decode_jpeg: max difference {np.abs(pil - same_pixels).max()} levels")


def test_prediction_sees_what_training_sees(model_path, images, tmp_path):
    """A lossless copy of the decoded JPEG gives the probabilities of the training-path tensor."""
    jpeg = (images / "galaxy.jpg").read_bytes()
    Image.fromarray(tf.io.decode_jpeg(jpeg, channels=3).numpy()).save(tmp_path / "same.png")
    table, _ = predict_images(model_path, [tmp_path / "same.png"])
    model = keras.models.load_model(model_path, safe_mode=True)
    expected = model.predict_on_batch(dataset.decode(jpeg, "b0", IMAGE_SIZE, 224)[None])
    names = VARIANTS["6class"].class_names
    np.testing.assert_array_equal(table[[f"prob_{n}" for n in names]].to_numpy(), expected)


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


def test_classes_that_do_not_fit_the_network_are_refused(model_path, images):
    with pytest.raises(ModelCardError, match="network outputs 6"):
        predict_images(model_path, [images / "galaxy.jpg"], card={"classes": "merge34"})


def test_no_images_is_an_error(model_path, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NoImagesError, match="no images"):
        predict_images(model_path, [tmp_path, tmp_path / "missing.jpg"])


def test_write_predictions_lists_skipped_and_clears_stale_list(predicted, tmp_path):
    table, skipped = predicted
    out = tmp_path / "out" / "predictions.parquet"
    written = write_predictions(table, skipped, out)
    assert written == [out, tmp_path / "out" / "predictions.skipped.csv"]
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, table, check_like=False)
    assert back.attrs["model_card"]["classes"] == "6class"
    assert pd.read_csv(written[1])["path"].tolist() == [s["path"] for s in skipped]
    assert write_predictions(table, [], out) == [out] and not written[1].exists()


def test_greyscale_becomes_three_equal_channels(images):
    rgb, mode = read_rgb(images / "grey.png")
    assert mode == "L" and rgb.shape == (80, 80, 3) and (rgb[..., 0] == rgb[..., 2]).all()
