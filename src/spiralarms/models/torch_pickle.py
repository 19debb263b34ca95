"""Reading a PyTorch state_dict without torch and without running pickled code.

The state_dict is a pickle from the internet. `read_state_dict` reads torch's zip format with a
restricted unpickler that only rebuilds plain tensors (into numpy) and refuses every other
global, so no pickled code runs and torch is not needed.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from spiralarms.models.file_kinds import describe, head, is_truncated_zip
from spiralarms.models.weights_card import ConversionError

MAX_PICKLE_BYTES = 64 * 2**20  # a state_dict's data.pkl is tens of kB


class UnsafePickleError(ConversionError):
    """The pickle asks for something a state_dict of tensors never needs."""


class _StorageType:
    """Stands in for `torch.FloatStorage` & co.: a dtype, nothing callable."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: str):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
_STORAGES = {name: _StorageType(name, dtype) for name, dtype in _DTYPES.items()}
# Identity -> dtype, so a pickle that edits a stand-in's attributes cannot change its dtype.
_STORAGE_DTYPES = {id(storage): (name, np.dtype(_DTYPES[name]))
                   for name, storage in _STORAGES.items()}


class _Storage:
    """One `data/<key>` record of the archive as a flat numpy array."""

    __slots__ = ("array", "bfloat16")

    def __init__(self, array: np.ndarray, bfloat16: bool):
        self.array, self.bfloat16 = array, bfloat16


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """numpy version of torch._utils._rebuild_tensor_v2, bounds-checked (a strided view past the
    storage would read foreign memory)."""
    if not (isinstance(storage, _Storage) and isinstance(storage.array, np.ndarray)):
        raise UnsafePickleError(f"a tensor is built from {type(storage).__name__}, not a storage")
    ints = (storage_offset, *size, *stride)
    if not all(type(v) is int for v in ints) or len(size) != len(stride) or min(ints, default=0) < 0:
        raise ConversionError(f"malformed tensor: offset {storage_offset}, size {size}, "
                              f"stride {stride}")
    flat = storage.array
    if 0 in size:
        out = np.zeros(size, flat.dtype)
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise ConversionError(f"tensor of size {tuple(size)} reads past its storage "
                                  f"({flat.size} elements)")
        out = np.lib.stride_tricks.as_strided(
            flat[storage_offset:], shape=tuple(size),
            strides=tuple(s * flat.itemsize for s in stride), writeable=False).copy()
    if storage.bfloat16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): storage for name, storage in _STORAGES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.source = archive, prefix, source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol-2 name
        alias = f" (os.{name})" if module in ("posix", "nt") else ""
        raise UnsafePickleError(
            f"{self.source}: refused to load: the pickle asks for {module}.{name}{alias}, which a "
            f"weights file never needs; a state_dict of tensors only uses "
            f"{', '.join(sorted({f'{m}.{n}' for m, n in _ALLOWED if m != 'torch'}))} and torch "
            f"storage types. Do not open this file with torch.load or pickle either."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and id(pid[1]) in _STORAGE_DTYPES and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise UnsafePickleError(f"{self.source}: refused to load: unexpected persistent id "
                                    f"{str(pid)[:80]}")
        _, kind, key, _location, numel = pid
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise UnsafePickleError(f"{self.source}: refused to load: storage key {key!r}")
        kind_name, dtype = _STORAGE_DTYPES[id(kind)]
        entry = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(entry)
        except KeyError:
            raise ConversionError(f"{self.source}: archive lacks storage {entry}") from None
        if info.file_size != numel * dtype.itemsize:
            raise ConversionError(f"{self.source}: storage {entry} holds {info.file_size} bytes, "
                                  f"expected {numel} x {dtype.itemsize}")
        array = np.frombuffer(self.archive.read(entry), dtype=dtype)
        return _Storage(array, kind_name == "BFloat16Storage")


def read_state_dict(path, asked_by: str | None = None) -> dict[str, np.ndarray]:
    """Tensors of a `torch.save`d state_dict (torch's zip format, torch >= 1.6) as numpy arrays.

    Reads `<archive>/data.pkl` with an unpickler that allows only collections.OrderedDict,
    torch._utils._rebuild_tensor_v2 and torch storage types, each replaced by our own numpy code,
    and maps the storages `<archive>/data/<n>` into numpy. Any other global is refused
    (`UnsafePickleError`) before anything runs. torch is not imported. `asked_by` (e.g. "config
    models.b0.weights='hf_hub:...'") says in errors what wanted the file.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ConversionError(_not_a_torch_zip(path, asked_by))
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")
                   and n.count("/") == 1]
        if len(pickles) != 1:
            raise ConversionError(f"{path}: expected one <archive>/data.pkl, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist():
            order = archive.read(prefix + "byteorder").decode().strip()
            if order != "little":
                raise ConversionError(f"{path}: byte order {order!r} is not supported")
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise ConversionError(f"{path}: data.pkl is implausibly large for a state_dict")
        unpickler = _StateDictUnpickler(archive.read(pickles[0]), archive, prefix, path)
        try:
            state = unpickler.load()
        except ConversionError:
            raise
        except Exception as error:  # noqa: BLE001 - a pickle misusing the allowed objects
            raise UnsafePickleError(f"{path}: refused to load: not a plain state_dict "
                                    f"({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
            for k, v in state.items()):
        raise ConversionError(f"{path}: the pickle is not a mapping of names to tensors")
    return dict(state)



def _not_a_torch_zip(path: Path, asked_by: str | None) -> str:
    if is_truncated_zip(path):
        where = (f"{asked_by} asks for it; the download_weights rule fetches it" if asked_by else
                 "in the workflow the download_weights rule fetches the file that config "
                 "models.<model>.weights names")
        return (f"{path} looks incomplete ({path.stat().st_size:,} bytes): it starts as torch's "
                f"zip format but its end is missing, as a truncated download leaves it. Delete it "
                f"and download it again ({where}).")
    start = head(path, 16)
    kind = ("torch's legacy (pre-1.6) format" if start[:2] == b"\x80\x02"
            else "a safetensors file" if start[8:9] == b"{" else describe(path))
    return (f"{path} is {kind}, not a PyTorch state_dict; expected one saved by torch.save "
            f"(zip format, torch >= 1.6), e.g. a timm model's pytorch_model.bin")
