"""Training's choices, in process on tiny shards: the saved model is the best epoch, early stopping,
class weights, the learning-rate schedule and the input pipeline's class filter.

One run serves the training tests. Its validation accuracy is scripted (the ledger sees SCRIPT
instead of Keras' value), so the best epoch and the stopping epoch are known in advance; the
weights it trains are real.
"""

import json
import logging
import re

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_shards import make_tiny_shards, read_arm_classes

from spiralarms.data.dataset import make_dataset
from spiralarms.data.variants import VARIANTS, Variant
from spiralarms.training import train

STRIPES = Variant("stripes", (0, 1, 2), ("h", "v", "d"))
# Best at epoch 4; epoch 5 only equals it (no gain), epoch 6 is the second without a gain.
SCRIPT = [0.3, 0.6, 0.5, 0.7, 0.7, 0.6, 0.9, 0.9]
PATIENCE = 2
SETTINGS = {"epochs": len(SCRIPT), "batch_size": 8, "image_size": 32, "learning_rate": 1e-3,
            "patience": PATIENCE, "shuffle": True, "bn_momentum": 0.9, "augment": {"zoom": 0.1},
            "class_weights": True, "lr_schedule": "cosine",
            "deterministic": False}  # op determinism is process-wide: leave other tests alone


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    files = make_tiny_shards(root, per_class=[10, 5, 3])  # unequal classes: weights differ
    weights_at_epoch_end, fits, traces = [], [], []

    class ScriptedLedger(train.EpochLedger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, {**(logs or {}), "val_accuracy": SCRIPT[epoch]})
            weights_at_epoch_end.append(self.model.get_weights())

    fit = keras.Model.fit

    def recording_fit(model, *args, **kwargs):
        fits.append({**kwargs, "schedule": getattr(model.optimizer, "_learning_rate", None),
                     "eager": model.run_eagerly})
        return fit(model, *args, **kwargs)

    train_step = keras.Model.train_step

    def counted_step(model, data):  # Python runs it once per trace of the compiled step
        traces.append(model.run_eagerly)
        return train_step(model, data)

    terminal = []  # what the terminal Snakemake runs in would show (logs.TERMINAL records)
    catcher = logging.Handler()
    catcher.emit = lambda record: terminal.append(record.getMessage()) \
        if getattr(record, "terminal", False) else None
    logger = logging.getLogger(train.__name__)
    level = logger.level
    logger.setLevel(logging.INFO)  # as in a job (logs.to_file)
    logger.addHandler(catcher)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "EpochLedger", ScriptedLedger)
        patch.setattr(keras.Model, "fit", recording_fit)
        patch.setattr(keras.Model, "train_step", counted_step)
        summary = train.train_experiment(
            "b0", STRIPES, "xai", 3, files["train"], files["val"], SETTINGS, None,
            root / "model.keras", root / "history.csv", root / "work", name="stripes_run")
    logger.removeHandler(catcher)
    logger.setLevel(level)
    return {"root": root, "files": files, "summary": summary, "fits": fits,
            "epochs": weights_at_epoch_end, "terminal": terminal, "traces": traces}


def test_saved_model_is_the_best_epoch_not_the_last(run):
    saved = keras.models.load_model(run["root"] / "model.keras").get_weights()
    best, after = run["epochs"][3], run["epochs"][4:]  # epoch 4; the epochs trained after it
    assert run["summary"]["best_epoch"] == 4
    assert len(saved) == len(best)
    for got, want in zip(saved, best):
        np.testing.assert_array_equal(got, want)
    for later in after:  # those epochs did move the weights: the last one was not kept
        assert any(not np.array_equal(a, b) for a, b in zip(saved, later))


def test_early_stopping_after_patience_epochs_without_gain(run):
    history = pd.read_csv(run["root"] / "history.csv")
    # Epoch 4 is the best; 5 (equal, no gain) and 6 make PATIENCE epochs without a gain.
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(history["val_accuracy"], SCRIPT[:6])
    assert len(run["epochs"]) == 6 < SETTINGS["epochs"]
    assert run["summary"]["epochs_run"] == 6 and run["summary"]["best_val_accuracy"] == 0.7
    card = json.loads((run["root"] / "model.json").read_text())
    assert card["classes"] == "stripes"


def test_every_epoch_shows_progress_on_the_terminal(run):
    lines = [line for line in run["terminal"] if line.startswith("train stripes_run: epoch")]
    assert len(lines) == 6  # one per epoch run, early stopping after the sixth
    history = pd.read_csv(run["root"] / "history.csv")
    for line, (_, row) in zip(lines, history.iterrows()):
        assert f"epoch {int(row['epoch'])}/{SETTINGS['epochs']} " in line
        assert f"loss {row['loss']:.4f}" in line and f"accuracy {row['accuracy']:.4f}" in line
        assert "val_accuracy " in line
        span = r"(\d+ s|\d+ min|\d+ h \d\d min)"
        assert re.search(rf"\({span} per epoch, at most {span} left\)$", line), line


def test_progress_counts_the_pace_from_a_resumed_epoch(caplog):
    progress = train.EpochProgress("b0_6class_xai_s1")
    progress.set_params({"epochs": 50})
    progress.on_epoch_begin(39)  # resumed: epochs 1-39 ran in an earlier process
    progress.started -= 2 * 3600  # this process' first two epochs took two hours
    progress.on_epoch_begin(40)
    with caplog.at_level(logging.INFO, logger=train.__name__):
        progress.on_epoch_end(40, {"loss": 0.5, "accuracy": 0.75, "val_accuracy": 0.7})
    (record,) = caplog.records
    assert record.terminal
    assert record.getMessage() == ("train b0_6class_xai_s1: epoch 41/50  loss 0.5000  accuracy "
                                   "0.7500  val_accuracy 0.7000  (1 h 00 min per epoch, at most "
                                   "9 h 00 min left)")


def test_the_training_step_is_traced_once(run):
    # A variable made during the first trace (a metric or the optimizer's moments built lazily)
    # makes TensorFlow trace the step again: minutes of a CPU's time over a grid of trainings.
    assert run["traces"] == [False]


def test_class_weights_are_balanced_and_reach_fit(run):
    counts = np.bincount(read_arm_classes(run["files"]["train"]), minlength=3)
    assert counts.tolist() == [8, 3, 2]  # every fourth galaxy of [10, 5, 3] is in val
    expected = {k: counts.sum() / (3 * counts[k]) for k in range(3)}
    (fit,) = run["fits"]
    assert fit["class_weight"] == pytest.approx(expected)
    assert run["summary"]["class_weights"] == pytest.approx(expected)
    # balanced: every class weighs the same in the loss
    np.testing.assert_allclose([fit["class_weight"][k] * counts[k] for k in range(3)],
                               counts.sum() / 3)


def test_cosine_schedule_reaches_the_optimizer(run):
    (fit,) = run["fits"]
    schedule = fit["schedule"]
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    n_train = len(read_arm_classes(run["files"]["train"]))
    steps_per_epoch = -(-n_train // SETTINGS["batch_size"])
    assert schedule.decay_steps == SETTINGS["epochs"] * steps_per_epoch  # the planned epochs
    assert float(schedule(0)) == pytest.approx(SETTINGS["learning_rate"])


def test_balanced_weights_for_a_known_count():
    weights = train.balanced_weights(np.array([30, 10, 0, 20]))
    assert weights == pytest.approx({0: 0.5, 1: 1.5, 2: 0.0, 3: 0.75})  # 60 / (4 x count)


def test_cosine_learning_rate_at_known_steps():
    settings = {"lr_schedule": "cosine", "learning_rate": 1e-3, "epochs": 4}
    schedule = train.learning_rate(settings, n_train=30, batch_size=8)  # 4 steps an epoch
    assert schedule.decay_steps == 16
    for step, rate in [(0, 1e-3), (4, 1e-3 * (1 + np.cos(np.pi / 4)) / 2), (8, 0.5e-3),
                       (12, 1e-3 * (1 + np.cos(3 * np.pi / 4)) / 2), (16, 0.0), (40, 0.0)]:
        assert float(schedule(step)) == pytest.approx(rate, abs=1e-9), step
    assert train.learning_rate({**settings, "lr_schedule": "constant"}, 30, 8) == 1e-3


@pytest.fixture(scope="module")
def six_class_shards(tmp_path_factory):
    files = make_tiny_shards(tmp_path_factory.mktemp("six"), per_class=[2, 3, 2, 2, 1, 2])
    return files["train"] + files["val"]


def _targets_by_class(files, variant):
    """{arm_class: set of targets} and the number of galaxies make_dataset gives for variant."""
    seen, n = {}, 0
    ds = make_dataset(files, model="b0", variant=variant, image_size=32, batch_size=4,
                      with_ids=True)
    for images, targets, ids in ds:
        assert images.shape[1:] == (32, 32, 1) and targets.shape[1] == variant.n_classes
        np.testing.assert_array_equal(np.asarray(targets).sum(axis=1), 1.0)  # one-hot
        for arm_class, target in zip(ids["arm_class"].numpy(), np.argmax(targets, axis=1)):
            seen.setdefault(int(arm_class), set()).add(int(target))
            n += 1
    return seen, n


def test_make_dataset_keeps_only_the_classes_of_select12(six_class_shards):
    arm_classes = read_arm_classes(six_class_shards)
    assert sorted(set(arm_classes)) == [0, 1, 2, 3, 4, 5]
    seen, n = _targets_by_class(six_class_shards, VARIANTS["select12"])
    assert seen == {0: {0}, 1: {1}}  # 1 arm -> target 0, 2 arms -> target 1; the rest dropped
    assert n == arm_classes.count(0) + arm_classes.count(1) == 5


def test_make_dataset_remaps_classes_as_the_variant_says(six_class_shards):
    odd = Variant("odd", (None, 1, None, 0, 0, None), ("4+", "2"))  # drops, merges and reorders
    seen, n = _targets_by_class(six_class_shards, odd)
    assert seen == {1: {1}, 3: {0}, 4: {0}}
    assert n == 3 + 2 + 1


def test_eager_setting_runs_the_steps_eagerly(run, tmp_path, monkeypatch):
    # train.eager (V2M's smoke runs): Keras gets run_eagerly and the epoch trains as usual
    eager_flags = []
    fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda model, *args, **kwargs: (
        eager_flags.append(model.run_eagerly), fit(model, *args, **kwargs))[1])
    settings = {**SETTINGS, "epochs": 1, "eager": True}
    train.train_experiment("b0", STRIPES, "xai", 3, run["files"]["train"], run["files"]["val"],
                           settings, None, tmp_path / "model.keras", tmp_path / "history.csv",
                           tmp_path / "work")
    assert eager_flags == [True] and run["fits"][0]["eager"] is False  # the run: compiled
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [1] and np.isfinite(history["loss"]).all()
    assert (tmp_path / "model.keras").exists()
