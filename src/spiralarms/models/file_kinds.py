"""What a file handed to the models layer is, from its first bytes: the one home of the magic
numbers of Keras models and weights (zip, HDF5) and of what users give by mistake, so that an
error can say "it is a JPEG image" or "it is cut short" instead of a library's traceback."""

import zipfile
from pathlib import Path

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # Keras .weights.h5 / legacy .h5 models
ZIP_MAGIC = b"PK\x03\x04"  # .keras models and torch.save's state_dicts are zip archives
_OTHER = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"SIMPLE": "a FITS file",
          b"\x1f\x8b": "a gzip file", b"7z\xbc\xaf": "a 7z archive", b"\x80\x02": "a pickle",
          b"<!DOCTYPE": "an HTML page", b"<html": "an HTML page"}


def head(path, size: int = 64) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(size)


def is_hdf5(path) -> bool:
    """An existing file that starts with HDF5's signature."""
    return Path(path).is_file() and head(path, len(HDF5_MAGIC)) == HDF5_MAGIC


def is_truncated_zip(path) -> bool:
    """Starts as a zip archive but lacks the directory at its end: typically a cut download."""
    return head(path, len(ZIP_MAGIC)) == ZIP_MAGIC and not zipfile.is_zipfile(path)


def describe(path) -> str:
    """A few words for what the existing file at `path` is, e.g. 'a zip archive', 'a text file'."""
    start = head(path)
    if not start:
        return "an empty file (0 bytes)"
    if zipfile.is_zipfile(path):
        return "a zip archive"
    if start.startswith(ZIP_MAGIC):
        return ("an incomplete zip archive (it starts like one but its end is missing, "
                "e.g. a truncated download)")
    if start.startswith(HDF5_MAGIC):
        return "an HDF5 file"
    for magic, what in _OTHER.items():
        if start.lstrip().startswith(magic):
            return what
    text = start.decode("utf-8", "replace")
    if "\x00" in text or "\ufffd" in text[:-3]:  # the last bytes may cut a character in two
        return "a binary file of an unknown kind"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"a text file (starting {first!r})" if first else "a text file of blank lines"
