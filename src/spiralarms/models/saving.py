"""Keras files (`.weights.h5`, `.keras`) that appear complete or not at all.

Keras refuses to save under a name without its suffix, and atomic's temporary name
(`.<name>.partial-<pid>`) ends in the pid; so Keras writes to that name plus the suffix, which is
then renamed to atomic's name and, on success, into place by `atomic.replacing`.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from spiralarms import atomic

KERAS_SUFFIXES = (".weights.h5", ".keras")


@contextlib.contextmanager
def replacing_keras_file(path) -> Iterator[Path]:
    """Yield a temporary path with `path`'s Keras suffix; it replaces `path` on normal exit."""
    path = Path(path)
    suffix = next((s for s in KERAS_SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{path}: a Keras file ends in one of {KERAS_SUFFIXES}")
    with atomic.replacing(path) as partial:
        named = partial.with_name(partial.name + suffix)
        try:
            yield named
            os.replace(named, partial)
        finally:
            named.unlink(missing_ok=True)
