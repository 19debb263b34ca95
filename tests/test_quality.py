"""Quality gates that CI runs through `make test`: ruff, snakefmt --check, snakemake --lint."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command):
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_ruff_is_clean():
    result = _run("ruff", "check", "src", "tests", "bench", "workflow/scripts")
    assert result.returncode == 0, result.stdout


def test_snakefmt_would_change_nothing():
    result = _run("snakefmt", "--check", "Snakefile", "workflow/rules")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("config", ["config/config.yaml", "config/demo.yaml",
                                    ".test/config/tiny.yaml"])
def test_snakemake_lint_is_clean(config):
    result = _run("snakemake", "--lint", "--configfile", config)
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_bad_config_value_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: many\n")
    result = _run("snakemake", "-n", "--configfile", str(bad))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "'many' is not of type 'integer'" in output
    assert "On instance['train']['epochs']" in output
