"""A throwaway one-node SLURM for the tests (ci/slurm/up.sh, ci/slurm/down.sh) and what the tests
read back from it. `slurm_cluster` (imported by conftest) is one cluster for the whole session:
the workflow test and the prediction test share it; one already up is reused and left running."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UP = REPO / "ci/slurm/up.sh"
DOWN = REPO / "ci/slurm/down.sh"
DEFAULT_SLURM_CONF = Path("/etc/slurm/slurm.conf")
UP_TIMEOUT_S = 300


def fast_options(rule, mem_mb=2000, runtime=30):
    """On top of profiles/slurm: poll a one-node cluster fast; squeue answers job states because
    this cluster has no accounting database (sacct would fail); keep jobs within the node (one
    asking for more CPUs than it has pends forever, one asking for more memory is refused); keep
    every job's SLURM log; fail fast instead of resubmitting. `rule` gets more memory and time."""
    return [
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "--seconds-between-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--max-threads", str(min(2, os.cpu_count() or 1)),
        "--default-resources", "slurm_partition=debug", "runtime=30", "mem_mb=1000",
        "--set-resources", f"{rule}:mem_mb={mem_mb}", f"{rule}:runtime={runtime}",
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


def running_throwaway_slurm():
    """SLURM_CONF of a throwaway SLURM that is up (up.sh links it from /etc/slurm), or None."""
    if not DEFAULT_SLURM_CONF.is_symlink():
        return None
    conf = str(DEFAULT_SLURM_CONF.resolve())
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], env={**os.environ, "SLURM_CONF": conf},
                          capture_output=True, text=True, timeout=20, check=False)
    return conf if done.returncode == 0 and done.stdout.strip() in ("idle", "mix", "alloc") \
        else None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Environment variables pointing at a running one-node SLURM; stopped after the session
    unless it was already up."""
    reason = why_no_local_slurm()
    if reason:
        pytest.skip(reason)
    conf = running_throwaway_slurm()
    if conf:
        yield {**os.environ, "SLURM_CONF": conf}
        return
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


