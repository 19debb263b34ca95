"""Send a rule's logging (ours, Keras' and TensorFlow's) to its log file."""

import logging
import os
import sys


def to_file(path, quiet_tf: bool = True):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if quiet_tf else "0")
    stream = open(path, "a", buffering=1)  # noqa: SIM115 - open for the job's whole life
    sys.stdout = sys.stderr = stream  # Keras progress lines and warnings land in the log too
    logging.basicConfig(
        level=logging.INFO, stream=stream, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return stream
