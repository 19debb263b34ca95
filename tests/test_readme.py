"""Every command in the README's bash blocks runs as written after `make demo`.

Statically, each command is checked against what it names: experiment names parse, and the
results a command reads are ones the demo config makes (its grid); `spiralarms` sub-commands and
flags parse with the CLI's own parser; `make` targets exist in the Makefile; `snakemake` flags
parse with Snakemake's parser and no target is swallowed by a many-valued flag. Dynamically, in a
temporary copy of the layout `make demo` leaves (a tiny model with its card at the demo's model
path, the cut-out folders and catalogue the README names): prediction commands run as written
(only the leading `.venv/bin/` becomes this venv's) and must write what they say, and workflow
commands dry-run (`-n`). Commands that need the internet, root, SLURM or the full demo are listed
in SKIPPED_BY_DESIGN with the reason; a README command no rule classifies fails the test.
"""

import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spiralarms import config_layers
from spiralarms.cli import build_parser
from spiralarms.training.experiment import Experiment, extra_splits, grid

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
DEMO = ROOT / "config" / "demo.yaml"
EXPERIMENT_PATH = re.compile(r"results/experiments/([^/\s]+)")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".fits", ".fit", ".fits.gz", ".fits.fz")

# What is done with each command, by the first rule that matches it: (pattern, kind, reason).
# kind "run": run as written; "dry-run": snakemake -n; "skip": checked statically only.
SKIPPED_BY_DESIGN = [
    (r"make demo\b", "the 15-minute run whose layout this test stands in for"),
    (r"make test\b", "the whole suite, this test included"),
    (r"make install\b", "installs packages from PyPI (internet)"),
    (r"\.venv/bin/snakemake .*--report\b",
     "needs the demo's finished results; tests/test_workflow.py reports a tiny run"),
    (r"(eval .*)?(sudo )?ci/slurm/(up|down)\.sh\b",
     "needs root and apt for a local SLURM; tests/test_slurm.py runs it"),
    (r"sbatch\b", "needs a running SLURM controller (ci/slurm/up.sh); tests/test_slurm.py"),
    (r"\.venv/bin/spiralarms cutouts\b",
     "fetches from SkyServer (internet); tests/test_cutouts.py runs it against 127.0.0.1"),
    (r"\.venv/bin/spiralarms export-model\b",
     "needs an evaluated experiment; tests/test_model_export.py exports and predicts from one"),
]
RUN = [r"\.venv/bin/spiralarms predict\b"]
# Snakemake commands train networks for minutes (the demo's) to hours on a GPU with downloads
# (the real run's): a dry run checks offline that the workflow accepts them and plans their targets.
DRY_RUN = [r"\.venv/bin/snakemake\b"]


def readme_blocks(language: str) -> list:
    """The bodies of the README's fenced blocks of one language, indentation removed."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(rf"^( *)```{language}\n(.*?)^\1```", text, re.DOTALL | re.MULTILINE):
        indent = match.group(1)
        blocks.append("\n".join(line.removeprefix(indent)
                                for line in match.group(2).splitlines()))
    return blocks


def readme_commands() -> list:
    """Each command of the bash blocks on one line (`\\` continuations joined), comments removed."""
    commands = []
    for block in readme_blocks("bash"):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def kind(command: str):
    """('skip', reason), ('run', None), ('dry-run', None) or (None, None) for unclassified."""
    for pattern, reason in SKIPPED_BY_DESIGN:
        if re.match(pattern, command):
            return "skip", reason
    if any(re.match(p, command) for p in RUN):
        return "run", None
    if any(re.match(p, command) for p in DRY_RUN):
        return "dry-run", None
    return None, None


COMMANDS = readme_commands()


@cache
def demo_grid() -> set:
    config = config_layers.load([DEMO])
    return set(grid(config["experiments"], extra_splits(config["selection"])))


@cache
def make_targets() -> set:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w./-]+):(?!=)", text, re.MULTILINE))


def test_the_readme_has_commands_and_each_is_classified():
    assert len(COMMANDS) >= 10, COMMANDS  # the extraction found the blocks
    unclassified = [c for c in COMMANDS if kind(c)[0] is None]
    assert not unclassified, (f"classify these README commands in {__file__} (RUN, DRY_RUN or "
                              f"SKIPPED_BY_DESIGN with the reason): {unclassified}")
    assert {"run", "dry-run", "skip"} <= {kind(c)[0] for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_experiment_named_parses(command):
    for name in EXPERIMENT_PATH.findall(command):
        Experiment.parse(name)  # raises, naming the wrong part


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.startswith(".venv/bin/snakemake")])
def test_results_a_command_reads_are_made_by_the_demo(command):
    # Snakemake targets may name any experiment (it trains it); anything else reads what exists.
    missing = set(EXPERIMENT_PATH.findall(command)) - demo_grid()
    assert not missing, f"{command!r} reads {missing}; `make demo` makes {sorted(demo_grid())}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make ")])
def test_make_targets_exist(command):
    targets = shlex.split(command)[1:]
    assert set(targets) <= make_targets(), f"{command!r}: Makefile has {sorted(make_targets())}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith(".venv/bin/spiralarms")])
def test_spiralarms_commands_parse_with_the_cli(command):
    args = shlex.split(command)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as error:
        pytest.fail(f"{command!r} is refused by spiralarms' parser (exit {error.code})")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith(".venv/bin/snakemake")])
def test_snakemake_commands_parse_and_keep_their_targets(command):
    from snakemake.cli import get_argument_parser

    words = shlex.split(command)[1:]
    try:
        args = get_argument_parser().parse_args(words)
    except (SystemExit, ValueError) as error:
        pytest.fail(f"{command!r} is refused by Snakemake's parser: {error!r}")
    # A target after --resources/--configfile would be swallowed: "put the target first".
    results = [w for w in words if w.startswith("results/")]
    report = [args.report] if getattr(args, "report", None) else []
    assert sorted(results) == sorted(list(args.targets) + [str(r) for r in report]), command
    for path in getattr(args, "configfile", None) or []:
        assert (ROOT / path).is_file() or Path(path).name == "my.yaml", path  # my.yaml: the user's


@pytest.mark.parametrize("block", readme_blocks("yaml"))
def test_yaml_examples_parse_and_name_valid_experiments(block):
    content = yaml.safe_load(block)
    assert isinstance(content, dict)
    for name in re.findall(r"\b(?:b0|v2m)_\w+_s\d+\b", block):
        Experiment.parse(name)


# --- run in a copy of the layout `make demo` leaves ---------------------------------------------


def write_fits_cube(path, seed):
    """A g, r, z cube as a survey's cut-out service gives (`--fits-bands 1` takes r)."""
    from astropy.io import fits
    from tiny_models import galaxy_pixels

    planes = galaxy_pixels(96, seed).astype(np.float32).transpose(2, 0, 1) * 0.01
    fits.PrimaryHDU(planes).writeto(path)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """What the README's commands find after `make demo`: the demo's B0 6-class model (a tiny
    stand-in with its card), and the user's inputs the commands name."""
    from tiny_models import save_tiny_model, write_images

    root = tmp_path_factory.mktemp("after_make_demo")
    for name in demo_grid():
        if name.startswith("b0_6class"):
            save_tiny_model(root / "results" / "experiments" / name)
    folder = write_images(root / "my_cutouts")
    good = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    pd.DataFrame({"id_str": [f"g{i}" for i in range(len(good))],
                  "file_loc": [f"my_cutouts/{n}" for n in good]}).to_csv(root / "survey.csv",
                                                                        index=False)
    (root / "legacy_cutouts").mkdir()
    for seed in range(3):
        write_fits_cube(root / "legacy_cutouts" / f"cutout{seed}.fits", seed)
    fetch_my_sample(root)
    return root


def fetch_my_sample(root):
    """What `spiralarms cutouts my_sample.csv -o my_sample_cutouts` leaves, fetched from the
    tests' imitation of SkyServer: one position outside the footprint, one not a number."""
    from cutout_server import CutoutServer

    from spiralarms.acquire.cutouts import CutoutOptions, fetch_cutouts

    pd.DataFrame({"objid": ["587722981", "587722982", "587722983", "587722984"],
                  "ra": ["150.1", "150.2", "150.3", "x"], "dec": [2.0, 2.1, -85.0, 2.0],
                  "petroR90_r": [8.0, 12.0, 9.0, 9.0]}).to_csv(root / "my_sample.csv", index=False)
    with CutoutServer() as server:
        fetch_cutouts(root / "my_sample.csv", root / "my_sample_cutouts",
                      CutoutOptions(base_url=server.base_url, size=96), "objid",
                      size_column="petroR90_r", progress=False)


@pytest.fixture(scope="module")
def workflow_layout(tmp_path_factory):
    """A checkout with nothing run yet, so each dry run plans its targets, and the user's file of
    the SLURM survey command (the README's `predict:` example)."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("Snakefile", "workflow", "config", "profiles"):
        (root / name).symlink_to(ROOT / name)
    (root / "survey.csv").write_text("id_str,file_loc\ng0,my_cutouts/galaxy.jpg\n")
    (root / "my_sample.csv").write_text("objid,ra,dec,petroR90_r\n587722981,150.1,2.0,8.0\n")
    (root / "my.yaml").write_text(yaml.safe_dump(
        {"predict": {"survey": {"model": "b0_6class_xai_s42", "catalog": "survey.csv",
                                "chunk_size": 10000},
                     "my_sample": {"model": "b0_6class_xai_s42", "positions": "my_sample.csv",
                                   "id_column": "objid", "size_column": "petroR90_r",
                                   "tables": ["fits"]}}}))
    return root


def shell(command: str, cwd, extra=()) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    words[0] = str(BIN / words[0].removeprefix(".venv/bin/"))  # only the leading .venv/bin/
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(shlex.join([*words, *extra]), shell=True, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def inputs_named(args, root) -> int:
    """How many galaxies a predict command was given: catalogue rows or image files."""
    if args.catalog:
        return len(pd.read_csv(root / args.catalog))
    return sum(1 for folder in args.images for p in (root / folder).iterdir()
               if p.name.lower().endswith(IMAGE_SUFFIXES))


@pytest.mark.slow  # runs the commands: minutes
@pytest.mark.parametrize("command", [c for c in COMMANDS if kind(c)[0] == "run"])
def test_offline_commands_run_as_written_and_write_what_they_say(command, layout):
    args = build_parser().parse_args(shlex.split(command)[1:])
    result = shell(command, layout)
    assert result.returncode == 0, result.stderr[-3000:]
    output = layout / args.output
    if output.suffix == ".fits":
        from astropy.table import Table

        table = Table.read(output).to_pandas()
    else:
        table = pd.read_csv(output) if output.suffix == ".csv" else pd.read_parquet(output)
    skipped_path = output.with_name(output.name.split(".")[0] + ".skipped.csv")
    skipped = pd.read_csv(skipped_path) if skipped_path.exists() else []
    assert len(table) > 0 and table["pred_name"].notna().all()
    assert len(table) + len(skipped) == inputs_named(args, layout)
    if args.chunk_size:  # the README's list of what a chunked run writes beside the dataset
        stem = output.name.split(".")[0]
        for suffix in (".skipped.csv", ".summary.json", ".summary.md", ".confidence.png"):
            assert (output.parent / f"{stem}{suffix}").is_file(), suffix
    else:
        assert f"wrote {len(table)} predictions" in result.stdout


@pytest.mark.slow  # runs the commands: minutes
@pytest.mark.parametrize("command", [c for c in COMMANDS if kind(c)[0] == "dry-run"])
def test_workflow_commands_dry_run(command, workflow_layout):
    result = shell(command, workflow_layout, ["-n"])
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "This was a dry-run" in result.stdout + result.stderr
