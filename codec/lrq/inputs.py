"""Reading tensors from other formats for the CLI: ``.npy``, ``.npz``,
``.safetensors`` and HDF5 (``.h5`` / ``.hdf5``, with the optional h5py).

The safetensors reader is our own (the format is a length, a JSON header and
raw little-endian data) so that bfloat16 tensors need no extra dependency:
they come back as their uint16 bit patterns tagged "bfloat16".  Standard
input (``-``) is read whole and recognised by its first bytes.
"""

from __future__ import annotations

import io as _bytes_io
import json
import mmap
import os
import struct
import sys
import zipfile
import zlib
from typing import Iterator, List, Optional

import numpy as np

from .errors import ArgumentError, FormatError, ResourceError, UnsupportedError

# safetensors dtype name -> (numpy dtype, our dtype name)
_SAFETENSORS_DTYPES = {
    "F64": ("<f8", "float64"),
    "F32": ("<f4", "float32"),
    "F16": ("<f2", "float16"),
    "BF16": ("<u2", "bfloat16"),
    "I64": ("<i8", "int64"),
    "I32": ("<i4", "int32"),
    "I16": ("<i2", "int16"),
    "I8": ("i1", "int8"),
    "U64": ("<u8", "uint64"),
    "U32": ("<u4", "uint32"),
    "U16": ("<u2", "uint16"),
    "U8": ("u1", "uint8"),
    "BOOL": ("u1", "bool"),
}
_MAX_SAFETENSORS_HEADER = 100_000_000
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
        if self.dtype == "bfloat16":
            return (self.values.astype(np.uint32) << 16).view(np.float32)
        return self.values

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


def _read_npy(buffer, label: str, name: str) -> List[SourceTensor]:
    try:
        values = np.load(buffer, mmap_mode="r" if isinstance(buffer, str) else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise FormatError(f"{label}: not a readable .npy file: {exc}") from None
    return [_tensor(label, name, values)]


def _read_npz(buffer, label: str) -> List[SourceTensor]:
    try:
        with np.load(buffer, allow_pickle=False) as archive:
            return [_tensor(label, name, archive[name]) for name in archive.files]
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise FormatError(f"{label}: not a readable .npz file: {exc}") from None


def _read_hdf5(buffer, label: str) -> List[SourceTensor]:
    try:
        import h5py
    except ImportError:
        raise UnsupportedError(f"{label}: reading HDF5 files needs the h5py package (pip install h5py)") from None
    try:
        handle = h5py.File(buffer, "r")
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
            tensors.append(_tensor(label, name, np.asarray(dataset[()])))
        return tensors


def parse_safetensors(data, label: str):
    """(tensors, metadata) of safetensors bytes (a buffer: bytes or a map)."""
    size = len(data)
    if size < 8:
        raise FormatError(f"{label}: too short for a safetensors file")
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > min(_MAX_SAFETENSORS_HEADER, size - 8):
        raise FormatError(f"{label}: safetensors header length {header_len} is out of range")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{label}: safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{label}: safetensors header is not a JSON object")
    metadata = header.get("__metadata__")
    if metadata is not None and (
        not isinstance(metadata, dict) or any(not isinstance(v, str) for v in metadata.values())
    ):
        raise FormatError(f"{label}: safetensors __metadata__ must map strings to strings")
    base = 8 + header_len
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            np_dtype, dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{label}: tensor '{name}' has an unsupported dtype or a malformed entry") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        itemsize = np.dtype(np_dtype).itemsize
        if min(shape, default=1) < 0 or not 0 <= begin <= end <= size - base or end - begin != count * itemsize:
            raise FormatError(f"{label}: tensor '{name}' has data offsets outside the file or of the wrong size")
        values = np.frombuffer(data, dtype=np_dtype, count=count, offset=base + begin).reshape(shape)
        if dtype == "bool":
            values = values.astype(np.bool_)
        tensors.append(SourceTensor(name, values, dtype))
    return tensors, metadata


def _map(path: str):
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return b""
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_safetensors(path: str) -> Iterator[SourceTensor]:
    """The tensors of a ``.safetensors`` file (values view the mapped file)."""
    tensors, _ = parse_safetensors(_map(path), path)
    return iter(tensors)


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
    (``-``, recognised by its first bytes)."""
    if path == "-":
        data = sys.stdin.buffer.read()
        kind, label, buffer, size = _kind_of_bytes(data[:8]), "standard input", data, len(data)
        stem = "tensor"
    else:
        kind = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
        if kind is None:
            raise ArgumentError(f"{path}: unknown input type (expected {INPUT_TYPES})")
        try:
            size = os.stat(path).st_size
            if not os.path.isfile(path):
                raise IsADirectoryError(21, "not a regular file")
        except OSError as exc:
            raise ResourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        label, buffer = path, path
        stem = os.path.splitext(os.path.basename(path))[0] or "tensor"
    metadata = None
    if kind == "safetensors":
        tensors, metadata = parse_safetensors(_map(path) if buffer is path else buffer, label)
    else:
        if not isinstance(buffer, str):
            buffer = _bytes_io.BytesIO(buffer)
        reader = {"npy": lambda b: _read_npy(b, label, stem), "npz": lambda b: _read_npz(b, label),
                  "hdf5": lambda b: _read_hdf5(b, label)}[kind]
        tensors = reader(buffer)
    return Source(label, tensors, metadata, size)


_SAFETENSORS_NAMES = {ours: code for code, (_, ours) in _SAFETENSORS_DTYPES.items()}


def write_safetensors(fh, arrays: dict, dtypes: dict, metadata: Optional[dict] = None) -> None:
    """Write arrays as a safetensors file; ``dtypes`` names each one's dtype
    ("bfloat16" for uint16 bit patterns), ``metadata`` becomes ``__metadata__``."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, array in arrays.items():
        header[name] = {"dtype": _SAFETENSORS_NAMES[dtypes[name]], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    fh.write(len(raw).to_bytes(8, "little") + raw)
    for array in arrays.values():
        fh.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
