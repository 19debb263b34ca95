"""Fixtures shared by the prediction, CLI and import tests, and how `make test` spreads the
suite over workers (pytest-xdist, `--dist loadgroup`)."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any test imports TensorFlow
# One thread per op in each test worker and in the processes it starts (a job's own
# runtime.configure still sets its count): with TensorFlow's default of a thread per core in each
# of `make test`'s workers, a 2-core machine ran four busy threads; test_predict and test_xai side
# by side took 273 s with the default and 243 s with one (user CPU 468 s vs 429 s, measured).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")  # one inter-op thread can stall tf.data


# tiny_models imports Keras: only in the fixtures, so tests without a network (`make check`)
# start without TensorFlow.
@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("exp") / "b0_6class_standard_s42")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from tiny_models import write_images

    return write_images(tmp_path_factory.mktemp("images"))


# The Kaggle API stand-in (tests/kaggle_server.py): `kaggle_server`, and its session CA `kaggle_tls`.
from kaggle_server import kaggle_server, kaggle_tls  # noqa: F401

# One throwaway SLURM per session (tests/slurm_support.py): `slurm_cluster`.
from slurm_support import slurm_cluster  # noqa: F401

# --- workers -----------------------------------------------------------------------------------
# Each module runs whole on one worker, so a module fixture (a workflow run, a trained model) is
# built once; the two SLURM modules share a worker and so the one controller it brings up.
SHARED_WORKER = {"test_slurm": "slurm", "test_predict_slurm": "slurm"}
# The modules that take minutes (measured: bench/README.md "Test suite"), handed out first so that
# no long module starts last while the other worker idles.
LONGEST_FIRST = ["test_rehearsal", "test_workflow", "test_slurm", "test_predict_slurm",
                 "test_train", "test_predict_workflow", "test_readme", "test_training",
                 "test_resume", "test_predict", "test_xai", "test_attribution"]


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the mark
def pytest_collection_modifyitems(items):
    def module(item):
        return item.path.stem

    for item in items:
        item.add_marker(pytest.mark.xdist_group(SHARED_WORKER.get(module(item), module(item))))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(module(item), len(rank)))  # stable: file order otherwise


# --- CPU per test ------------------------------------------------------------------------------
# SPIRALARMS_TEST_CPU=<file>: one line per test, "<cpu s> <wall s> <end, unix s> <worker> <node
# id>", CPU counting this worker and every process it started and waited for (Snakemake and its
# jobs; not SLURM's jobs, which slurmd starts). The suite is CPU-bound, so this, not wall time,
# says where it goes, and the ends show a worker idling (bench/suite_cpu.py). A module fixture
# counts with the first test that uses it.
def _cpu_seconds() -> float:
    import resource

    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    target = os.environ.get("SPIRALARMS_TEST_CPU")
    if not target:
        return (yield)
    import time

    cpu, wall = _cpu_seconds(), time.perf_counter()
    try:
        return (yield)
    finally:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        line = (f"{_cpu_seconds() - cpu:.2f} {time.perf_counter() - wall:.2f} {time.time():.1f} "
                f"{worker} {item.nodeid}\n")
        with open(target, "a") as out:  # one short append per line: workers do not interleave
            out.write(line)
