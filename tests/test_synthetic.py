"""The synthetic GZ2 dataset: real file formats, determinism, and votes the paper's selection can use."""

import filecmp

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spiralarms import gz2
from spiralarms.gz2.selection import select
from spiralarms.synthetic import sdss
from spiralarms.synthetic.generate import (
    CATALOG_FILE,
    IMAGE_DIR,
    MAPPING_FILE,
    TRUTH_FILE,
    read_truth,
    synthesize,
)
from spiralarms.synthetic.render import (
    KINDS,
    NON_TARGET_KINDS,
    draw_params,
    expose,
    measure_r90,
    observe_galaxy,
    render_from_params,
    render_galaxy,
)
from spiralarms.synthetic.sheets import contact_sheet
from spiralarms.synthetic.votes import assign_scenarios, catalogue_votes

PER_CLASS = [5, 5, 5, 5, 5, 5]
N_MISSING = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gz2")
    summary = synthesize(out, PER_CLASS, n_elliptical=3, n_edgeon=3, seed=11,
                         n_missing_images=N_MISSING, progress=False)
    return out, summary


def _catalogue(out):
    return pd.read_csv(out / CATALOG_FILE)


def test_catalogue_has_the_233_real_columns_in_order(dataset):
    out, summary = dataset
    catalogue = _catalogue(out)
    assert list(catalogue.columns) == gz2.CATALOG_COLUMNS
    assert len(catalogue) == summary["n_galaxies"] == sum(PER_CLASS) + 6


def test_ids_are_unique_int64_beyond_float_precision_and_round_trip(dataset):
    out, _ = dataset
    catalogue = _catalogue(out)
    as_text = pd.read_csv(out / CATALOG_FILE, dtype=str)
    for column in ["specobjid", "dr8objid", "dr7objid"]:
        assert catalogue[column].dtype == np.int64
        assert catalogue[column].is_unique
        # written as integers, not floats: the text is exactly the int64 value
        assert (as_text[column] == catalogue[column].astype(str)).all()
    assert (catalogue["specobjid"] > 2**53).all() and (catalogue["dr8objid"] > 2**53).all()
    assert catalogue["dr7objid"].between(5.8e17, 5.9e17).all()


def test_mapping_has_real_columns_and_must_be_joined_by_key(dataset):
    out, _ = dataset
    catalogue, mapping = _catalogue(out), pd.read_csv(out / MAPPING_FILE)
    assert list(mapping.columns) == gz2.MAPPING_FILE_COLUMNS
    assert mapping["asset_id"].is_unique
    assert sorted(mapping["objid"]) == sorted(catalogue["dr7objid"])
    assert list(mapping["objid"]) != list(catalogue["dr7objid"])  # positional join would be wrong


def test_images_are_424_rgb_jpegs_and_missing_ones_have_only_a_mapping_row(dataset):
    out, summary = dataset
    truth = read_truth(out)
    files = sorted((out / IMAGE_DIR).glob("*.jpg"))
    assert len(files) == summary["n_images"] == len(truth) - N_MISSING
    for path in files[:5]:
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (424, 424), "RGB")
    missing = truth.loc[truth["has_image"] == 0, "asset_id"]
    assert len(missing) == N_MISSING
    assert not any((out / IMAGE_DIR / f"{a}.jpg").exists() for a in missing)
    assert set(missing) <= set(pd.read_csv(out / MAPPING_FILE)["asset_id"])


def test_truth_lists_every_galaxy_with_its_kind(dataset):
    out, _ = dataset
    truth = read_truth(out)
    assert truth["kind"].value_counts().to_dict() == {
        "1": 5, "2": 5, "3": 5, "4": 5, "5+": 5, "?": 5, "elliptical": 3, "edgeon": 3}
    for column in ["asset_id", "dr7objid", "kind", "arm_class", "n_arms", "has_image", "mag_r",
                   "r90_arcsec", "psf_fwhm_arcsec", "arm_snr", "psf_arm_spacings",
                   "inclination_deg", "bar", "pitch_deg", "flocculent"]:
        assert column in truth.columns and truth[column].notna().all(), column
    assert set(truth["dr7objid"]) == set(_catalogue(out)["dr7objid"])
    spirals = truth[truth["arm_class"].between(0, 3)]
    assert (spirals["n_arms"] == spirals["arm_class"] + 1).all()
    assert truth.loc[truth["kind"] == "5+", "n_arms"].between(5, 7).all()


def test_vote_columns_are_consistent_within_each_task(dataset):
    out, _ = dataset
    catalogue = _catalogue(out)
    task_counts = []
    for task, answers in gz2.TASKS.items():
        columns = [f"{task}_{a}" for a in answers]
        counts = catalogue[[f"{c}_count" for c in columns]].to_numpy()
        task_counts.append(counts.sum(axis=1))
        voted = counts.sum(axis=1) > 0
        for suffix in ["fraction", "weighted_fraction", "debiased"]:
            sums = catalogue[[f"{c}_{suffix}" for c in columns]].to_numpy().sum(axis=1)
            np.testing.assert_allclose(sums[voted], 1.0, atol=0.005)  # 3-decimal rounding
        fractions = catalogue[[f"{c}_fraction" for c in columns]].to_numpy()[voted]
        shares = counts[voted] / counts[voted].sum(axis=1, keepdims=True)
        np.testing.assert_allclose(fractions, shares, atol=0.0006)
        flags = catalogue[[f"{c}_flag" for c in columns]].to_numpy()
        debiased = catalogue[[f"{c}_debiased" for c in columns]].to_numpy()
        assert ((debiased >= 0.8) == (flags == 1)).all()
    assert (np.sum(task_counts, axis=0) == catalogue["total_votes"]).all()
    assert (catalogue["total_classifications"] == catalogue[
        [f"t01_smooth_or_features_{a}_count" for a in gz2.TASKS["t01_smooth_or_features"]]
    ].sum(axis=1)).all()


@pytest.fixture(scope="module")
def votes_only():
    """Catalogue votes of 40 rendered galaxies per kind (the votes need what each image shows),
    with the ids and image-id map the selection joins on, and the truth."""
    rows, kinds, measured = [], [], []
    draws = [(kind, i) for kind in KINDS for i in range(40)]
    scenarios = assign_scenarios([kind for kind, _ in draws], np.random.default_rng(4))
    for (kind, i), scenario in zip(draws, scenarios):
        rng = np.random.default_rng([5, i, KINDS.index(kind)])
        params = draw_params(kind, rng, size=212)
        render_from_params(params, rng)
        row, _ = catalogue_votes(kind, params, np.random.default_rng([6, len(rows)]), scenario)
        rows.append(row)
        kinds.append(str(kind))
        measured.append(params)
    catalogue = pd.DataFrame(rows)
    catalogue.insert(0, "dr7objid", np.arange(len(catalogue), dtype=np.int64) + 587_722_981_736_120_347)
    catalogue.insert(0, "specobjid", np.arange(len(catalogue), dtype=np.int64) * 7 + 10**18)
    mapping = pd.DataFrame({"objid": catalogue["dr7objid"], "asset_id": np.arange(len(catalogue))})
    return catalogue, mapping, pd.Series(kinds), pd.DataFrame(measured)


def paper_selection(catalogue, mapping):
    """(labels, report) of the package's selection with the paper's cuts and vote chain, without
    the per-class cap so that every selected galaxy is labelled."""
    return select(catalogue, mapping, image_exists=None, settings={"cap": None})


def test_paper_selection_keeps_every_arm_class_and_rejects_non_spirals(votes_only):
    catalogue, mapping, kinds, _ = votes_only
    labels, _ = paper_selection(catalogue, mapping)
    kind_of = dict(zip(catalogue["dr7objid"], kinds))
    labelled_kind = labels["dr7objid"].map(kind_of)
    for arm_class in range(6):
        correct = ((labelled_kind == str(arm_class)) & (labels["arm_class"] == arm_class)).sum()
        # the paper's cuts and clean flag keep a good share of every class, not all of it
        assert 0.35 <= correct / (kinds == str(arm_class)).sum() <= 0.97, (arm_class, correct)
    assert not labelled_kind.isin(list(NON_TARGET_KINDS)).any()
    countable = labelled_kind.isin([str(c) for c in range(5)]) & (labels["arm_class"] < 5)
    agree = (labels.loc[countable, "arm_class"].astype(str) == labelled_kind[countable]).mean()
    assert agree > 0.9  # where volunteers counted, they mostly counted right


def test_paper_selection_rejects_some_spirals_for_every_reason(votes_only):
    catalogue, mapping, kinds, _ = votes_only
    spirals = kinds.isin([str(c) for c in range(6)]).to_numpy()
    labels, report = paper_selection(catalogue[spirals], mapping[spirals])
    for step in ["features_cut", "not_edgeon_cut", "spiral_cut", "vote_cut",
                 "arm_flag_not_clean"]:
        assert report["excluded"][step] > 0, f"no spiral rejected by {step}: {report['excluded']}"
    truth = labels["dr7objid"].map(dict(zip(catalogue["dr7objid"], kinds))).astype(int)
    wrong = (labels["arm_class"] != truth).sum()
    assert 0 < wrong < 0.15 * len(labels)  # a few miscounts and unseen arms, as in GZ2


def test_cant_tell_votes_rise_as_arm_snr_falls():
    """The same two-armed spiral, ever fainter: its arms sink into the noise and volunteers
    answer "can't tell" more and more."""
    base = draw_params(1, np.random.default_rng(12), size=212)
    base.update(inclination_deg=20.0, r90_model_arcsec=14.0, n_stars=0, companion=0)
    snr, cant = [], []
    for mag in (13.5, 15.5, 17.0, 18.5):
        params = dict(base, mag_r=mag)
        render_from_params(params, np.random.default_rng(3))
        shares = [catalogue_votes(1, params, np.random.default_rng([8, k]), "clean")[0][
            "t11_arms_number_a37_cant_tell_fraction"] for k in range(15)]
        snr.append(params["arm_snr"])
        cant.append(float(np.mean(shares)))
    assert snr == sorted(snr, reverse=True), snr
    assert cant == sorted(cant), (snr, cant)
    assert cant[0] < 0.15 and cant[-1] > 0.5, (snr, cant)


def test_same_seed_gives_identical_files_whatever_the_number_of_workers(tmp_path):
    args = {"n_per_class": [2, 1, 1, 1, 1, 1], "n_elliptical": 1, "n_edgeon": 1, "seed": 4,
            "n_missing_images": 1, "progress": False}
    synthesize(tmp_path / "a", workers=1, **args)
    synthesize(tmp_path / "b", workers=2, **args)
    names = [CATALOG_FILE, MAPPING_FILE, TRUTH_FILE] + [
        f"{IMAGE_DIR}/{p.name}" for p in (tmp_path / "a" / IMAGE_DIR).glob("*.jpg")]
    assert len(names) == 3 + 8
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    synthesize(tmp_path / "c", workers=1, **{**args, "seed": 5})
    assert not filecmp.cmp(tmp_path / "a" / CATALOG_FILE, tmp_path / "c" / CATALOG_FILE,
                           shallow=False)


@pytest.mark.parametrize("kind", KINDS)
def test_render_galaxy_puts_a_galaxy_in_the_centre_of_the_frame(kind):
    image = render_galaxy(kind, np.random.default_rng(3))
    assert image.shape == (424, 424, 3) and image.dtype == np.uint8
    grey = image.mean(axis=2)
    assert grey[192:232, 192:232].mean() > grey[:60, :60].mean() + 40


def test_render_galaxy_scales_to_other_frame_sizes():
    assert render_galaxy(1, np.random.default_rng(0), size=128).shape == (128, 128, 3)


def test_bad_requests_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown galaxy kind 'spiral'"):
        render_galaxy("spiral", np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs 6 counts"):
        synthesize(tmp_path, [1, 1, 1], 0, 0, seed=1, progress=False)
    with pytest.raises(ValueError, match="n_per_class key '6'"):
        synthesize(tmp_path, {"6": 1}, 0, 0, seed=1, progress=False)
    with pytest.raises(ValueError, match="no galaxies requested"):
        synthesize(tmp_path, [0] * 6, 0, 0, seed=1, progress=False)
    with pytest.raises(ValueError, match="count for kind 'edgeon'"):
        synthesize(tmp_path, [1] * 6, 0, -1, seed=1, progress=False)
    with pytest.raises(ValueError, match="n_missing_images=7"):
        synthesize(tmp_path, [1] * 6, 0, 0, seed=1, n_missing_images=7, progress=False)


def test_synthesize_accepts_counts_keyed_by_class_name(tmp_path):
    summary = synthesize(tmp_path, {"5+": 2, "?": 1}, 0, 0, seed=1, progress=False)
    assert summary["per_kind"]["5+"] == 2 and summary["per_kind"]["?"] == 1
    assert summary["n_galaxies"] == 3


def test_contact_sheet_writes_frames_and_model_view(dataset, tmp_path):
    out, _ = dataset
    from spiralarms.data.images import read_model_view, read_rgb

    paths = [contact_sheet(out, tmp_path / "sheet.png", lambda p: read_rgb(p)[0], "frames",
                           per_class=2),
             contact_sheet(out, tmp_path / "sheet_model_view.png",
                           lambda p: read_model_view(p, "b0", 64, 224), "model view",
                           per_class=2)]
    assert [p.name for p in paths] == ["sheet.png", "sheet_model_view.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[1] > 300


def _azimuthal_harmonics(view):
    """Strength of the 1st-8th azimuthal harmonics in annuli around the brightest pixel."""
    from scipy.ndimage import map_coordinates

    radius, angle = np.meshgrid(np.linspace(3, 17, 12), np.linspace(0, 2 * np.pi, 64,
                                                                      endpoint=False),
                                indexing="ij")
    cy, cx = np.unravel_index(np.argmax(view), view.shape)
    rings = map_coordinates(view.astype(float), [cy + radius * np.sin(angle),
                                                 cx + radius * np.cos(angle)], order=1)
    spectrum = np.abs(np.fft.rfft(rings, axis=1))[:, :9]
    return (spectrum[:, 1:] / (spectrum[:, :1] + 1e-6)).ravel()


def test_arm_number_is_resolvable_in_the_64px_model_view():
    """m arms give m-fold azimuthal symmetry; a linear model on those harmonics must count them
    in the central 224 crop at 64 px greyscale (R90 is 14 px there) where the arms are visible,
    or the demo model cannot learn the classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from spiralarms.data.images import model_view

    features, labels = [], []
    for arm_class in range(5):
        for i in range(30):
            rng = np.random.default_rng([21, arm_class, i])
            params = draw_params(arm_class, rng)
            # where volunteers can count them: a bright, nearly face-on spiral
            params.update(inclination_deg=15.0, mag_r=14.5)
            image = render_from_params(params, rng)
            features.append(_azimuthal_harmonics(model_view(image)))
            labels.append(arm_class)
    features = np.array(features)
    features = (features - features.mean(0)) / features.std(0)
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=3).mean()
    assert accuracy > 0.6  # chance is 0.2; about 0.9 when the arms are well resolved


def test_masks_can_be_left_out_without_changing_any_other_file(tmp_path):
    from spiralarms.synthetic.generate import MASK_FILE

    args = {"n_per_class": [1, 1, 0, 0, 0, 0], "n_elliptical": 1, "n_edgeon": 0, "seed": 4,
            "progress": False}
    synthesize(tmp_path / "with", **args)
    synthesize(tmp_path / "without", masks=False, **args)
    assert (tmp_path / "with" / MASK_FILE).exists()
    assert not (tmp_path / "without" / MASK_FILE).exists()
    names = [CATALOG_FILE, MAPPING_FILE, TRUTH_FILE] + [
        f"{IMAGE_DIR}/{p.name}" for p in (tmp_path / "with" / IMAGE_DIR).glob("*.jpg")]
    for name in names:
        assert filecmp.cmp(tmp_path / "with" / name, tmp_path / "without" / name,
                           shallow=False), name


# ---------------------------------------------------------------- the camera's physics


def _quiet_params(kind, seed, **changes):
    """A galaxy alone in its frame (no stars, no companion), with `changes`."""
    params = draw_params(kind, np.random.default_rng(seed))
    params.update(n_stars=0, companion=0, **changes)
    return params


@pytest.mark.parametrize("fwhm", [1.0, 1.4, 2.0])
def test_fwhm_of_a_rendered_point_source_is_the_drawn_seeing(fwhm):
    """A star through the camera steps of a galaxy (fine grid, PSF, native 0.396" pixels): its
    FWHM, from the area above half its peak on a cubic interpolation of the native image, is
    the drawn seeing within 10 % (pixel integration broadens it by ~3 % at 1.0"; the GZ2
    frame's bilinear resampling adds up to ~7 % more, as SkyServer's did)."""
    from scipy.ndimage import zoom

    oversample, n_native = 2, 41
    fine = np.zeros((1, n_native * oversample, n_native * oversample), np.float32)
    fine[0, n_native, n_native] = 1.0  # the centre of native pixel 20
    kernel = sdss.moffat_kernel(fwhm, 3.5, sdss.PIXEL_SCALE / oversample)
    native = sdss.observe(fine, [kernel], oversample)[0]
    factor = 8
    star = zoom(native.astype(float), factor, order=3)
    area = (star >= star.max() / 2).sum() * (sdss.PIXEL_SCALE / factor) ** 2
    measured = 2 * np.sqrt(area / np.pi)
    assert measured == pytest.approx(fwhm, rel=0.10)


def test_noise_in_an_empty_patch_is_the_drawn_sky_level():
    """Sky-dominated noise of a 53.9 s exposure: the pixel-to-pixel scatter far from the
    galaxy equals sqrt(sky electrons + read noise^2) / (electrons per nanomaggy), and the sky
    electrons follow from the drawn sky brightness and the photometric zero point."""
    params = _quiet_params("elliptical", 2, sky_r=20.6)
    native, _ = observe_galaxy(params, np.random.default_rng(5))
    expected_e = sdss.nmgy(20.6) * sdss.PIXEL_SCALE ** 2 * sdss.electrons_per_nmgy("r")
    expected = np.sqrt(expected_e + sdss.READ_NOISE_E ** 2) / sdss.electrons_per_nmgy("r")
    assert sdss.sky_sigma_nmgy("r", 20.6) == pytest.approx(expected)
    for block in (1, 3):  # native pixels, and means of 3 x 3 (large galaxies' frames)
        images, _ = sdss.bin_blocks(native.copy(), (0, 0), block)
        expose(images, params, np.random.default_rng(6), block)
        patch = images[1, :40 // block, :40 // block]  # a corner of the cut-out: sky only
        assert patch.std() == pytest.approx(expected / block, rel=0.06), block
        assert abs(patch.mean()) < 3 * expected / 40  # sky-subtracted


def test_r90_of_a_rendered_face_on_galaxy_spans_50_px_of_the_frame():
    """The frame is 0.02 R90 "/px, R90 as the camera measures it: the curve of growth of the
    rendered (noisy) r band in the frame reaches 90 % at 50 px. Tolerance 6 %: sky noise in
    the aperture sum (~1 %), the bilinear resampling and the frame's sub-pixel centring."""
    for seed in (1, 2, 3):
        params = _quiet_params(1, seed, inclination_deg=0.0, mag_r=14.5)
        bands = {}
        render_from_params(params, np.random.default_rng(seed), bands_out=bands)
        r = bands["r"].copy()
        rows, cols = np.ogrid[:424, :424]
        r[np.hypot(rows - 211.5, cols - 211.5) > 150] = 0  # 3 R90: all the light, little sky
        r90_px = measure_r90(r, (211.5, 211.5), scale=1.0)
        assert r90_px == pytest.approx(50, rel=0.06), (seed, r90_px)


def test_composite_is_make_lupton_rgb_of_the_bands():
    from astropy.visualization import make_lupton_rgb

    bands = {}
    image = render_from_params(draw_params(2, np.random.default_rng(4)),
                               np.random.default_rng(4), bands_out=bands)
    w = sdss.BAND_WEIGHTS
    reference = make_lupton_rgb(bands["i"] * w["i"], bands["r"] * w["r"], bands["g"] * w["g"],
                                minimum=0, stretch=sdss.LUPTON_STRETCH, Q=sdss.LUPTON_Q)
    np.testing.assert_array_equal(image, reference)
