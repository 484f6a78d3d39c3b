"""Reading tensors from other formats for the CLI: ``.npy``, ``.npz``,
``.safetensors`` and HDF5 (``.h5`` / ``.hdf5``, with the optional h5py).

Safetensors goes through :mod:`lrq.safetensors_file` (bfloat16 tensors come
back as their uint16 bit patterns tagged "bfloat16").  Standard input
(``-``) is read whole and recognised by its first bytes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from typing import Iterator, List, Optional

import numpy as np

from . import safetensors_file
from .errors import ArgumentError, FormatError, LrqError, ResourceError, UnsupportedError

_FLOATS = ("float64", "float32", "float16", "bfloat16")
_STORABLE = _FLOATS + ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class SourceTensor:
    """A tensor read from an input file: its values and original dtype name."""

    def __init__(self, name: str, values: np.ndarray, dtype: str):
        self.name, self.values, self.dtype = name, values, dtype

    def as_float(self) -> np.ndarray:
        """Values as a float array an encoder takes (bfloat16 widened to float32)."""
        return safetensors_file.widen(self.values, self.dtype)

    @property
    def is_float(self) -> bool:
        return self.dtype in _FLOATS

    @property
    def is_float_matrix(self) -> bool:
        return self.values.ndim == 2 and self.is_float

    def dense_reason(self) -> Optional[str]:
        """Why this tensor cannot be compressed (None when it can)."""
        if not self.is_float:
            return f"{self.dtype} values are stored exactly; only float tensors are compressed"
        if self.values.ndim != 2:
            kind = {0: "a scalar", 1: "1-D"}.get(self.values.ndim, f"{self.values.ndim}-D")
            hint = " (e.g. a convolution kernel)" if self.values.ndim in (3, 4) else ""
            return f"{kind}{hint}; only 2-D matrices are compressed"
        return None


class Source:
    """The tensors of one input file and its string metadata (safetensors'
    ``__metadata__``; None when the format has none)."""

    def __init__(self, label: str, tensors: List[SourceTensor], metadata: Optional[dict], size: int):
        self.label, self.tensors, self.metadata, self.size = label, tensors, metadata, size


def _tensor(label: str, name: str, values: np.ndarray) -> SourceTensor:
    dtype = values.dtype.name
    if dtype not in _STORABLE:
        raise FormatError(f"{label}: tensor '{name}' has dtype {values.dtype}, which lrq cannot store "
                          f"(supported: {', '.join(_STORABLE)})")
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    return SourceTensor(name, np.ascontiguousarray(values), dtype)


def _read_npy(path: str, label: str, name: str) -> List[SourceTensor]:
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise FormatError(f"{label}: not a readable .npy file: {exc}") from None
    return [_tensor(label, name, values)]


def _read_npz(path: str, label: str) -> List[SourceTensor]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [_tensor(label, name, archive[name]) for name in archive.files]
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise FormatError(f"{label}: not a readable .npz file: {exc}") from None


def _read_hdf5(path: str, label: str) -> List[SourceTensor]:
    try:
        import h5py
    except ImportError:
        raise UnsupportedError(f"{label}: reading HDF5 files needs the h5py package (pip install h5py)") from None
    try:
        from . import hdf5  # noqa: F401  (registers the lrq filter: lrq-filtered datasets read decoded)
    except ImportError:
        pass  # no plugin in this installation: such a dataset's read below says the filter is missing
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{label}: not a readable HDF5 file: {exc}") from None
    with handle:
        names: List[str] = []
        handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        tensors = []
        for name in names:
            dataset = handle[name]
            if dataset.dtype.kind not in "fiub":
                raise FormatError(f"{label}: dataset '{name}' has dtype {dataset.dtype}, which lrq cannot store "
                                  "(numbers and booleans only)")
            try:
                values = np.asarray(dataset[()])
            except OSError as exc:
                raise FormatError(f"{label}: dataset '{name}' cannot be read: {exc}") from None
            tensors.append(_tensor(label, name, values))
        return tensors


def read_safetensors(path: str) -> Iterator[SourceTensor]:
    """The tensors of a ``.safetensors`` file (values view the mapped file)."""
    tensors, _ = safetensors_file.read(path)
    return iter(SourceTensor(t.name, t.values, t.dtype) for t in tensors)


def _kind_of_bytes(head: bytes) -> str:
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    return "safetensors"


_EXTENSIONS = {".npy": "npy", ".npz": "npz", ".safetensors": "safetensors", ".h5": "hdf5", ".hdf5": "hdf5"}
INPUT_TYPES = ".npy, .npz, .safetensors, .h5 or .hdf5"


def read_source(path: str) -> Source:
    """Every tensor of an input file, by extension, or of standard input
    (``-``, recognised by its first bytes and staged in a private temporary
    folder)."""
    if path == "-":
        with tempfile.TemporaryDirectory() as folder:
            staged = os.path.join(folder, "input")
            with open(staged, "wb") as fh:
                shutil.copyfileobj(sys.stdin.buffer, fh)
            with open(staged, "rb") as fh:
                kind = _kind_of_bytes(fh.read(8))
            # Arrays may view the staged file's map: it stays valid after the unlink.
            return _read(staged, kind, "standard input", "tensor")
    kind = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise ArgumentError(f"{path}: unknown input type (expected {INPUT_TYPES})")
    try:
        if not os.path.isfile(path):
            raise IsADirectoryError(21, "not a regular file") if os.path.exists(path) else \
                FileNotFoundError(2, "No such file or directory")
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _read(path, kind, path, os.path.splitext(os.path.basename(path))[0] or "tensor")


def _read(path: str, kind: str, label: str, stem: str) -> Source:
    size = os.path.getsize(path)
    metadata = None
    if kind == "safetensors":
        try:
            tensors, metadata = safetensors_file.read(path)
        except LrqError as exc:
            message = str(exc)
            raise type(exc)(message.replace(path, label) if path != label else message) from None
        tensors = [SourceTensor(t.name, t.values, t.dtype) for t in tensors]
    elif kind == "npy":
        tensors = _read_npy(path, label, stem)
    elif kind == "npz":
        tensors = _read_npz(path, label)
    else:
        tensors = _read_hdf5(path, label)
    return Source(label, tensors, metadata or None, size)


def read_tensors(path: str) -> Iterator[SourceTensor]:
    """The tensors of an input file (see :func:`read_source`)."""
    return iter(read_source(path).tensors)
