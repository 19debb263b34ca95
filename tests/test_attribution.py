"""The energy-based pointing measure (spiralarms.xai.attribution) and the renderer's arm/galaxy masks.

Hand-made maps and masks with shares computed by hand, the masks' crop and resize to the
model's view, the masks of rendered galaxies, their determinism, and the real-data skip path.
"""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from spiralarms.report.attribution import write_summary
from spiralarms.synthetic import generate
from spiralarms.synthetic.masks import decode_mask, encode_mask, read_masks
from spiralarms.synthetic.render import (
    MASK_ARM,
    MASK_GALAXY,
    MASK_SKY,
    draw_params,
    render_from_params,
)
from spiralarms.xai import attribution, stage

FRAME = 424


# ---------------------------------------------------------------- the measure by hand


def test_energy_share_of_a_hand_made_map():
    mask = np.zeros((1, 4, 4))
    mask[0, :2, :2] = 1.0  # top-left quadrant
    heat = np.ones((1, 4, 4))
    heat[0, 0, 0] = 9.0  # 9 + 3 inside, 12 outside, of 24
    heat[0, 3, 3] = -5.0  # negative attribution carries no energy
    np.testing.assert_allclose(attribution.energy_share(heat, mask), [12 / 23])
    assert attribution.area_share(mask).tolist() == [0.25]
    # all-zero maps (GradCAM++ of an untrained model) have no share at all
    assert np.isnan(attribution.energy_share(np.zeros((1, 4, 4)), mask)).all()


def test_soft_mask_weights_each_pixel_by_its_share():
    mask = np.array([[[0.5, 1.0], [0.0, 0.0]]])
    heat = np.array([[[2.0, 1.0], [1.0, 0.0]]])
    np.testing.assert_allclose(attribution.energy_share(heat, mask), [(0.5 * 2 + 1) / 4])


def test_masks_are_cropped_like_the_images():
    """crop 212 of 424 with no resize: the view is exactly frame rows/columns 106-317."""
    labels = np.zeros((FRAME, FRAME), np.uint8)
    labels[150:160, 200:300] = MASK_GALAXY
    labels[150:160, 250:260] = MASK_ARM
    labels[:106] = MASK_ARM  # outside the crop: must not count
    regions = attribution.model_view_regions(labels[None], 212, 212)
    np.testing.assert_array_equal(regions["galaxy"][0], labels[106:318, 106:318] >= 1)
    np.testing.assert_array_equal(regions["arm"][0], labels[106:318, 106:318] == 2)
    heat = np.zeros((1, 212, 212))
    heat[0, 150 - 106:160 - 106, 250 - 106:260 - 106] = 1.0  # all of it on the arm
    heat[0, 0, 0] = 100.0  # on the sky of the crop (arm label above the crop, not in it)
    measured = attribution.pointing(heat, regions)
    np.testing.assert_allclose(measured["arm_share"], [100 / 200])
    np.testing.assert_allclose(measured["galaxy_share"], [100 / 200])
    np.testing.assert_allclose(measured["sky_share"], [0.5])
    np.testing.assert_allclose(measured["arm_area"], [100 / 212**2])
    np.testing.assert_allclose(measured["galaxy_area"], [1000 / 212**2])


def test_masks_are_resized_like_the_images():
    """crop 212 -> 4 px (53 frame px per model px): the antialiased bilinear kernel is a
    triangle of half-width 53, so the model pixel beside a half-plane's edge, whose kernel
    reaches half a pixel across it, keeps 1 - (1/2)(1/2)^2 = 7/8 of the galaxy."""
    labels = np.zeros((FRAME, FRAME), np.uint8)
    labels[:, :212] = MASK_GALAXY  # left half of the frame and of the crop
    labels[:106] = MASK_ARM  # above the crop
    regions = attribution.model_view_regions(labels[None], 4, 212)
    np.testing.assert_allclose(regions["galaxy"][0], np.tile([1, 7 / 8, 1 / 8, 0], (4, 1)),
                               atol=1e-3)
    assert regions["arm"].max() == 0.0
    heat = np.tile([4.0, 2.0, 1.0, 1.0], (4, 1))[None]
    measured = attribution.pointing(heat, regions)
    np.testing.assert_allclose(measured["galaxy_share"], [(4 + 2 * 7 / 8 + 1 / 8) / 8], atol=1e-4)
    np.testing.assert_allclose(measured["galaxy_area"], [0.5], atol=1e-4)
    np.testing.assert_allclose(measured["arm_share"], [0.0])


def test_summary_means_shares_over_nonzero_maps_and_areas_over_all():
    galaxies = pd.DataFrame({"asset_id": [1, 2, 3], "true_index": [0, 0, 1],
                             "pred_index": [0, 1, 1]})
    regions = {"arm": np.zeros((3, 2, 2)), "galaxy": np.zeros((3, 2, 2))}
    regions["arm"][:, 0, 0] = 1.0  # arm area 1/4
    regions["galaxy"][:, 0, :] = 1.0  # galaxy area 1/2
    heat = np.zeros((3, 2, 2))
    heat[0, 0, 0] = 1.0  # galaxy 1: all on the arm
    heat[1, 1, :] = 1.0  # galaxy 2: all on the sky; galaxy 3: all-zero map
    table = attribution.galaxy_table(galaxies, {"gradcam++": heat}, regions, ["1", "2"])
    summary = attribution.summarise(table, ["1", "2"]).set_index("class")
    assert summary.loc["1", "n"] == 2 and summary.loc["1", "n_correct"] == 1
    assert summary.loc["1", "arm_share"] == 0.5 and summary.loc["1", "sky_share"] == 0.5
    assert summary.loc["1", "arm_lift"] == 2.0 and summary.loc["1", "galaxy_lift"] == 1.0
    assert summary.loc["2", "n_zero_maps"] == 1 and np.isnan(summary.loc["2", "arm_share"])
    assert summary.loc["2", "arm_area"] == 0.25
    assert summary.loc["all", "n"] == 3 and summary.loc["all", "arm_share"] == 0.5
    # 'all correct': galaxies 1 (all on the arm) and 3 (all-zero map); galaxy 2 was wrong
    correct = summary.loc[attribution.ALL_CORRECT]
    assert (correct["n"], correct["n_correct"], correct["n_zero_maps"]) == (2, 2, 1)
    assert correct["arm_share"] == 1.0 and correct["arm_lift"] == 4.0


# ---------------------------------------------------------------- the renderer's masks


@pytest.mark.parametrize("kind", [1, 3, 4])
def test_masks_of_a_rendered_spiral(kind):
    params = draw_params(kind, np.random.default_rng([7, kind]))
    plain = render_from_params(params, np.random.default_rng(1))
    image, label = render_from_params(params, np.random.default_rng(1), masks=True)
    np.testing.assert_array_equal(image, plain)  # the masks draw nothing from the rng
    arm, galaxy = label == MASK_ARM, label >= MASK_GALAXY
    assert label.shape == (FRAME, FRAME) and set(np.unique(label)) == {0, 1, 2}
    assert 0.002 < arm.mean() < galaxy.mean() < 0.5
    assert not (arm & ~galaxy).any()
    assert label[0].max() == label[:, 0].max() == MASK_SKY  # the frame's edge is sky
    brightness = image.astype(float).mean(axis=2)
    assert brightness[arm].mean() > brightness[galaxy & ~arm].mean() * 0.8
    assert brightness[galaxy].mean() > brightness[~galaxy].mean() + 20


@pytest.mark.parametrize("kind", ["elliptical", "edgeon"])
def test_non_targets_have_a_galaxy_but_no_arms(kind):
    params = draw_params(kind, np.random.default_rng(3))
    _, label = render_from_params(params, np.random.default_rng(3), masks=True)
    assert (label >= MASK_GALAXY).any() and not (label == MASK_ARM).any()


def test_mask_png_round_trip_and_bad_masks():
    label = np.zeros((8, 12), np.uint8)
    label[2:5, 3:9] = MASK_GALAXY
    label[3, 4:6] = MASK_ARM
    np.testing.assert_array_equal(decode_mask(encode_mask(label)), label)
    with pytest.raises(ValueError, match="labels"):
        decode_mask(encode_mask(np.full((4, 4), 3, np.uint8)))


def small_dataset(out_dir, workers=1, seed=5):
    return generate.synthesize(out_dir, [1] * 6, 1, 1, seed=seed, n_missing_images=1,
                                workers=workers, progress=False)


def test_masks_are_deterministic_and_match_the_images(tmp_path):
    small_dataset(tmp_path / "a")
    small_dataset(tmp_path / "b", workers=2)
    first = (tmp_path / "a" / generate.MASK_FILE).read_bytes()
    assert first == (tmp_path / "b" / generate.MASK_FILE).read_bytes()
    truth = generate.read_truth(tmp_path / "a")
    masks = read_masks(tmp_path / "a" / generate.MASK_FILE)
    with_image = truth.loc[truth["has_image"] == 1, "asset_id"].tolist()
    assert sorted(masks) == sorted(with_image)  # one per image; none for the missing one
    for asset_id, kind in zip(truth["asset_id"], truth["kind"]):
        if asset_id in masks:
            assert (masks[asset_id] >= MASK_GALAXY).any()
            if kind != "?":  # a "can't tell" spiral may keep some arm pixels, or none
                assert (masks[asset_id] == MASK_ARM).any() == (kind in ("1", "2", "3", "4", "5+"))
    missing = truth.loc[truth["has_image"] == 0, "asset_id"].tolist()
    with pytest.raises(KeyError, match="no mask"):
        read_masks(tmp_path / "a" / generate.MASK_FILE, missing)
    small_dataset(tmp_path / "c", seed=6)
    assert first != (tmp_path / "c" / generate.MASK_FILE).read_bytes()


# ---------------------------------------------------------------- the stage without masks


def fake_xai_folder(root, name, attribution_status=None, rows=None):
    folder = root / "experiments" / name / "xai"
    folder.mkdir(parents=True)
    if rows is not None:
        pd.DataFrame(rows, columns=attribution.SUMMARY_COLUMNS).to_csv(
            folder / attribution.SUMMARY_FILE, index=False)
    if attribution_status is not None:
        (folder / "xai.json").write_text(json.dumps({"attribution":
                                                     {"status": attribution_status}}))
    return folder


def test_stage_skips_the_measure_without_masks(tmp_path, monkeypatch, caplog):
    """Real data: no masks, a log line and xai.json saying so, no attribution files."""
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    pd.DataFrame({"asset_id": [1, 2], "true": [0, 1], "pred": [0, 0],
                  "prob_1": [0.9, 0.6], "prob_2": [0.1, 0.4]}).to_parquet(
        predictions / "val.parquet")
    monkeypatch.setattr(stage.model_card, "preprocessing", lambda path, settings: settings)
    monkeypatch.setattr(stage.keras.models, "load_model", lambda *a, **k: "model")
    monkeypatch.setattr(stage, "load_as_seen", lambda *a: np.zeros((2, 8, 8, 1)))
    monkeypatch.setattr(stage, "explain_experiment", lambda *a, **k: {
        "gradcam_s_per_image": 0.0, "smoothgrad_s_per_image": 0.0, "files": []})
    measured = []
    monkeypatch.setattr(stage, "measure_attribution", lambda *a, **k: measured.append(a))
    out = tmp_path / "experiments" / "b0_select12_xai_s1" / "xai"
    out.mkdir(parents=True)
    xai = {"per_class": 1, "smooth_samples": 2, "smooth_noise": 0.2, "batch_size": 2}
    with caplog.at_level(logging.INFO, logger="spiralarms.xai.stage"):
        result = stage.run_xai("b0_select12_xai_s1", "model.keras",
                                   predictions, "images", {"image_size": 8, "crop_size": 224},
                                   xai, out, masks=None)
    assert not measured and not (out / attribution.SUMMARY_FILE).exists()
    assert result["attribution"] == {"status": attribution.NO_MASKS}
    assert json.loads((out / "xai.json").read_text())["attribution"]["status"] == (
        "no masks (real data)")
    assert "attribution measure skipped: no masks (real data)" in caplog.text
    summary = write_summary([out], tmp_path / "s.csv", tmp_path / "s.md")
    assert summary["status"].tolist() == ["no masks (real data)"]
    assert "b0_select12_xai_s1: no masks (real data)" in (tmp_path / "s.md").read_text()


def test_summary_over_measured_and_unmeasured_experiments(tmp_path):
    row = ["gradcam++", "2", 4, 3, 0, 0.3, 0.1, 3.0, 0.8, 0.4, 2.0, 0.2, 0.6, 1 / 3]
    measured = fake_xai_folder(tmp_path, "b0_6class_xai_s42", rows=[row])
    real = fake_xai_folder(tmp_path, "v2m_6class_xai_s42", attribution.NO_MASKS)
    table = write_summary([measured, real], tmp_path / "a.csv", tmp_path / "a.md")
    assert table["status"].tolist() == ["measured", attribution.NO_MASKS]
    assert table.loc[0, "class"] == "2" and table.loc[0, "arm_share"] == 0.3
    text = (tmp_path / "a.md").read_text()
    assert "| b0_6class_xai_s42 | gradcam++ | 2 | 4 | 0 | 0.300 (0.100) |" in text
    assert "v2m_6class_xai_s42: no masks (real data)" in text
    assert pd.read_csv(tmp_path / "a.csv")["experiment"].tolist() == [
        "b0_6class_xai_s42", "v2m_6class_xai_s42"]


# ---------------------------------------------------------------- the stage end to end


def test_stage_measures_a_b0_xai_model_at_64_px(tmp_path):
    """An untrained B0 in xai mode at 64 px (top_conv is 2 x 2) on a rendered dataset, GradCAM++
    on xai.cam_layer: the stage writes the figures, attribution.csv and
    attribution_galaxies.csv."""
    keras = pytest.importorskip("keras")
    from spiralarms.data.variants import VARIANTS
    from spiralarms.models import model_card
    from spiralarms.models.networks import build_model

    data = tmp_path / "data"
    generate.synthesize(data, [2, 2, 0, 0, 0, 0], 0, 0, seed=2, progress=False)
    truth = generate.read_truth(data)
    keras.utils.set_random_seed(0)
    model = build_model("b0", 2, 64, "xai")
    assert model.get_layer("top_conv").output.shape[1:3] == (2, 2)
    model_path = tmp_path / "b0_select12_xai_s3" / "model.keras"
    model_path.parent.mkdir()
    model.save(model_path)
    model_card.write(model_path, "b0", VARIANTS["select12"], "xai",
                     {"image_size": 64, "crop_size": 224})
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    true = truth["arm_class"].to_numpy()
    pd.DataFrame({"asset_id": truth["asset_id"], "true": true, "pred": [0, 0, 1, 0],
                  "prob_1": [0.9, 0.8, 0.3, 0.6], "prob_2": [0.1, 0.2, 0.7, 0.4]}).to_parquet(
        predictions / "val.parquet")
    out = tmp_path / "xai"
    xai = {"per_class": 1, "smooth_samples": 2, "smooth_noise": 0.2, "batch_size": 4,
           "attribution_per_class": 2, "cam_layer": "block5c_add"}
    result = stage.run_xai("b0_select12_xai_s3", model_path, predictions,
                               data / generate.IMAGE_DIR, {"image_size": 32, "crop_size": 224},
                               xai, out, masks=data / generate.MASK_FILE)
    assert result["attribution"]["status"] == "measured"
    assert result["attribution"]["image_size"] == 64  # the model card's size, not the config's
    summary = pd.read_csv(out / "attribution.csv", dtype={"class": str})
    assert summary.columns.tolist() == attribution.SUMMARY_COLUMNS
    assert summary[["method", "class"]].values.tolist() == [
        ["gradcam++", "1"], ["gradcam++", "2"], ["gradcam++", "all"],
        ["gradcam++", "all correct"], ["smoothgrad", "1"], ["smoothgrad", "2"],
        ["smoothgrad", "all"], ["smoothgrad", "all correct"]]
    assert (summary["n"] == [2, 2, 4, 1, 2, 2, 4, 1]).all()  # pred [0, 0, 1, 0]: one right
    galaxies = pd.read_csv(out / "attribution_galaxies.csv")
    assert len(galaxies) == 8 and galaxies["target"].eq(attribution.TARGET).all()
    measured = galaxies.dropna(subset=["arm_share"])
    assert len(measured[measured["method"] == "smoothgrad"]) == 4  # SmoothGrad is never all-zero
    assert ((measured["arm_share"] >= 0) & (measured["arm_share"] <= measured["galaxy_share"])
            & (measured["galaxy_share"] <= 1)).all()
    assert ((galaxies["arm_area"] > 0) & (galaxies["arm_area"] < galaxies["galaxy_area"])).all()
    np.testing.assert_allclose(galaxies["sky_area"], 1 - galaxies["galaxy_area"])
    written = json.loads((out / "xai.json").read_text())
    assert written["attribution"]["table"][0]["method"] == "gradcam++"
    # xai.cam_layer reaches both GradCAM++ calls: block5c_add is 4 x 4 at 64 px (top_conv 2 x 2)
    assert (written["cam_layer"], written["cam_size"]) == ("block5c_add", [4, 4])
    assert written["attribution"]["cam_layer"] == "block5c_add"
    assert (out / "xai_correct.png").exists() and (out / "attribution_masks.png").exists()
