"""A resume backup is used only for the settings and inputs it was made with."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from spiralarms.data.variants import Variant
from spiralarms.training.train import DEFAULTS, FINGERPRINT, prepare_work_dir, run_fingerprint

RUNNER = Path(__file__).with_name("train_runner.py")
VARIANT = Variant("stripes", (0, 1, 2), ("h", "v", "d"))


def fingerprint(tmp_path, **settings):
    shard = tmp_path / "train-000-of-001.tfrecord"
    if not shard.exists():
        shard.write_bytes(b"x" * 10)
    return run_fingerprint("b0", VARIANT, "xai", 1, {**DEFAULTS, "threads": 2, **settings},
                           [shard], None)


def test_same_settings_keep_the_backup_and_threads_do_not_count(tmp_path):
    work = tmp_path / "work"
    assert prepare_work_dir(work, fingerprint(tmp_path)) is False  # nothing to resume yet
    (work / "backup").mkdir()
    assert prepare_work_dir(work, fingerprint(tmp_path, threads=8)) is True
    assert (work / "backup").is_dir()


def test_changed_settings_or_inputs_clear_the_backup_and_say_what_changed(tmp_path, caplog):
    work = tmp_path / "work"
    prepare_work_dir(work, fingerprint(tmp_path))
    (work / "backup").mkdir()
    with caplog.at_level(logging.WARNING, logger="spiralarms.training.train"):
        assert prepare_work_dir(work, fingerprint(tmp_path, epochs=20)) is False
    assert "settings.epochs: 50 -> 20" in caplog.text and "starting over" in caplog.text
    assert not (work / "backup").exists()
    assert json.loads((work / FINGERPRINT).read_text())["settings"]["epochs"] == 20

    (work / "backup").mkdir()
    (tmp_path / "train-000-of-001.tfrecord").write_bytes(b"x" * 11)  # a new selection's shards
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spiralarms.training.train"):
        assert prepare_work_dir(work, fingerprint(tmp_path, epochs=20)) is False
    assert "inputs differ" in caplog.text


def test_a_backup_without_fingerprint_is_not_trusted(tmp_path):
    work = tmp_path / "work"
    (work / "backup").mkdir(parents=True)  # left by a version that stored none
    assert prepare_work_dir(work, fingerprint(tmp_path)) is False
    assert not (work / "backup").exists()


def test_training_after_a_config_change_starts_over(tmp_path):
    from tiny_shards import make_tiny_shards

    files = make_tiny_shards(tmp_path / "tiny", per_class=8)
    work = tmp_path / "work"
    work.mkdir()
    # The state of an interrupted run with other settings: 5 epochs in its ledger, a backup.
    (work / FINGERPRINT).write_text(json.dumps({"settings": {"epochs": 50}}))
    pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "accuracy": 0.9, "val_accuracy": 0.9,
                  "loss": 0.1, "val_loss": 0.1, "seconds": 1.0}).to_csv(work / "history.csv",
                                                                       index=False)
    (work / "backup").mkdir()
    args = {"seed": 1, "settings": {"epochs": 1, "batch_size": 8, "image_size": 32}, **files,
            "model": str(tmp_path / "model.keras"), "history": str(tmp_path / "history.csv"),
            "work_dir": str(work)}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(RUNNER.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, str(RUNNER), json.dumps(args)], capture_output=True,
                            text=True, env=env, timeout=600, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "settings.epochs: 50 -> 1" in log and "starting over" in log, log[-3000:]
    assert "resumed from the backup" not in log
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [1]
