"""Experiment names, the grid, and the layering of train settings."""

import copy

import pytest

from spiralarms.data.variants import VARIANTS
from spiralarms.training.experiment import (
    MODELS,
    MODES,
    Experiment,
    experiment_note,
    grid,
    train_settings,
)


def test_name_round_trips():
    e = Experiment.parse("b0_merge45_xai_s42")
    assert (e.model, e.classes, e.mode, e.seed, e.split, e.name) == (
        "b0", "merge45", "xai", 42, None, "b0_merge45_xai_s42")
    on_split = Experiment.parse("v2m_select12_standard_s0_split7")
    assert (on_split.model, on_split.seed, on_split.split) == ("v2m", 0, 7)
    assert on_split.name == "v2m_select12_standard_s0_split7"
    assert on_split.on_split(None).name == "v2m_select12_standard_s0"


@pytest.mark.parametrize("name", [
    "b0_merge45_xai",  # no seed
    "b1_6class_xai_s1",  # unknown model
    "b0_7class_xai_s1",  # unknown classes
    "b0_6class_fast_s1",  # unknown mode
    "b0_6class_xai_s-1",  # negative seed
    "b0_6class_xai_1",  # seed without its s
    "b0_6class_xai_s1_split",  # split without its number
    "b0_6class_xai_s1 ",  # trailing space
    "b0_6class_xai_s1\n",  # trailing newline (a regex `$` would let it through)
    "B0_6class_xai_s1",  # case matters
    "",
])
def test_bad_names_say_the_name_and_the_form(name):
    with pytest.raises(ValueError) as error:
        Experiment.parse(name)
    message = str(error.value)
    assert repr(name) in message
    assert "{model}_{classes}_{mode}_s{seed}" in message and "_split{k}" in message
    # what each part may be
    assert f"model is one of {', '.join(MODELS)}; classes one of {', '.join(VARIANTS)}; " \
           f"mode one of {', '.join(MODES)}" in message


@pytest.mark.parametrize(("name", "wrong"), [
    ("b0_7class_standard_s42", "where classes '7class' is wrong"),
    ("b1_6class_xai_s1", "where model 'b1' is wrong"),
    ("b0_6class_fast_42", "where mode 'fast' and seed '42' are wrong"),
    ("b0_6class_xai_s1_split", "where split 'split' is wrong"),
])
def test_bad_names_say_which_part_is_wrong(name, wrong):
    with pytest.raises(ValueError, match=wrong):
        Experiment.parse(name)


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


def test_train_settings_precedence_key_by_key_and_config_left_alone():
    config = {
        "train": {"epochs": 50, "batch_size": 16, "image_size": 224,
                  "augment": {"rotation": 0.5, "flip": True, "zoom": 0.2}},
        "models": {"b0": {"train": {"epochs": 10, "batch_size": 32, "augment": {"zoom": 0.1}}},
                   "v2m": {"weights": "imagenet"}},  # no train layer of its own
        "experiments": {"per_experiment": {"b0_6class_xai_s42": {
            "train": {"batch_size": 8, "augment": {"flip": False}}}}},
    }
    before = copy.deepcopy(config)
    merged = train_settings(config, "b0", "b0_6class_xai_s42")
    assert merged == {"epochs": 10,  # models.b0.train over train
                      "batch_size": 8,  # the experiment over both
                      "image_size": 224,  # only in train
                      "augment": {"rotation": 0.5, "flip": False, "zoom": 0.1}}
    # the same experiment on another split takes its base name's overrides
    assert train_settings(config, "b0", "b0_6class_xai_s42_split3") == merged
    assert train_settings(config, "v2m", "v2m_6class_xai_s42") == {
        "epochs": 50, "batch_size": 16, "image_size": 224,
        "augment": {"rotation": 0.5, "flip": True, "zoom": 0.2}}
    assert train_settings({"train": {"epochs": 3}}, "b0", "b0_6class_xai_s1") == {
        "epochs": 3, "augment": {}}  # no models or experiments sections at all
    assert config == before  # merging copies; the loaded config is not changed
