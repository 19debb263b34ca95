"""Learning from the votes (issue 20): the Dirichlet-multinomial loss, its head, vote merges."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import dirichlet_multinomial

from spiralarms.data.variants import VARIANTS

tf = pytest.importorskip("tensorflow")
votes = pytest.importorskip("spiralarms.models.votes")


def hand_log_p(k, alpha):
    """The closed form term by term with math.lgamma (docs: spiralarms.models.votes)."""
    n, a = sum(k), sum(alpha)
    return (math.lgamma(n + 1) - sum(math.lgamma(x + 1) for x in k) + math.lgamma(a)
            - math.lgamma(n + a) + sum(math.lgamma(x + y) - math.lgamma(y)
                                       for x, y in zip(k, alpha)))


def test_loss_matches_hand_values_and_scipy():
    counts = np.array([[3, 0, 1, 0, 0, 2], [0, 25, 4, 0, 0, 1], [1, 1, 1, 1, 1, 1]], np.float32)
    alpha = np.array([[1, 2, 3, 4, 5, 6], [1.5, 80, 10, 1, 1, 3], [101, 1, 1, 1, 1, 1]],
                     np.float32)
    nll = votes.dirichlet_multinomial_nll(counts, alpha).numpy()
    # One galaxy by hand: k = (3,0,1,0,0,2), alpha = 1..6: N = 6, A = 21.
    first = (math.log(720) - math.log(6) - math.log(2) + math.lgamma(21) - math.lgamma(27)
             + math.log(1 * 2 * 3) + math.log(3) + math.log(6 * 7))
    assert -nll[0] == pytest.approx(first, rel=1e-5)
    for row, (k, a) in enumerate(zip(counts, alpha)):
        assert -nll[row] == pytest.approx(hand_log_p(k.tolist(), a.tolist()), rel=1e-5)
        reference = dirichlet_multinomial.logpmf(k, a.astype(np.float64), int(k.sum()))
        assert -nll[row] == pytest.approx(reference, rel=1e-5, abs=1e-4)


def test_zero_vote_galaxy_contributes_nothing():
    counts = tf.constant([[0, 0, 0, 0, 0, 0], [2, 5, 0, 0, 0, 1]], tf.float32)
    logits = tf.Variable([[0.3, -2.0, 4.0, 0.0, 1.0, -1.0], [0.1, 0.2, -0.3, 0.0, 0.5, 2.0]])
    with tf.GradientTape() as tape:
        alpha = 1.0 + 100.0 * tf.sigmoid(logits)
        nll = votes.dirichlet_multinomial_nll(counts, alpha)
    grad = tape.gradient(nll, logits).numpy()
    assert nll.numpy()[0] == 0.0
    assert np.all(grad[0] == 0.0) and np.any(grad[1] != 0.0)


@pytest.mark.parametrize("logit", [-1e4, -30.0, 0.0, 30.0, 1e4])
def test_gradients_finite_at_extreme_concentrations(logit):
    counts = tf.constant([[0, 40, 0, 0, 0, 0], [7, 0, 3, 0, 0, 0], [1000, 0, 0, 0, 0, 1000]],
                         tf.float32)
    logits = tf.Variable(tf.fill((3, 6), logit) + tf.constant([0.0, 1, 0, 0, 0, 0]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(votes.dirichlet_multinomial_nll(counts, 1.0 + 100.0 * tf.sigmoid(logits)))
    grad = tape.gradient(loss, logits).numpy()
    assert np.isfinite(loss.numpy()) and np.isfinite(grad).all()


def test_head_outputs_expected_fractions_that_sum_to_one():
    import keras

    logits = keras.Input((6,))
    alpha = votes.concentrations(logits)
    model = keras.Model(logits, [alpha, votes.ExpectedVoteFraction()(alpha)])
    x = np.array([[-50.0, 0, 50, 1, -1, 3]], np.float32)
    a, fraction = (v.numpy() if hasattr(v, "numpy") else v for v in model(x))
    assert a.min() >= 1.0 and a.max() <= 101.0
    assert a[0, 0] == pytest.approx(1.0) and a[0, 2] == pytest.approx(101.0)
    assert fraction.sum() == pytest.approx(1.0, abs=1e-6)
    assert fraction[0] == pytest.approx(a[0] / a[0].sum(), rel=1e-6)


def test_vote_merges_sum_or_keep_answers():
    counts = np.array([[1, 2, 3, 4, 5, 6], [0, 10, 0, 7, 2, 0]])
    assert VARIANTS["6class"].merge_votes(counts).tolist() == counts.tolist()
    # merge34: 3 and 4 arms summed; merge45: 4 and 5+ summed; select12 keeps 1 and 2 only
    assert VARIANTS["merge34"].merge_votes(counts).tolist() == [[1, 2, 7, 5, 6], [0, 10, 7, 2, 0]]
    assert VARIANTS["merge45"].merge_votes(counts).tolist() == [[1, 2, 3, 9, 6], [0, 10, 0, 9, 0]]
    assert VARIANTS["select12"].merge_votes(counts).tolist() == [[1, 2], [0, 10]]
    with pytest.raises(ValueError, match="6 answers"):
        VARIANTS["6class"].merge_votes([1, 2, 3])


# --- the votes' sample ----------------------------------------------------------------------------

def vote_sample(tmp_path, votes_settings):
    from fixtures_gz2 import ARM_FLAG, galaxies, write_catalog, write_mapping

    from spiralarms.gz2.catalog import ARM_COUNT, SELECTION_COLUMNS, read_catalog, read_mapping
    from spiralarms.gz2.selection import select, vote_labels

    rows = galaxies([0, 1, 2, 3, 4, 5] * 3 + [1, 2, 4])
    for j, column in enumerate(ARM_COUNT):  # votes follow the class: 30 for it, 2 elsewhere
        rows[column] = np.where(rows.index % 6 == j, 30, 2)
    unflagged = [18, 19, 20]  # the arm flag unset: the paper drops them
    for i in unflagged:
        rows.loc[i, ARM_FLAG] = 0
    rows.loc[20, ARM_COUNT] = 1  # only 6 arm votes
    rows.loc[3, "t02_edgeon_a05_no_weighted_fraction"] = 0.1  # fails a cut: never added
    rows.loc[3, ARM_FLAG] = 0
    catalog = read_catalog(write_catalog(rows, tmp_path / "cat.csv.gz"),
                           [*SELECTION_COLUMNS, *ARM_COUNT])
    mapping = read_mapping(write_mapping(rows, tmp_path / "map.csv"))
    settings = {"cap": None, "val_fraction": 0.3}
    labels, _ = select(catalog, mapping, None, settings)
    frame, report = vote_labels(catalog, mapping, labels, None, settings, votes_settings)
    return rows, labels, frame, report


def test_vote_labels_carry_counts_and_keep_the_held_out_galaxies(tmp_path):
    from spiralarms.gz2.catalog import ARM_COUNT

    rows, labels, frame, report = vote_sample(tmp_path, {"unflagged": True, "min_arm_votes": 10})
    by_id = rows.set_index("dr7objid")
    assert frame[ARM_COUNT].to_numpy().tolist() == \
        by_id.loc[frame["dr7objid"], ARM_COUNT].to_numpy().tolist()
    extra = frame[frame["unflagged"]]
    # rows 18 and 19 added (dropped only for the flag, 40 arm votes); 20 has 6 votes; 3 fails a cut
    assert sorted(extra["dr7objid"] - rows["dr7objid"].min()) == [18, 19]
    assert set(extra["subset"]) == {"train"} and extra["arm_class"].tolist() == [1, 2]
    assert report["unflagged_candidates"] == 3 and report["unflagged_too_few_votes"] == 1
    same = frame[~frame["unflagged"]].drop(columns=[*ARM_COUNT, "unflagged"])
    pd.testing.assert_frame_equal(same.reset_index(drop=True), labels.reset_index(drop=True))


def test_vote_labels_without_the_switch_are_the_labelled_galaxies(tmp_path):
    _, labels, frame, report = vote_sample(tmp_path, None)
    assert len(frame) == len(labels) and not frame["unflagged"].any()
    assert report["unflagged_added"] == 0


def test_vote_settings_are_checked():
    from spiralarms.gz2.selection import SelectionError, resolve_vote_settings

    with pytest.raises(SelectionError, match="votes.min_arm_votes"):
        resolve_vote_settings({"min_arm_votes": 0})
    with pytest.raises(SelectionError, match="unknown votes setting"):
        resolve_vote_settings({"extra": True})


# --- a tiny training on the votes, end to end ---------------------------------------------------

def tiny_network(model, n_classes, image_size, mode="standard", weights=None, augment=None,
                 bn_momentum=None, seed=None, target="labels"):
    """build_model's signature and head (networks.head) on a one-layer trunk."""
    import keras

    from spiralarms.models.networks import head

    inputs = keras.Input((image_size, image_size, 1), name="image")
    features = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs)
    return keras.Model(inputs, head(features, n_classes, target), name=f"{model}_{mode}")


def test_b0_votes_model_outputs_fractions_and_trains_on_concentrations():
    from spiralarms.models.networks import build_model, training_view

    model = build_model("b0", 5, 32, "xai", target="votes")
    fitted = training_view(model, "votes")
    assert model.layers[-1].name == "vote_fraction" and fitted.output.shape[-1] == 5
    assert fitted.layers[-1].name == "vote_concentration"
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    alpha, fraction = np.asarray(fitted(x)), np.asarray(model(x))
    np.testing.assert_allclose(fraction, alpha / alpha.sum(axis=1, keepdims=True), rtol=1e-5)


@pytest.fixture(scope="module")
def vote_run(tmp_path_factory):
    from tiny_shards import make_tiny_shards

    from spiralarms.data.variants import VARIANTS
    from spiralarms.evaluation.evaluate import evaluate_experiment
    from spiralarms.training import train
    from spiralarms.training.experiment import Experiment

    root = tmp_path_factory.mktemp("votes")
    files = make_tiny_shards(root, per_class=[4, 4, 3, 3, 2, 2], votes=True)
    settings = {"epochs": 2, "batch_size": 8, "image_size": 32, "learning_rate": 1e-3,
                "patience": 5, "bn_momentum": 0.9, "augment": {"zoom": 0.1},
                "deterministic": False}
    name = "b0_merge45_xai_votes_s3"
    vote_report = {"settings": {"unflagged": False, "min_arm_votes": 10}, "unflagged_added": 0,
                   "train": 13}
    with pytest.MonkeyPatch.context() as patch:  # B0's graph costs minutes here; the head is real
        patch.setattr(train, "build_model", tiny_network)
        summary = train.train_experiment(
            "b0", VARIANTS["merge45"], "xai", 3, files["train"], files["val"], settings, None,
            root / "model.keras", root / "history.csv", root / "work", name=name,
            target="votes", votes=train.votes_record(vote_report))
    labels = pd.read_parquet(root / "labels.parquet")
    from spiralarms.gz2.catalog import ARM_COUNT

    metrics = evaluate_experiment(
        Experiment.parse(name), root / "model.keras", {"val": files["val"]},
        {**settings, "crop_size": 224}, root / "metrics.json", root / "predictions", n_boot=50,
        votes=labels[["dr7objid", *ARM_COUNT]])
    return {"root": root, "files": files, "summary": summary, "metrics": metrics,
            "labels": labels, "predictions": pd.read_parquet(root / "predictions" / "val.parquet")}


def test_vote_targets_are_the_merged_counts(vote_run):
    from spiralarms.data.dataset import make_dataset
    from spiralarms.gz2.catalog import ARM_COUNT

    variant = VARIANTS["merge45"]
    by_id = vote_run["labels"].set_index("dr7objid")
    ds = make_dataset(vote_run["files"]["train"], "b0", variant, 32, batch_size=64,
                      with_ids=True, target="votes")
    seen = 0
    for _, targets, ids in ds:
        expected = variant.merge_votes(by_id.loc[ids["dr7objid"].numpy(), ARM_COUNT].to_numpy())
        np.testing.assert_array_equal(np.asarray(targets), expected)
        seen += len(expected)
    assert seen == (vote_run["labels"]["subset"] == "train").sum()


def test_tiny_vote_training_predicts_fractions_that_sum_to_one(vote_run):
    import json

    frame, metrics = vote_run["predictions"], vote_run["metrics"]
    names = VARIANTS["merge45"].class_names
    proba = frame[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba > 0).all()  # alpha >= 1: every answer keeps some expected share
    assert (frame["pred"] == proba.argmax(axis=1)).all()
    # `true` stays the volunteers' label in the variant's classes
    assert (frame["true"] == VARIANTS["merge45"].targets(frame["arm_class"])).all()
    assert metrics["target"] == "votes" and metrics["training"]["target"] == "votes"
    assert metrics["training"]["votes"]["unflagged"] is False
    votes = metrics["subsets"]["val"]["vote_fractions"]
    assert votes["n"] == len(frame) - (frame["dr7objid"] == 1005).sum()
    volunteer = frame[[f"volunteer_{n}" for n in names]].to_numpy()
    voted = frame["volunteer_votes"].to_numpy() > 0
    assert votes["mae"] == pytest.approx(np.abs(proba - volunteer)[voted].mean(), rel=1e-6)
    history = pd.read_csv(vote_run["root"] / "history.csv")
    assert np.isfinite(history["loss"]).all() and "val_accuracy" in history
    card = json.loads((vote_run["root"] / "model.json").read_text())
    assert card["training"]["target"] == "votes"


# --- names ----------------------------------------------------------------------------------------

def test_target_axis_in_names_keeps_existing_names():
    import re

    from spiralarms.training.experiment import NAME_REGEX, Experiment, grid, target_pairs

    labels = Experiment.parse("b0_6class_standard_s42")
    assert labels.target == "labels" and labels.name == "b0_6class_standard_s42"
    votes = Experiment.parse("b0_merge45_xai_votes_s7_split3")
    assert (votes.classes, votes.mode, votes.seed, votes.split, votes.target) == \
        ("merge45", "xai", 7, 3, "votes")
    assert votes.name == "b0_merge45_xai_votes_s7_split3"
    assert votes.on_split(None).name == "b0_merge45_xai_votes_s7"
    assert re.fullmatch(NAME_REGEX, votes.name) and not re.fullmatch(NAME_REGEX, "b0_6class_votes_s1")
    with pytest.raises(ValueError, match="_votes before _s"):
        Experiment.parse("b0_6class_standard_s42_votes")
    names = grid({"models": ["b0"], "classes": ["6class"], "modes": ["standard"], "seeds": [1],
                  "targets": ["labels", "votes"]})
    assert names == ["b0_6class_standard_s1", "b0_6class_standard_votes_s1"]
    assert grid({"models": ["b0"], "classes": ["6class"], "modes": ["standard"],
                 "seeds": [1]}) == ["b0_6class_standard_s1"]
    assert target_pairs(names + ["b0_merge34_xai_votes_s1"]) == [tuple(names)]


def test_an_eager_evaluation_predicts_what_the_compiled_one_does(vote_run):
    # train.eager reaches the evaluation too (the smoke runs): no predict graph is traced
    import keras

    from spiralarms.evaluation.evaluate import predict

    model = keras.models.load_model(vote_run["root"] / "model.keras", safe_mode=True)
    settings = {"image_size": 32, "crop_size": 224, "eager": True}
    eager = predict(model, vote_run["files"]["val"], "b0", VARIANTS["merge45"], settings)
    assert model.predict_function is None
    compiled = vote_run["predictions"]
    assert eager["asset_id"].tolist() == compiled["asset_id"].tolist()
    probs = [c for c in compiled if c.startswith("prob_")]
    np.testing.assert_allclose(eager[probs].to_numpy(), compiled[probs].to_numpy(), atol=1e-5)
    assert (eager["pred"] == compiled["pred"]).all()
