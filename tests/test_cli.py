"""The `spiralarms` command line: predict, import-model, summary."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from tiny_models import BAD, GOOD

from spiralarms.cli import main

SUMMARY = pd.DataFrame({
    "experiment": ["b0_6class_standard_s42", "b0_6class_standard_s42", "v2m_merge34_xai_s1"],
    "model": ["b0", "b0", "v2m"], "classes": ["6class", "6class", "merge34"],
    "mode": ["standard", "standard", "xai"], "seed": [42, 42, 1],
    "subset": ["val", "test", "test"], "n": [90, 120, 118],
    "accuracy": [0.8, 0.8125, 0.5], "accuracy_ci_low": [0.71, 0.74, 0.41],
    "accuracy_ci_high": [0.87, 0.87, 0.59], "macro_f1": [0.79, 0.7904, 0.48],
})


def test_predict_writes_parquet_and_reports_skips(model_path, images, tmp_path, capsys):
    out = tmp_path / "predictions.parquet"
    code = main(["predict", "--model", str(model_path), str(images), "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert len(pd.read_parquet(out)) == len(GOOD)
    assert f"wrote {len(GOOD)} predictions to {out}" in printed
    assert f"skipped {len(BAD)} unreadable or missing inputs, listed in " \
           f"{tmp_path / 'predictions.skipped.csv'}" in printed
    assert "can't tell" in printed and "5+ arms" in printed  # the per-class count table


def test_predict_with_card_flags_for_a_model_without_card(model_path, images, tmp_path, capsys):
    bare = tmp_path / "bare" / "model.keras"
    bare.parent.mkdir()
    bare.write_bytes(model_path.read_bytes())
    out = tmp_path / "p.parquet"
    argv = ["predict", "--model", str(bare), str(images / "galaxy.jpg"), "-o", str(out)]
    assert main(argv) == 2
    assert "--classes --crop-size" in capsys.readouterr().err
    assert main(argv + ["--classes", "6class", "--crop-size", "224"]) == 0
    assert len(pd.read_parquet(out)) == 1


def test_predict_missing_model_or_no_images_exits_2(model_path, tmp_path, capsys):
    out = str(tmp_path / "p.parquet")
    assert main(["predict", "--model", str(tmp_path / "nope.keras"), str(tmp_path), "-o", out]) == 2
    assert "nope.keras does not exist" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_path), str(tmp_path), "-o", out]) == 2
    assert "no images" in capsys.readouterr().err


def test_import_model_command(model_path, tmp_path, capsys):
    experiment = tmp_path / "b0_6class_standard_s5"
    assert main(["import-model", str(model_path), "--experiment-dir", str(experiment)]) == 0
    assert (experiment / "model.keras").exists() and (experiment / "imported.json").exists()
    assert main(["import-model", str(model_path), "--experiment-dir", str(experiment)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_summary_prints_table_and_headline(tmp_path, capsys):
    SUMMARY.to_csv(tmp_path / "metrics.csv", index=False)
    assert main(["summary", str(tmp_path / "metrics.csv"), "--data", "synthetic"]) == 0
    printed = capsys.readouterr().out
    assert "0.812 [0.740, 0.870]" in printed and "v2m_merge34_xai_s1" in printed
    assert printed.strip().splitlines()[-1] == \
        "B0 6-class synthetic test accuracy: 0.812 (macro-F1 0.790, n=120)"


def test_summary_prints_each_experiments_note_under_the_table(tmp_path, capsys):
    smoke = "Smoke run of the second network (1 epoch at 32 px): not a result."
    SUMMARY.assign(notes=["", "", smoke]).to_csv(tmp_path / "metrics.csv", index=False)
    assert main(["summary", str(tmp_path / "metrics.csv")]) == 0
    printed = capsys.readouterr().out
    assert f"v2m_merge34_xai_s1: {smoke}" in printed
    assert "b0_6class_standard_s42:" not in printed  # no note, no line


def test_summary_falls_back_to_validation(tmp_path, capsys):
    SUMMARY[SUMMARY["subset"] == "val"].to_csv(tmp_path / "metrics.csv", index=False)
    assert main(["summary", str(tmp_path / "metrics.csv")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == \
        "B0 6-class val accuracy: 0.800 (macro-F1 0.790, n=90)"


def test_summary_missing_file_exits_2_via_the_installed_command(tmp_path):
    command = Path(sys.executable).with_name("spiralarms")
    result = subprocess.run([str(command), "summary", str(tmp_path / "metrics.csv")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "metrics.csv does not exist" in result.stderr
