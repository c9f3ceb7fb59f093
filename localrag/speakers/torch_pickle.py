"""Read the tensors of a PyTorch checkpoint (`.pt`) without PyTorch and without running its pickle.

A `.pt` file is a pickle, and unpickling runs whatever callable the file names (security.md 21:
no pickle at run time). The speaker model ships only as one, so it is read once, at
`localrag models pull`, after its SHA-256 matched the manifest, and written as safetensors; only
that file is ever loaded afterwards. Even this one read goes through an unpickler that resolves
only the few names a plain state dict needs (an OrderedDict, torch's tensor rebuild functions and
its storage types) and maps storages to numpy arrays; any other name is refused before anything
is called.

Both of PyTorch's layouts are read: the legacy one (a sequence of pickles followed by the raw
storages, what Resemblyzer's `pretrained.pt` uses) and the zip one of torch >= 1.6
(`archive/data.pkl` with one file per storage).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.errors import ModelError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_MAX_STORAGE_BYTES = 1 << 31


class RefusedPickle(ModelError):
    """The checkpoint names something other than tensors and dictionaries."""


@dataclass
class _Storage:
    """A storage the pickle refers to; its bytes are filled in once they have been read."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as the pickle describes it: a view into a storage not necessarily read yet."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        if self.storage.data is None:
            raise ModelError("checkpoint refers to a storage it does not contain")
        itemsize = self.storage.dtype.itemsize
        needed = self.offset + sum(
            (n - 1) * s for n, s in zip(self.shape, self.stride, strict=True)
        )
        if any(n == 0 for n in self.shape):
            return np.zeros(self.shape, self.storage.dtype)
        if needed >= self.storage.numel or self.offset < 0 or min(self.stride, default=1) < 0:
            raise ModelError("checkpoint has a tensor that runs past its storage")
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # a copy: nothing keeps pointing into the file's bytes


def _rebuild_tensor(
    storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise RefusedPickle("checkpoint rebuilds a tensor from something that is not a storage")
    return _TensorRef(storage, int(offset), tuple(map(int, shape)), tuple(map(int, stride)))


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED`; storages become `_Storage`s keyed as the file keys them."""

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f"checkpoint names {module}.{name}, which a plain tensor checkpoint never does; "
                "refused without running it"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 5):
            raise RefusedPickle(f"checkpoint has a persistent id of an unknown kind: {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise RefusedPickle("checkpoint has a storage of an unknown type")
        if not isinstance(numel, int) or numel < 0:
            raise RefusedPickle("checkpoint has a storage of an invalid size")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a PyTorch checkpoint as numpy arrays, flattened to dotted names
    (`model_state.lstm.weight_ih_l0`); a `RefusedPickle` if it holds anything else."""
    data = path.read_bytes()
    try:
        obj = _load_zip(data) if data[:4] == b"PK\x03\x04" else _load_legacy(data)
    except RefusedPickle as exc:
        raise RefusedPickle(f"{path}: {exc.message}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error) as exc:
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    tensors: dict[str, np.ndarray] = {}
    _flatten(obj, "", tensors)
    if not tensors:
        raise ModelError(f"{path}: no tensors in this checkpoint")
    return tensors


def _load_legacy(data: bytes) -> Any:
    """torch.save before 1.6: magic, protocol, system info, the object, the storage keys, then
    each storage as an 8-byte element count and its bytes, in the order of the keys."""
    f = io.BytesIO(data)
    header = [_Unpickler(f, {}).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC:
        raise ModelError("not a PyTorch checkpoint (bad magic number)")
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    keys = _Unpickler(f, {}).load()
    if not isinstance(keys, list):
        raise ModelError("storage keys are not a list")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise ModelError(f"storage {key} is listed but never used")
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * storage.dtype.itemsize
        if numel != storage.numel or nbytes > _MAX_STORAGE_BYTES:
            raise ModelError(f"storage {key} has {numel} elements, the pickle says {storage.numel}")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise ModelError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return obj


def _load_zip(data: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelError("zip checkpoint without exactly one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(zf.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            info = zf.getinfo(f"{prefix}data/{key}")
            nbytes = storage.numel * storage.dtype.itemsize
            if info.file_size != nbytes or nbytes > _MAX_STORAGE_BYTES:
                raise ModelError(f"storage {key} has {info.file_size} bytes, expected {nbytes}")
            storage.data = np.frombuffer(zf.read(info), dtype=storage.dtype)
    return obj


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(obj, _TensorRef):
        out[prefix] = obj.array()
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
