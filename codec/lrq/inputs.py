"""Reading tensors from other formats for the CLI: ``.npy`` and ``.safetensors``.

The safetensors reader is our own (the format is a length, a JSON header and
raw little-endian data) so that bfloat16 tensors need no extra dependency:
they come back as float32 arrays tagged "bfloat16".
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from typing import Iterator

import numpy as np

from .errors import FormatError, ResourceError

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
    def is_float_matrix(self) -> bool:
        return self.values.ndim == 2 and self.dtype in ("float64", "float32", "float16", "bfloat16")


def read_npy(path: str, name: str) -> Iterator[SourceTensor]:
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable .npy file: {exc}") from None
    yield SourceTensor(name, np.ascontiguousarray(values), values.dtype.name)


def read_safetensors(path: str) -> Iterator[SourceTensor]:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise FormatError(f"{path}: too short for a safetensors file")
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc}") from None
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > min(_MAX_SAFETENSORS_HEADER, size - 8):
        raise FormatError(f"{path}: safetensors header length {header_len} is out of range")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object")
    base = 8 + header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            np_dtype, dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: tensor '{name}' has an unsupported dtype or a malformed entry") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        itemsize = np.dtype(np_dtype).itemsize
        if not 0 <= begin <= end <= size - base or end - begin != count * itemsize:
            raise FormatError(f"{path}: tensor '{name}' has data offsets outside the file or of the wrong size")
        values = np.frombuffer(data, dtype=np_dtype, count=count, offset=base + begin).reshape(shape)
        if dtype == "bool":
            values = values.astype(np.bool_)
        yield SourceTensor(name, values, dtype)


def read_tensors(path: str) -> Iterator[SourceTensor]:
    """Tensors of an input file, by extension: ``.npy`` (one) or ``.safetensors``."""
    lower = path.lower()
    if lower.endswith(".npy"):
        stem = os.path.splitext(os.path.basename(path))[0] or "tensor"
        return read_npy(path, stem)
    if lower.endswith(".safetensors"):
        return read_safetensors(path)
    raise FormatError(f"{path}: unknown input type (expected .npy or .safetensors)")
