"""Bad input as a new user gives it: each message names the file, key or row and what to do."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def dry_run(tmp_path, config_text, *targets):
    """`snakemake -n --configfile config/config.yaml <config_text>`: the real run, changed."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(config_text)
    result = subprocess.run([str(BIN / "snakemake"), *targets, "-n", "--configfile",
                             "config/config.yaml", str(extra)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


# --- config ------------------------------------------------------------------------------------

BAD_CONFIGS = [
    ("models:\n  b0:\n    train:\n      augment: {rotaton: 0.3}\n",
     ("models.b0.train.augment.rotaton: unknown key (did you mean 'rotation'?); models.b0.train."
      "augment takes rotation, flip, zoom")),
    ("models:\n  v2m:\n    train:\n      epochs: ten\n",
     "models.v2m.train.epochs: 'ten' is not of type 'integer'"),
    (("experiments:\n  per_experiment:\n    b0_6class_xai_s42:\n      train:\n"
      "        augment: {rotation: 7}\n"),
     ("experiments.per_experiment.b0_6class_xai_s42.train.augment.rotation: 7 is greater than the "
      "maximum of 0.5")),
    ("experiments:\n  seeds: [-1]\n", "experiments.seeds[0]: -1 is less than the minimum of 0"),
    ("trian:\n  epochs: 3\n", "trian: unknown key (did you mean 'train'?); the config takes data,"),
    ("selection:\n  cap_order: randm\n",
     "selection.cap_order: 'randm' is not one of ['legacy', 'random'] (did you mean 'random'?)"),
]


@pytest.mark.parametrize(("config_text", "expected"), BAD_CONFIGS)
def test_bad_config_names_the_key_and_a_close_match_without_the_schema(tmp_path, config_text,
                                                                      expected):
    code, output = dry_run(tmp_path, config_text)
    assert code != 0
    assert expected in output, output
    assert "Failed validating" not in output and len(output.splitlines()) < 15, output


def test_a_target_whose_experiment_name_does_not_parse_names_the_scheme(tmp_path):
    target = "results/experiments/b0_7class_standard_s42/metrics.json"
    code, output = dry_run(tmp_path, "{}\n", target)
    assert code != 0
    assert (f"no rule makes {target}: experiment 'b0_7class_standard_s42' is not of the form "
            "{model}_{classes}_{mode}_s{seed} (optionally _votes before _s{seed}, _split{k} after it), "
            "where classes '7class' is "
            "wrong: model is one of b0, v2m; classes one of 6class, merge34, merge45, select12; "
            "mode one of standard, xai") in output, output
    assert "No rule to produce" not in output


def test_data_images_that_is_a_file_names_the_key_before_anything_runs(tmp_path):
    image = tmp_path / "galaxy.jpg"
    image.write_bytes(b"\xff\xd8")
    code, output = dry_run(tmp_path, f"data:\n  images: {image}\n")
    assert code != 0
    assert f"data.images is '{image}', a file, not a folder: set data.images to the folder" \
        in output, output
    assert "image_exists" not in output


def test_a_url_that_names_no_file_is_refused_naming_it(tmp_path):
    code, output = dry_run(tmp_path, "data:\n  catalog: https://example.org/files/\n")
    assert code != 0
    assert "https://example.org/files/: the URL names no file to save" in output, output


@pytest.mark.parametrize("target", ["results/predictions/survy.parquet",
                                    "results/predictions/survy/chunks/0.parquet"])
def test_a_prediction_name_not_in_the_config_says_so(tmp_path, target):
    images = tmp_path / "images"
    images.mkdir()
    code, output = dry_run(tmp_path, f"predict:\n  survey:\n    model: b0_6class_xai_s42\n"
                                     f"    images: {images}\n", target)
    assert code != 0
    assert f"No rule to produce {target}" in output, output
    assert "KeyError" not in output and "InputFunctionException" not in output, output


def test_overrides_keep_following_train_for_keys_they_do_not_set():
    import yaml
    from snakemake.utils import update_config

    from spiralarms.config_checks import validate_config
    from spiralarms.training.experiment import train_settings

    config = {}
    for name in ("config.yaml", "demo.yaml"):
        update_config(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    config["train"] = {"epochs": 7, "patience": 3}
    config["models"]["v2m"]["train"] = {"augment": {"zoom": 0.1}}
    validate_config(config, ROOT / "workflow/schemas/config.schema.yaml")
    assert config["models"]["v2m"]["train"] == {"augment": {"zoom": 0.1}}  # no defaults added
    settings = train_settings(config, "v2m")
    assert (settings["epochs"], settings["patience"]) == (7, 3)
    assert settings["augment"] == {"rotation": 0.5, "flip": True, "zoom": 0.1}


# --- catalogue ---------------------------------------------------------------------------------

def test_truncated_catalogue_names_the_file_and_the_fix(tmp_path):
    from fixtures_gz2 import galaxies, write_catalog

    from spiralarms.gz2.catalog import CatalogError, read_catalog

    whole = write_catalog(galaxies([0, 1, 2, 3, 4, 5] * 300), tmp_path / "whole.csv.gz")
    cut = tmp_path / "zoo2MainSpecz.csv.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])  # header intact
    with pytest.raises(CatalogError) as error:
        read_catalog(cut)
    message = str(error.value)
    assert str(cut) in message and "download it again" in message, message


def test_text_in_a_cut_column_names_the_file_column_and_rows(tmp_path):
    import gzip

    from fixtures_gz2 import FEATURES_WF, galaxies, write_catalog

    from spiralarms.gz2.catalog import CatalogError, read_catalog

    path = write_catalog(galaxies([0, 1, 2, 3, 4, 5]), tmp_path / "zoo2MainSpecz.csv.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    column = lines[0].split(",").index(FEATURES_WF)
    for row in (2, 5):  # data rows 2 and 5 get a decimal comma, quoted as a spreadsheet writes it
        cells = lines[row].split(",")
        cells[column] = '"0,61"'
        lines[row] = ",".join(cells)
    path.write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    with pytest.raises(CatalogError) as error:
        read_catalog(path)
    message = str(error.value)
    for part in (str(path), repr(FEATURES_WF), "data row 2: '0,61'", "data row 5", "0.61"):
        assert part in message, message


# --- what the labels and shards stages kept and dropped ----------------------------------------

def test_labels_say_what_was_selected_and_list_blank_fractions_by_id(tmp_path, caplog):
    import logging

    import numpy as np
    from fixtures_gz2 import (
        DR7OBJID_BASE,
        SPIRAL_WF,
        galaxies,
        write_catalog,
        write_jpegs,
        write_mapping,
    )

    from spiralarms.gz2.selection import run_labels

    rows = galaxies([0, 1, 2, 3, 4, 5] * 3 + [1, 1, 1])
    rows.loc[18, SPIRAL_WF] = np.nan  # a blank vote fraction
    rows.loc[19, SPIRAL_WF] = 0.1     # fails the spiral cut
    catalog = write_catalog(rows, tmp_path / "zoo2MainSpecz.csv.gz")
    mapping = write_mapping(rows, tmp_path / "gz2_filename_mapping.csv")
    images = write_jpegs(tmp_path / "images", rows["asset_id"].iloc[:20])  # the last one missing
    with caplog.at_level(logging.INFO, logger="spiralarms.gz2.selection"):
        _, report = run_labels(catalog, mapping, images, None, tmp_path / "labels.parquet",
                               tmp_path / "selection_report.json")
    assert report["missing_fraction_examples"] == [{"dr7objid": DR7OBJID_BASE + 18,
                                                    "blank": [SPIRAL_WF]}]
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("labels:"))
    assert "selected 18 of 21 catalogue rows (1 3, 2 3, 3 3, 4 3, 5+ 3, ? 3)" in line, line
    assert f"1 image_missing (dr7objid {DR7OBJID_BASE + 20})" in line, line
    assert f"1 missing_fractions (dr7objid {DR7OBJID_BASE + 18})" in line, line
    assert "1 spiral_cut (selection.spiral_min = 0.619)" in line, line


def test_a_stage_summary_goes_to_the_log_file_and_the_terminal(tmp_path):
    log = tmp_path / "stage.log"
    code = (f"import logging; from spiralarms import logs; logs.to_file({str(log)!r}); "
            "logging.getLogger('x').info('detail only'); "
            "logging.getLogger('x').info('summary line', extra=logs.TERMINAL)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stderr.strip() == "summary line"
    assert "detail only" in log.read_text() and "summary line" in log.read_text()


def test_shards_say_empty_file_and_what_was_written(tmp_path, caplog):
    import logging

    import pandas as pd
    from fixtures_gz2 import write_jpegs

    from spiralarms.data.shards import write_shards

    n = 6
    labels = pd.DataFrame({
        "dr7objid": [587_722_981_741_363_294 + i for i in range(n)],
        "specobjid": [1_802_675_000_000_000_000 + i for i in range(n)],
        "asset_id": list(range(500, 500 + n)), "arm_class": [i % 6 for i in range(n)],
        "arm_fraction": [0.6] * n, "subset": ["train"] * 4 + ["val"] * 2,
        "image": [f"{500 + i}.jpg" for i in range(n)],
    })
    images = write_jpegs(tmp_path / "images", labels["asset_id"], size=16)
    (images / "501.jpg").write_bytes(b"")  # a download that left an empty file
    (images / "504.jpg").unlink()
    with caplog.at_level(logging.INFO, logger="spiralarms.data.shards"):
        manifest = write_shards(labels, images, tmp_path / "shards", shard_size=4)
    reasons = {e["asset_id"]: e["reason"] for e in manifest["excluded"]}
    assert reasons == {501: "empty file (0 bytes)", 504: "image file missing"}
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("shards:"))
    assert line.startswith("shards: wrote 4 of 6 labelled galaxies (train 3 in 1 shard(s), "
                           "val 1 in 1 shard(s)); excluded: 1 empty file (dr7objid "
                           "587722981741363295); 1 image file missing (dr7objid "
                           "587722981741363298)"), line
