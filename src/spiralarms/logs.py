"""Send a rule's logging (ours, Keras' and TensorFlow's C++ output) to its log file."""

import logging
import os
import sys


def to_file(path):
    stream = open(path, "a", buffering=1)  # noqa: SIM115 - open for the job's whole life
    for fd in (1, 2):  # TensorFlow's C++ runtime writes to the file descriptors directly
        os.dup2(stream.fileno(), fd)
    sys.stdout = sys.stderr = stream  # Keras progress lines and Python warnings
    logging.basicConfig(
        level=logging.INFO, stream=stream, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return stream
