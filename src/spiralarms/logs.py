"""What a user reads: each workflow job's log file, one line per stage on the terminal, and
one line when a job fails.

`job(snakemake)` is the first call of every script in workflow/scripts, before anything imports
TensorFlow: the job's output (ours, Keras', TensorFlow's C++ start-up lines) goes to its log file
(results/logs/<rule>/...). A record logged with `extra=logs.TERMINAL` (a stage's one-line summary,
training's per-epoch progress) also goes to the terminal Snakemake runs in (on SLURM: the job's
output file). A failure ends in one line there: the project's own message for bad input (see
`user_error`), or a pointer to the traceback in the log for a bug.

Standard library only: scripts import this before TensorFlow.
"""

import logging
import os
import re
import sys
import threading
import traceback
from pathlib import Path

TERMINAL = {"terminal": True}
PACKAGE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)

# TensorFlow's C++ lines that come whatever TF_CPP_MIN_LOG_LEVEL says (absl logs everything to
# stderr before absl::InitializeLog, which TensorFlow never calls): start-up notices and
# harmless "errors" (measured with tensorflow-cpu 2.21; 2.x CUDA builds add the factory lines).
TENSORFLOW_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"  # absl info and warning lines
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "  # TensorFlow's own format
    r"|E\d{4} .*(use_unbounded_threadpool|Unable to register cu\w+ factory)"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)


def quiet_tensorflow() -> None:
    """Settings read when TensorFlow is imported: call before. Python-side TensorFlow and absl
    warnings (e.g. "compiled metrics have yet to be built") go to logging at ERROR only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's own C++ info and warnings
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def to_file(path):
    """Send the process' output (file descriptors 1 and 2 included) to `path`; returns the stream.
    The terminal stays reachable through records logged with `extra=TERMINAL`."""
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


def job(snakemake) -> None:
    """Set up a workflow job: output to its log file (before TensorFlow is imported, so its
    start-up lines land there too) and a failure reported in one line on the terminal."""
    quiet_tensorflow()
    log_path = str(snakemake.log[0])
    to_file(log_path)
    name = snakemake.rule + "".join(f" {k}={v}" for k, v in snakemake.wildcards.items())
    sys.excepthook = lambda kind, error, tb: _report_failure(name, log_path, error)


def user_error(error: BaseException) -> bool:
    """Bad input the user can fix from the message alone: an error class of this project
    (CatalogError, ConfigError, ModelCardError, AcquireError, OutputError, ...) or a
    ValueError / FileNotFoundError / MemoryError raised by the project's own code."""
    if type(error).__module__.split(".")[0] == "spiralarms":
        return True
    if not isinstance(error, (ValueError, FileNotFoundError, MemoryError)):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE)


def _report_failure(name: str, log_path: str, error: BaseException) -> None:
    """sys.excepthook of a job: one line on the terminal and at the end of the log; a bug's
    traceback goes to the log above it. Python then exits with code 1."""
    if user_error(error):
        line = f"{name}: {error}"
    else:
        log.error("unexpected error", exc_info=error)
        line = (f"{name}: unexpected {type(error).__name__}: {error} (a bug: the traceback is "
                f"in {log_path})")
    log.error("%s", line, extra=TERMINAL)


def filter_tensorflow_noise() -> None:
    """For a command on a terminal (the `spiralarms` CLI): lines TensorFlow's C++ runtime writes
    to stderr pass through a filter that drops `TENSORFLOW_NOISE`; Python's own output (logging,
    errors) goes to the terminal unchanged. Call before TensorFlow is imported."""
    quiet_tensorflow()
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = terminal
    for handler in logging.getLogger().handlers:  # basicConfig's handler holds the old stream
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.__stderr__:
            handler.setStream(terminal)

    def forward():
        with os.fdopen(read, errors="replace") as lines:
            for line in lines:
                if not TENSORFLOW_NOISE.match(line):
                    terminal.write(line)

    threading.Thread(target=forward, daemon=True, name="tensorflow-stderr").start()
