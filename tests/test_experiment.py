"""Experiment names, the grid, and the layering of train settings."""

import pytest

from spiralarms.training.experiment import Experiment, experiment_note, grid, train_settings


def test_name_round_trips_and_bad_names_say_the_form():
    e = Experiment.parse("b0_merge45_xai_s42")
    assert (e.model, e.classes, e.mode, e.seed, e.name) == (
        "b0", "merge45", "xai", 42, "b0_merge45_xai_s42")
    with pytest.raises(ValueError, match=r"\{model\}_\{classes\}_\{mode\}_s\{seed\}"):
        Experiment.parse("b0_merge45_xai")


def test_grid_is_the_product_plus_extra_without_duplicates():
    names = grid({"models": ["b0"], "classes": ["6class", "select12"], "modes": ["xai"],
                  "seeds": [1], "extra": ["v2m_6class_standard_s1", "b0_6class_xai_s1"]})
    assert names == ["b0_6class_xai_s1", "b0_select12_xai_s1", "v2m_6class_standard_s1"]


def test_train_settings_layer_train_model_then_experiment():
    config = {
        "train": {"epochs": 50, "image_size": 224, "augment": {"rotation": 0.5, "zoom": 0.2}},
        "models": {"b0": {"train": {"epochs": 10, "augment": {"zoom": 0.1}}}},
        "experiments": {"per_experiment": {"b0_6class_xai_s42": {
            "train": {"epochs": 24, "augment": {"rotation": 0.25}}, "note": "source backbone"}}},
    }
    assert train_settings(config, "b0") == {
        "epochs": 10, "image_size": 224, "augment": {"rotation": 0.5, "zoom": 0.1}}
    assert train_settings(config, "b0", "b0_merge45_xai_s42")["epochs"] == 10
    assert train_settings(config, "b0", "b0_6class_xai_s42") == {
        "epochs": 24, "image_size": 224, "augment": {"rotation": 0.25, "zoom": 0.1}}
    assert train_settings(config, "v2m", "b0_6class_xai_s42")["epochs"] == 24
    assert experiment_note(config, "b0_6class_xai_s42") == "source backbone"
    assert experiment_note(config, "b0_merge45_xai_s42") is None
