"""Training one experiment (docs/method.md: training, "Training details"), resumable, deterministic.

Adam 1e-4, batch 16, 50 epochs, early stopping (patience 30) and best checkpoint on val_accuracy,
best weights restored at the end, TerminateOnNaN. Everything that must survive a killed process lives
in `work_dir`, outside Snakemake's declared outputs (Snakemake deletes a failed job's outputs).
"""

import csv
import json
import logging
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from spiralarms import atomic, runtime
from spiralarms import logs as logs_module
from spiralarms.data.dataset import make_dataset
from spiralarms.data.shards import shard_files
from spiralarms.models import model_card
from spiralarms.models.networks import build_model, training_view
from spiralarms.models.votes import dirichlet_multinomial_loss
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

DEFAULTS = {
    "epochs": 50,
    "batch_size": 16,
    "image_size": model_card.DEFAULTS["image_size"],
    "crop_size": model_card.DEFAULTS["crop_size"],
    "learning_rate": 1e-4,
    "lr_schedule": "constant",
    "patience": 30,
    "monitor": "val_accuracy",
    "shuffle": False,
    "class_weights": False,
    "cache": False,
    "augment": {"rotation": 0.5, "flip": True, "zoom": 0.2},
    "bn_momentum": None,
    "deterministic": True,
    "precision": "float32",
    "batch_scaling": "fixed",
    "save_optimizer": False,
    "steps_per_epoch": None,
    "eager": False,
}
PRECISIONS = ("float32", "mixed_float16")


def configure_devices(deterministic: bool, seed: int, precision: str = "float32"):
    """Seed everything; the dtype policy; MirroredStrategy over the visible GPUs."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision={precision!r} must be one of {PRECISIONS}")
    keras.mixed_precision.set_global_policy(precision)
    n_gpus = runtime.configure()  # memory growth, also when called outside a workflow job
    if n_gpus > 1:
        return tf.distribute.MirroredStrategy(), n_gpus
    return tf.distribute.get_strategy(), n_gpus


def global_batch(settings: dict, n_gpus: int) -> int:
    """`fixed`: the paper's batch whatever the GPU count; `per_gpu`: batch_size on each GPU."""
    if settings["batch_scaling"] == "per_gpu":
        return settings["batch_size"] * max(1, n_gpus)
    return settings["batch_size"]


def count_targets(files, variant) -> np.ndarray:
    """Galaxies per target class in the shards `files` (read without decoding images)."""
    from spiralarms.data.shards import parse_example

    arm_class = [int(ex["arm_class"])
                 for ex in tf.data.TFRecordDataset(list(map(str, files))).map(parse_example)]
    return variant.counts(arm_class)


def balanced_weights(counts) -> dict:
    """Inverse-frequency class weights over the variant's targets (the notebook's were wrong: B5)."""
    return {i: float(counts.sum() / (len(counts) * c)) if c else 0.0 for i, c in enumerate(counts)}


class EpochLedger(keras.callbacks.Callback):
    """history.csv, best checkpoint and early stopping whose state survives a restart.

    Keras' ModelCheckpoint and EarlyStopping forget their best value when a killed run resumes
    through BackupAndRestore; this callback rebuilds it from the rows already written.
    Listed before BackupAndRestore so an epoch's row is on disk before its backup.
    """

    def __init__(self, history_path, best_path, monitor, patience, n_images):
        super().__init__()
        self.history_path, self.best_path = Path(history_path), Path(best_path)
        self.monitor, self.patience, self.n_images = monitor, patience, n_images
        self.rows = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:  # first epoch of this process: drop rows the backup does not cover
            rows = _read_rows(self.history_path)
            self.rows = [r for r in rows if int(r["epoch"]) < epoch + 1]
            if epoch:
                log.info("resumed from the backup at epoch %d of this experiment", epoch + 1)
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": round(seconds, 3)}
        best = max((r[self.monitor] for r in self.rows), default=-np.inf)
        self.rows.append(row)
        _write_rows(self.history_path, self.rows)
        if row[self.monitor] > best:
            with atomic.replacing(self.best_path, suffix=".weights.h5") as partial:
                self.model.save_weights(partial)
        stale = len(self.rows) - 1 - int(np.argmax([r[self.monitor] for r in self.rows]))
        log.info(
            "epoch %d: %s  (%.0f s, %.0f images/s)", epoch + 1,
            "  ".join(f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch", "seconds")),
            seconds, self.n_images / max(seconds, 1e-9),
        )
        if stale >= self.patience:
            log.info("early stopping: no %s gain for %d epochs", self.monitor, stale)
            self.model.stop_training = True


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch where Snakemake runs (`logs.TERMINAL`): a training is hours, and the
    epochs are its only sign of life. The time left assumes every remaining epoch runs (early
    stopping may end sooner) at the mean pace of this process' epochs so far."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.first, self.started = name, None, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first is None:  # a resumed run starts at a later epoch
            self.first, self.started = epoch, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        values = logs or {}
        epochs = self.params.get("epochs") or epoch + 1
        pace = (time.perf_counter() - self.started) / (epoch + 1 - self.first)
        metrics = "  ".join(f"{key} {values[key]:.4f}" for key in
                            ("loss", "accuracy", "val_loss", "val_accuracy") if key in values)
        log.info("train %s: epoch %d/%d  %s  (%s per epoch, at most %s left)", self.name,
                 epoch + 1, epochs, metrics, duration(pace),
                 duration(pace * (epochs - epoch - 1)), extra=logs_module.TERMINAL)


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _read_rows(path: Path) -> list:
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _write_rows(path: Path, rows: list):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic.replacing(path) as partial, open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: int(v) if k == "epoch" else v for k, v in r.items()})


FINGERPRINT = "fingerprint.json"
# Settings that do not change what is trained: a resume may use other values.
NOT_FINGERPRINTED = ("threads",)


def run_fingerprint(model_name, variant, mode, seed, settings, files, weights,
                    target="labels") -> dict:
    """What a resume backup was made from: the experiment, its settings and its inputs (shard
    and weights files by name and size, which a new selection or new weights change)."""
    def file(path):
        return {"path": str(path), "bytes": Path(path).stat().st_size}

    return {
        "model": model_name, "variant": variant.name, "class_map": list(variant.class_map),
        "mode": mode, "seed": seed, **({"target": target} if target != "labels" else {}),
        "settings": {k: v for k, v in settings.items() if k not in NOT_FINGERPRINTED},
        "inputs": [file(f) for f in files], "weights": file(weights) if weights else None,
    }


def prepare_work_dir(work_dir: Path, fingerprint: dict) -> bool:
    """Keep the resume state in `work_dir` only if it was made for `fingerprint`; otherwise warn
    what changed and clear it, so training starts over. Returns whether a state is kept."""
    stored = work_dir / FINGERPRINT
    state = work_dir.is_dir() and any(p.name != FINGERPRINT for p in work_dir.iterdir())
    old = json.loads(stored.read_text()) if state and stored.is_file() else None
    if state and old != fingerprint:
        changed = _changes(old, fingerprint) if old else ["no fingerprint stored"]
        log.warning("%s holds the resume state of a run made with other settings or inputs "
                    "(%s): starting over instead of resuming", work_dir, "; ".join(changed[:8]))
        shutil.rmtree(work_dir)
        state = False
    work_dir.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(fingerprint, indent=2) + "\n")
    return state


def _changes(old: dict, new: dict, prefix: str = "") -> list:
    """'settings.epochs: 50 -> 20' for every value that differs, nested dicts key by key."""
    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changes(a, b, f"{prefix}{key}.")
        elif isinstance(a, list) or isinstance(b, list):
            out.append(f"{prefix}{key} differ")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def learning_rate(settings: dict, n_train: int, batch_size: int):
    """Adam's rate: the paper's constant, or cosine decay to zero over all epochs (from scratch,
    the late small steps buy several points of accuracy for no extra epochs)."""
    if settings["lr_schedule"] == "constant":
        return settings["learning_rate"]
    steps = settings["epochs"] * -(-int(n_train) // batch_size)
    return keras.optimizers.schedules.CosineDecay(settings["learning_rate"], steps)


def weights_record(model_name: str, weights, source: dict | None) -> dict:
    """Which weights the backbone started from: config source, file, sha256, paper's or not."""
    from spiralarms.acquire import sha256_of
    from spiralarms.models.weights import PAPER_WEIGHTS

    source = source or {}
    return {"source": source.get("spec"), "file": Path(weights).name if weights else None,
            "sha256": sha256_of(weights) if weights else None,
            "matches_paper": source.get("matches_paper", "no" if not weights else "unknown"),
            "paper": PAPER_WEIGHTS[model_name]}


def training_notes(model_name: str, weights, settings: dict, synthetic: bool) -> list:
    """Plain-words warnings about runs that are not the paper's method."""
    notes = []
    if model_name == "b0" and not weights and not synthetic:
        notes.append(
            f"B0 trained its whole backbone from scratch (models.b0.weights: null) on real data at "
            f"learning rate {settings['learning_rate']:g}; the paper trained only the head on a "
            "frozen Zoobot backbone at 1e-4. Set models.b0.weights to "
            "hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0 for the paper's recipe.")
    if model_name == "v2m" and not weights:
        notes.append("V2M trained from scratch; the paper fine-tuned ImageNet weights.")
    return notes


def train_experiment(
    model_name: str,
    variant,
    mode: str,
    seed: int,
    train_files,
    val_files,
    settings: dict,
    weights,
    model_path,
    history_path,
    work_dir,
    weights_source: dict | None = None,
    synthetic: bool = False,
    note: str | None = None,
    name: str | None = None,
    target: str = "labels",
    votes: dict | None = None,
) -> dict:
    """Train one experiment (`name` in progress lines); returns a summary. Rerunning after a kill
    resumes from the backup.

    `target` "votes" (issue 20): train on the vote shards' t11 counts with the
    Dirichlet-multinomial loss (spiralarms.models.votes); `accuracy` then compares the plurality
    of the votes with the predicted class, so the checkpoint is chosen without the hard labels.
    `votes`: which galaxies the vote shards hold (the vote_labels report), recorded in model.json
    and so in metrics.json."""
    s = {**DEFAULTS, **settings}
    name = name or f"{model_name}_{variant.name}_{mode}_s{seed}"
    if target == "votes" and s["class_weights"]:
        raise ValueError(f"{name}: train.class_weights weighs hard labels; a votes experiment "
                         "learns from vote counts: set class_weights: false for it "
                         "(experiments.per_experiment)")
    work_dir = Path(work_dir)
    prepare_work_dir(work_dir, run_fingerprint(model_name, variant, mode, seed, s,
                                               [*train_files, *val_files], weights, target))
    strategy, n_gpus = configure_devices(s["deterministic"], seed, s["precision"])
    common = {"model": model_name, "variant": variant, "image_size": s["image_size"],
              "crop_size": s["crop_size"], "batch_size": global_batch(s, n_gpus),
              "cache": s["cache"], "seed": seed, "target": target}
    counts = count_targets(train_files, variant)
    n_val = count_targets(val_files, variant).sum()
    train_ds = make_dataset(train_files, shuffle=s["shuffle"], count=counts.sum(),
                            augment=s["augment"] if mode == "xai" else None, **common)
    val_ds = make_dataset(val_files, count=n_val, **common)
    log.info("training galaxies per class %s: %s", list(variant.class_names), counts.tolist())
    record = weights_record(model_name, weights, weights_source)
    notes = ([note] if note else []) + training_notes(model_name, weights, s, synthetic)
    log.info("weights: %s (%s); precision %s, global batch %d on %d GPU(s)",
             record["source"] or "none, from scratch", record["file"] or "-", s["precision"],
             common["batch_size"], n_gpus)
    for line in notes:
        log.warning("note: %s", line)

    with strategy.scope():
        model = build_model(model_name, variant.n_classes, s["image_size"], mode, weights,
                            augment=s["augment"], bn_momentum=s["bn_momentum"], seed=seed,
                            target=target)
        rate = learning_rate(s, counts.sum(), common["batch_size"])
        fitted = training_view(model, target)  # votes: the concentrations, for the loss
        loss = dirichlet_multinomial_loss if target == "votes" else "categorical_crossentropy"
        # The metric as an object and the optimizer built here, not lazily in the first step:
        # a variable created while tf.function traces the step makes TensorFlow trace it twice
        # (B0: 20 s more per training on a CPU). The same weights, checked byte for byte.
        # eager: the same steps without building their graph (a smoke run of V2M, whose graph
        # takes minutes to build on a CPU, runs its few steps in seconds)
        fitted.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, run_eagerly=s["eager"],
                       metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        fitted.optimizer.build(fitted.trainable_variables)  # mixed_float16: the loss-scale wrapper
    weights_by_class = balanced_weights(counts) if s["class_weights"] else None
    best_path = work_dir / "best.weights.h5"
    ledger = EpochLedger(work_dir / "history.csv", best_path, s["monitor"], s["patience"],
                         n_images=int(counts.sum()))
    started = time.perf_counter()
    fitted.fit(
        train_ds, validation_data=val_ds, epochs=s["epochs"], class_weight=weights_by_class,
        steps_per_epoch=s["steps_per_epoch"],  # null: the whole training set (a cap: smoke runs)
        verbose=2,
        callbacks=[ledger, keras.callbacks.BackupAndRestore(
                       str(work_dir / "backup"), double_checkpoint=True),
                   keras.callbacks.TerminateOnNaN(), EpochProgress(name)],
    )
    fitted.load_weights(best_path)  # restore the best epoch, as restore_best_weights did
    save_model(model, model_path, s["save_optimizer"])
    training = {"weights": record, "precision": s["precision"],
                "batch_size": common["batch_size"], "batch_scaling": s["batch_scaling"],
                "gpus": n_gpus, "notes": notes, "target": target,
                **({"votes": votes} if target == "votes" else {})}
    model_card.write(model_path, model_name, variant, mode, s, training)
    rows = _read_rows(work_dir / "history.csv")
    _write_rows(Path(history_path), rows)
    best = max(rows, key=lambda r: r[s["monitor"]])
    summary = {"epochs_run": len(rows), "best_epoch": int(best["epoch"]),
               f"best_{s['monitor']}": best[s["monitor"]],
               "seconds": round(time.perf_counter() - started, 1), "gpus": n_gpus,
               "class_weights": weights_by_class, "settings": s}
    log.info("training summary: %s", json.dumps({k: v for k, v in summary.items()
                                                   if k != "settings"}))
    # The model and its history are written: the resume state (as large as the model) goes.
    shutil.rmtree(work_dir, ignore_errors=True)
    return summary


def run_train(experiment_name: str, shard_dir, settings: dict, weights, model_path, history_path,
              work_dir, weights_source: dict | None = None, synthetic: bool = False,
              note: str | None = None, threads: int | None = None,
              vote_report=None) -> dict:
    """The `train` rule: the experiment named `experiment_name` on the train and val shards in
    `shard_dir`, TensorFlow held to `threads` cores (`runtime.configure`); see train_experiment.
    `vote_report`: the vote_labels report of a votes experiment's shards (what it trained on)."""
    runtime.configure(threads)
    experiment = Experiment.parse(experiment_name)
    votes = None
    if experiment.target == "votes":
        votes = votes_record(json.loads(Path(vote_report).read_text()) if vote_report else {})
    return train_experiment(
        experiment.model,
        experiment.variant,
        experiment.mode,
        experiment.seed,
        shard_files(shard_dir, "train"),
        shard_files(shard_dir, "val"),
        settings,
        weights,
        model_path,
        history_path,
        work_dir,
        weights_source=weights_source,
        synthetic=synthetic,
        note=note,
        name=experiment_name,
        target=experiment.target,
        votes=votes,
    )


def votes_record(report: dict) -> dict:
    """What a votes experiment trained on, from the vote_labels report: the votes.* switches and
    the training galaxies, of them the unflagged ones (recorded in metrics.json `training`)."""
    return {**report.get("settings", {}), "train_galaxies": report.get("train"),
            "unflagged_train_galaxies": report.get("unflagged_added")}


def save_model(model, path, with_optimizer: bool = False):
    """model.keras; without the optimizer's state unless asked (Adam's two moments would triple
    the file: a V2M is 625 MB with them, about 210 MB without)."""
    if not with_optimizer:
        inference = keras.Model.from_config(model.get_config())  # the same graph, never compiled
        inference.set_weights(model.get_weights())
        model = inference
    with atomic.replacing(path, suffix=".keras") as partial:
        model.save(partial)
