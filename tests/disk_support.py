"""Real filesystems that refuse writes, for the tests of atomic output: a full one and a read-only one."""
from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def full_folder(where: Path) -> Iterator[Path]:
    """A folder on a 256 kB tmpfs filled to the last byte (mounting needs root, as in CI)."""
    folder = where / "full-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"no small filesystem to fill: mount tmpfs failed ({mounted.stderr.strip()})")
    try:
        fill(folder)
        yield folder
    finally:
        # lazy: a file a failed writer left open must not keep the mount (and the test) alive
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Write `folder/.ballast` until the filesystem has no byte left."""
    with open(folder / ".ballast", "ab", buffering=0) as ballast, contextlib.suppress(OSError):
        while True:
            ballast.write(b"\0" * 4096)


def read_only_folder(where: Path) -> Path:
    """A folder this process cannot create files in, even as root (who ignores permission bits)."""
    if os.geteuid() != 0:
        folder = where / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    # sysfs refuses new files to everyone, root included.
    folder = Path("/sys/kernel")
    try:
        (folder / "spiralarms-probe").touch()
    except OSError:
        return folder
    pytest.skip("no folder refuses writes to root here (/sys/kernel accepted a file)")
