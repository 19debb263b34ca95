"""FITS cut-outs: written with astropy (1 and 3 bands, NaN, 16-bit, big-endian), checked against a
stretch computed by hand, then through the prediction pipeline to the model input."""

import numpy as np
import pytest
import tensorflow as tf
from astropy.io import fits

from spiralarms.data.images import preprocess
from spiralarms.predict.fits import FitsOptions, SkipImage, read_fits, read_planes, stretch
from spiralarms.predict.predictor import Predictor, predict_images

RNG = np.random.default_rng(5)


def galaxy(size=424, seed=0):
    """Sky noise around an exponential disc, in counts (float64)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    return 2000.0 * np.exp(-np.hypot(x, y) / (size / 10)) + rng.normal(100, 5, (size, size))


def hand_asinh(data, a=0.1, percentiles=(0.5, 99.5)):
    """The documented stretch, computed without the module: (bands, y, x) -> (y, x, 3)."""
    finite = data[np.isfinite(data)]
    low, high = np.percentile(finite, percentiles)
    x = np.clip((np.where(np.isfinite(data), data, low) - low) / (high - low), 0, 1)
    y = np.arcsinh(x / a) / np.arcsinh(1 / a)
    image = np.moveaxis(y[:, ::-1, :], 0, -1)  # FITS row 0 is the bottom row
    return np.repeat(image, 3, -1) if image.shape[-1] == 1 else image


def write(path, data, **header):
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(path, overwrite=True)
    return path


def test_one_band_with_nans_matches_the_hand_computed_stretch(tmp_path):
    data = galaxy().astype(">f4")  # FITS is big-endian on disk; astropy hands it back so
    data[10:20, 30:40] = np.nan
    data[0, 0] = np.inf
    path = write(tmp_path / "one.fits", data)
    image, mode = read_fits(path)
    assert mode == "FITS 1 band" and image.shape == (424, 424, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, hand_asinh(data.astype(np.float64)[None]), atol=1e-6)
    assert image[424 - 15, 35, 0] == 0.0  # NaN -> the low value -> black, flipped to the bottom
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


def test_model_input_is_the_training_preprocessing_of_the_stretch(model_path, tmp_path):
    data = galaxy(300, 1)
    path = write(tmp_path / "g.fits", data.astype(np.float32))
    predictor = Predictor(model_path)
    batch = next(iter(predictor.dataset([path], [np.nan])))
    expected = preprocess(tf.constant(hand_asinh(data.astype(np.float32).astype(np.float64)[None])
                                      .astype(np.float32)), "b0", 32, 224).numpy()
    np.testing.assert_allclose(batch["image"].numpy()[0], expected, atol=1e-6)
    assert batch["mode"].numpy()[0] == b"FITS 1 band"
    # the reference path outside tf.data gives the same input
    framed, width, height, _ = predictor.load(path)
    np.testing.assert_allclose(predictor.model_input(framed), expected, atol=1e-6)
    assert (width, height) == (300, 300)


def test_three_bands_in_the_stated_order_16_bit(tmp_path):
    cube = np.stack([galaxy(128, s) * f for s, f in enumerate((0.5, 1.0, 2.0))])
    counts = np.clip(cube, 0, 65535).astype(np.uint16)  # BITPIX 16 with BZERO 32768
    path = write(tmp_path / "grz.fits", counts)
    with fits.open(path) as hdus:
        assert hdus[0].header["BITPIX"] == 16 and hdus[0].header["BZERO"] == 32768
    image, mode = read_fits(path, FitsOptions(bands=(2, 1, 0)))
    assert mode == "FITS bands 2,1,0"
    np.testing.assert_allclose(image, hand_asinh(counts[[2, 1, 0]].astype(np.float64)), atol=1e-6)
    assert image[..., 0].mean() > image[..., 2].mean()  # R is the brightest plane (z)


def test_linear_zscale_and_manual_limits(tmp_path):
    data = galaxy(64, 2)
    path = write(tmp_path / "l.fits", data)
    linear, _ = read_fits(path, FitsOptions(stretch="linear", low=100.0, high=1100.0))
    np.testing.assert_allclose(linear[..., 0], np.clip((data[::-1] - 100) / 1000, 0, 1),
                               atol=1e-6)
    from astropy.visualization import ZScaleInterval

    low, high = ZScaleInterval().get_limits(data[::-1])  # sampled as displayed
    zscale, _ = read_fits(path, FitsOptions(stretch="zscale"))
    np.testing.assert_allclose(zscale[..., 1], np.clip((data[::-1] - low) / (high - low), 0, 1),
                               atol=1e-6)
    soft, _ = read_fits(path, FitsOptions(asinh_a=0.02))
    hard, _ = read_fits(path, FitsOptions(asinh_a=1.0))
    assert soft.mean() > hard.mean()  # smaller a lifts the faint outskirts


def test_hdu_choice_and_files_without_image_data(tmp_path):
    image = fits.ImageHDU(galaxy(32, 3), name="SCI")
    table = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.zeros(3))])
    fits.HDUList([fits.PrimaryHDU(), table, image]).writeto(tmp_path / "ext.fits")
    planes, _ = read_planes(tmp_path / "ext.fits")  # first HDU holding an image: SCI
    assert planes.shape == (1, 32, 32)
    assert read_planes(tmp_path / "ext.fits", FitsOptions(hdu="SCI"))[0].shape == (1, 32, 32)
    with pytest.raises(SkipImage, match="HDU 0 holds no image data; HDU 2 holds an image") as e:
        read_planes(tmp_path / "ext.fits", FitsOptions(hdu=0))
    assert e.value.code == "no_image_data"
    with pytest.raises(SkipImage, match="no HDU 'NOPE'"):
        read_planes(tmp_path / "ext.fits", FitsOptions(hdu="NOPE"))
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(SkipImage, match="no HDU of this FITS file holds image data") as e:
        read_planes(tmp_path / "table.fits")
    assert e.value.code == "no_image_data"


@pytest.mark.parametrize("data, code, words", [
    (np.full((16, 16), np.nan), "no_finite_pixels", "every pixel is NaN or infinite"),
    (np.full((16, 16), 7.0), "blank", "every finite pixel is 7"),
    (np.zeros((5, 16, 16)), "bad_bands", "has 5 bands; choose 1 or 3"),
    (np.zeros((2, 3, 16, 16)), "bad_bands", r"4-D array \(2, 3, 16, 16\); expected an image"),
    (np.zeros((16,)), "no_image_data", "no HDU of this FITS file holds image data"),
])
def test_unusable_data_is_skipped_with_a_plain_reason(tmp_path, data, code, words):
    path = write(tmp_path / "bad.fits", data)
    with pytest.raises(SkipImage, match=words) as error:
        read_fits(path)
    assert error.value.code == code


def test_band_choice_beyond_the_cube_and_option_checks(tmp_path):
    path = write(tmp_path / "two.fits", np.stack([galaxy(16, 4)] * 2))
    with pytest.raises(SkipImage, match=r"asks for plane 2 but HDU 0 has 2 plane"):
        read_fits(path, FitsOptions(bands=(2,)))
    assert read_fits(path, FitsOptions(bands=(1,)))[1] == "FITS 1 band"
    for bad, words in [({"stretch": "log"}, "not one of"), ({"bands": [0, 1]}, "1 plane"),
                       ({"percentiles": [90, 10]}, "low < high"), ({"asinh_a": 0}, "> 0"),
                       ({"low": 5, "high": 1}, "above low"), ({"gamma": 2}, "unknown fits")]:
        with pytest.raises(ValueError, match=words):
            FitsOptions.from_dict(bad)


def test_orientation_row_zero_is_the_bottom(tmp_path):
    data = np.zeros((8, 8))
    data[0, 0] = 1.0  # first row of the FITS array: the bottom-left pixel as displayed
    image, _ = read_fits(write(tmp_path / "o.fits", data), FitsOptions(stretch="linear"))
    assert image[7, 0, 0] == 1.0 and image[0, 0, 0] == 0.0


def test_stretch_is_joint_over_bands():
    planes = np.stack([np.linspace(0, 1, 100).reshape(10, 10), np.linspace(0, 2, 100)
                       .reshape(10, 10), np.linspace(0, 4, 100).reshape(10, 10)])
    out = stretch(planes, FitsOptions(stretch="linear", percentiles=(0, 100)))
    np.testing.assert_allclose(out[:, -1, -1], [0.25, 0.5, 1.0])  # colour ratios kept


def test_fits_folder_through_prediction_with_bad_files(model_path, tmp_path):
    write(tmp_path / "a.fits", galaxy(200, 5).astype(np.float32))
    write(tmp_path / "b.fit", np.stack([galaxy(200, s) for s in (6, 7, 8)]).astype(">i4"))
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    (tmp_path / "text.fits").write_text("SIMPLE = nonsense\n")
    write(tmp_path / "nan.fits", np.full((50, 50), np.nan))
    table, skipped = predict_images(model_path, [tmp_path])
    assert sorted(table["id"]) == ["a.fits", "b.fit"]
    assert set(table["mode"]) == {"FITS 1 band", "FITS bands 0,1,2"}
    reasons = {s["id"]: (s["code"], s["reason"]) for s in skipped}
    assert reasons["empty.fits"][0] == "no_image_data"
    assert reasons["text.fits"][0] == "unreadable"
    assert reasons["text.fits"][1].startswith("not a readable FITS file")
    assert reasons["nan.fits"] == ("no_finite_pixels", "every pixel is NaN or infinite")
