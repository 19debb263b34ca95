"""Send a rule's logging (ours, Keras' and TensorFlow's C++ output) to its log file.

A record logged with `extra=logs.TERMINAL` (a stage's one-line summary) also goes to the
terminal Snakemake runs in (on SLURM: the job's output file), so a user sees what a stage kept
and dropped without opening its log.
"""

import logging
import os
import sys

TERMINAL = {"terminal": True}


def to_file(path):
    terminal = os.fdopen(os.dup(2), "w", buffering=1)  # the job's stderr before the redirect
    stream = open(path, "a", buffering=1)  # noqa: SIM115 - open for the job's whole life
    for fd in (1, 2):  # TensorFlow's C++ runtime writes to the file descriptors directly
        os.dup2(stream.fileno(), fd)
    sys.stdout = sys.stderr = stream  # Keras progress lines and Python warnings
    logging.basicConfig(
        level=logging.INFO, stream=stream, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    echo = logging.StreamHandler(terminal)
    echo.addFilter(lambda record: getattr(record, "terminal", False))
    echo.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(echo)
    return stream
