"""Fixtures shared by the prediction, CLI and import tests."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any test imports TensorFlow


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

