"""The tiny workflow end to end on a real SLURM: ci/slurm/up.sh starts a one-node controller with a
fake GPU, and Snakemake submits every job with sbatch through profiles/slurm, as on a cluster.

Runs as root on Debian/Ubuntu (CI); up.sh installs the SLURM packages with apt when missing.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_support import REPO, fast_options, rule_of, slurm_jobs

from spiralarms.training.experiment import grid

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


# --- what the test runs: change here ---------------------------------------------------------
TINY_CONFIG = REPO / ".test/config/tiny.yaml"
# One experiment of the tiny grid: every rule still runs as a SLURM job (test_workflow runs the
# whole grid locally); a second training would only add minutes.
ONE_EXPERIMENT = {"experiments": {"modes": ["standard"]}, "comparisons": []}
TARGETS = ["results/summary/metrics.csv"]
EXPERIMENTS = grid({**yaml.safe_load(TINY_CONFIG.read_text())["experiments"],
                    **ONE_EXPERIMENT["experiments"]})
# Rules whose jobs must have gone through SLURM (GPU_RULE must also have been given a GPU), and
# rules that run on the submit host (`localrules`: the tables need no compute node).
SLURM_RULES = {"synthesize", "shards", "train", "evaluate"}
LOCAL_RULES = {"labels", "vote_labels", "aggregate"}
GPU_RULE = "train"
RUN_TIMEOUT_S = 900
# ----------------------------------------------------------------------------------------------

TEST_OPTIONS = fast_options(GPU_RULE)


def run_workflow(workdir, env):
    """Snakemake with the SLURM profile on the tiny config; the completed process."""
    one_experiment = workdir / "one_experiment.yaml"
    one_experiment.write_text(yaml.safe_dump(ONE_EXPERIMENT))
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(TINY_CONFIG), str(one_experiment),
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
    assert not {rule_of(job) for job in jobs} & LOCAL_RULES, [job["Comment"] for job in jobs]
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    gpu_jobs = [job for job in jobs if rule_of(job) == GPU_RULE]
    assert len(gpu_jobs) == len(EXPERIMENTS)
    for job in gpu_jobs:
        assert "gpu" in job.get("TresPerJob", ""), f"job {job['JobId']} got no GPU: {job}"
        log = Path(job["StdOut"])
        assert log.is_relative_to(tmp_path / ".snakemake/slurm_logs") and log.is_file(), log
