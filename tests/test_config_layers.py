"""Which config a run uses: the real run with no --configfile, the schema's defaults under a
--configfile; `spiralarms config` shows every value and where it came from, and names the file
and line of a bad config file."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from spiralarms.config_checks import ConfigError
from spiralarms.config_layers import REAL_RUN, SCHEMA_DEFAULT, effective, load, read_config_file

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / ".test" / "config" / "tiny.yaml"
# A small offline config: synthetic data, one experiment, nothing to download.
SMALL = """\
data:
  catalog: results/data/synthetic/zoo2MainSpecz.csv.gz
  mapping: results/data/synthetic/gz2_filename_mapping.csv
  images: results/data/synthetic/images_gz2/images
synthetic: {enabled: true}
experiments: {models: [b0], classes: [6class], modes: [standard]}
"""


def spiralarms(*args, cwd=ROOT):
    return subprocess.run([str(BIN / "spiralarms"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def dry_run(*args, cwd=ROOT):
    result = subprocess.run([str(BIN / "snakemake"), "-n", "--quiet", "rules", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


def rows(*files) -> dict:
    return {key: (value, source) for key, value, source in effective(files)}


def test_without_configfile_the_real_run_over_the_schema():
    values = rows()
    assert values["models.b0.weights"] == ("hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0",
                                           str(REAL_RUN))
    assert values["xai.attribution_per_class"][1] == SCHEMA_DEFAULT  # config.yaml leaves it


def test_a_configfile_starts_from_the_schema_not_the_real_run():
    values = rows(TINY)
    # the real run's download sources and comparisons are not inherited
    assert values["models.b0.weights"] == (None, SCHEMA_DEFAULT)
    assert values["models.v2m.weights"] == (None, SCHEMA_DEFAULT)
    assert values["train.cache"] == (False, SCHEMA_DEFAULT)  # the real run's is true
    assert values["comparisons"][1] == str(TINY)
    assert values["train.epochs"] == (1, str(TINY))


def test_files_apply_in_order_and_each_key_names_the_last_file_that_set_it():
    values = rows(REAL_RUN, ROOT / "config" / "heldout.yaml")
    heldout = str(ROOT / "config" / "heldout.yaml")
    assert values["selection.test_fraction"] == (0.15, heldout)
    assert values["evaluate.subsets"] == (["val", "test", "overflow"], heldout)
    assert values["selection.cap"] == (300, str(REAL_RUN))
    assert values["train.save_optimizer"] == (False, SCHEMA_DEFAULT)


def test_the_workflow_uses_the_same_rule(tmp_path):
    """snakemake itself: a small config alone plans no download (it once inherited the real
    run's and was refused by its comparisons); no --configfile plans the real run's."""
    small = tmp_path / "small.yaml"
    small.write_text(SMALL)
    code, output = dry_run("--configfile", str(small))
    assert code == 0, output
    assert "train " in output and "download" not in output and "fetch_images" not in output
    code, output = dry_run()
    assert code == 0, output
    assert "download_weights" in output and "fetch_images" in output


def test_a_configfile_without_data_says_it_starts_from_the_schema(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("train:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as error:
        load([mine])
    assert "data, experiments: missing; a --configfile starts from the schema's defaults" \
        in str(error.value)
    assert "--configfile config/config.yaml yours.yaml" in str(error.value)


def test_config_command_prints_key_value_and_source():
    result = spiralarms("config", "--configfile", "config/config.yaml", "config/heldout.yaml")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert lines["selection.test_fraction"] == ["0.15", "config/heldout.yaml"]
    assert lines["selection.cap"] == ["300", "config/config.yaml"]
    assert lines["train.save_optimizer"] == ["false", "schema", "default"]


def test_config_command_does_not_import_tensorflow():
    code = ("import sys\nfrom spiralarms.cli import main\nmain(['config'])\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_version():
    result = spiralarms("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"spiralarms {version('spiralarms')}"


# --- messages ----------------------------------------------------------------------------------

def test_a_yaml_error_names_the_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n   batch_size: 4\n")
    result = spiralarms("config", "--configfile", str(bad))
    assert result.returncode == 2
    assert f"config file {bad}, line 3, column 14: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_snakemake_s_own_yaml_message_is_the_one_the_readme_explains(tmp_path):
    """Snakemake reads --configfile before the workflow's code runs and names neither file nor
    line; the README's troubleshooting row for its exact words points at `spiralarms config`."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n   batch_size: 4\n")
    code, output = dry_run("--configfile", str(bad))
    assert code != 0
    words = "Config file is not valid JSON or YAML"
    assert words in output, output
    rows = [line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("|") and words in line]
    assert rows and "spiralarms config --configfile" in rows[0]


def test_a_missing_configfile_is_named(tmp_path):
    result = spiralarms("config", "--configfile", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert f"config file {tmp_path / 'nope.yaml'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_configfile_that_is_not_a_mapping_is_named(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- train\n- epochs\n")
    with pytest.raises(ConfigError, match=f"config file {listed} holds a list, not a mapping"):
        read_config_file(listed)


@pytest.mark.parametrize("digits", ["1234", "0123"])  # 0123: YAML 1.1 reads octal 83
def test_an_unquoted_all_digit_checksum_is_refused_saying_to_quote_it(tmp_path, digits):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"data:\n  catalog_sha256: {digits}\n")
    with pytest.raises(ConfigError) as error:
        load([REAL_RUN, mine])
    assert "data.catalog_sha256: YAML read the checksum as the number" in str(error.value)
    assert 'quote it: catalog_sha256: "' in str(error.value)


def test_data_images_that_is_a_file_names_the_key(tmp_path):
    image = tmp_path / "galaxy.jpg"
    image.write_bytes(b"\xff\xd8")
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"data:\n  images: {image}\n")
    with pytest.raises(ConfigError, match=f"data.images is '{image}', a file, not a folder: set "
                                          f"data.images to the folder"):
        load([REAL_RUN, mine])
