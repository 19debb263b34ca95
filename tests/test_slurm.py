"""The tiny workflow end to end on a real SLURM: ci/slurm/up.sh starts a one-node controller with a
fake GPU, and Snakemake submits every job with sbatch through profiles/slurm, as on a cluster.

Runs as root on Debian/Ubuntu (CI); up.sh installs the SLURM packages with apt when missing.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from spiralarms.experiment import grid

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
UP = REPO / "ci/slurm/up.sh"
DOWN = REPO / "ci/slurm/down.sh"
DEFAULT_SLURM_CONF = Path("/etc/slurm/slurm.conf")

# --- what the test runs: change here ---------------------------------------------------------
TINY_CONFIG = REPO / ".test/config/tiny.yaml"
TARGETS = ["results/summary/metrics.csv"]
EXPERIMENTS = grid(yaml.safe_load(TINY_CONFIG.read_text())["experiments"])
# Rules whose jobs must have gone through SLURM (GPU_RULE must also have been given a GPU).
SLURM_RULES = {"synthesize", "labels", "shards", "train", "evaluate", "aggregate"}
GPU_RULE = "train"
RUN_TIMEOUT_S = 900
UP_TIMEOUT_S = 300
# ----------------------------------------------------------------------------------------------

# On top of profiles/slurm: poll a one-node cluster fast; squeue answers job states because this
# cluster has no accounting database (sacct would fail); keep jobs within the node (one asking for
# more CPUs than it has pends forever, one asking for more memory is refused); keep every job's
# SLURM log; fail fast instead of resubmitting.
TEST_OPTIONS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--seconds-between-status-checks", "2",
    "--slurm-keep-successful-logs",
    "--max-threads", str(min(2, os.cpu_count() or 1)),
    "--default-resources", "slurm_partition=debug", "runtime=30", "mem_mb=1000",
    "--set-resources", f"{GPU_RULE}:mem_mb=2000", f"{GPU_RULE}:runtime=30",
    "--retries", "0",
]


def why_no_local_slurm():
    """Reason this machine cannot host the throwaway SLURM, or None when it can."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux: ci/slurm/up.sh installs packages and starts SLURM daemons"
    if not shutil.which("apt-get") and not shutil.which("sbatch"):
        return "neither SLURM nor apt-get (to install it) is available"
    if DEFAULT_SLURM_CONF.exists() and not DEFAULT_SLURM_CONF.is_symlink():
        return f"{DEFAULT_SLURM_CONF} exists: a real SLURM is configured here, not touching it"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Environment variables pointing at a running one-node SLURM; stopped after the session."""
    reason = why_no_local_slurm()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    try:
        started = time.perf_counter()
        up = subprocess.run([str(UP), str(state)], check=False, capture_output=True, text=True,
                            timeout=UP_TIMEOUT_S)
        if up.returncode != 0:
            pytest.fail(f"{UP} failed (exit {up.returncode}):\n{up.stderr[-4000:]}")
        print(f"SLURM bring-up: {time.perf_counter() - started:.1f} s")
        yield {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    finally:
        down = subprocess.run([str(DOWN), str(state)], check=False, capture_output=True,
                              text=True, timeout=120)
        assert down.returncode == 0, f"{DOWN} failed:\n{down.stderr}"


def run_workflow(workdir, env):
    """Snakemake with the SLURM profile on the tiny config; the completed process."""
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(TINY_CONFIG),
        "--workflow-profile", str(REPO / "profiles/slurm"),
        *TEST_OPTIONS,
        *TARGETS,
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, check=False, cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr or ""
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        pytest.fail(f"snakemake on SLURM did not finish in {RUN_TIMEOUT_S} s:\n{stderr[-6000:]}")
    print(f"tiny workflow on SLURM: {time.perf_counter() - started:.0f} s")
    return done


def slurm_jobs(workdir, env):
    """Every job the controller still knows (MinJobAge keeps finished ones) run from workdir,
    as dicts of `scontrol show job` fields."""
    listing = subprocess.run(["scontrol", "-o", "show", "job"], env=env, capture_output=True,
                             text=True, check=True).stdout
    jobs = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in listing.splitlines() if line]
    return [job for job in jobs if Path(job.get("WorkDir", "")).resolve() == workdir.resolve()]


def rule_of(job):
    """Rule name from the plugin's job comment `rule_<name>[_wildcards_<values>]`."""
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def failure_report(done, workdir):
    """Snakemake's own output, then the newest rule logs (where a script's traceback lands)."""
    logs = sorted((workdir / "results/logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs[-2:])
    return f"snakemake exit {done.returncode}:\n{done.stderr[-4000:]}\n{tails}"


def test_tiny_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    done = run_workflow(tmp_path, slurm_cluster)
    assert done.returncode == 0, failure_report(done, tmp_path)

    for experiment in EXPERIMENTS:
        metrics = json.loads((tmp_path / f"results/experiments/{experiment}/metrics.json")
                             .read_text())
        assert 0.0 <= metrics["accuracy"] <= 1.0, f"{experiment}: {metrics['accuracy']}"
    summary = pd.read_csv(tmp_path / "results/summary/metrics.csv")
    assert sorted(summary["experiment"].unique()) == sorted(EXPERIMENTS)

    jobs = slurm_jobs(tmp_path, slurm_cluster)
    assert {rule_of(job) for job in jobs} >= SLURM_RULES, [job["Comment"] for job in jobs]
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    gpu_jobs = [job for job in jobs if rule_of(job) == GPU_RULE]
    assert len(gpu_jobs) == len(EXPERIMENTS)
    for job in gpu_jobs:
        assert "gpu" in job.get("TresPerJob", ""), f"job {job['JobId']} got no GPU: {job}"
        log = Path(job["StdOut"])
        assert log.is_relative_to(tmp_path / ".snakemake/slurm_logs") and log.is_file(), log
