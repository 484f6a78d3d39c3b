"""The safetensors format, read and written by lrq itself.

A safetensors file is an 8-byte little-endian header length, a JSON header
(tensor name -> dtype, shape, data offsets, plus an optional
``"__metadata__"`` map of strings to strings) and the raw little-endian
tensor data.  lrq reads and writes it without the ``safetensors`` package so
that bfloat16 needs no extra dependency:

- :func:`read` returns the tensors in file order and the metadata map.  A
  bfloat16 tensor comes back as its raw ``uint16`` bit patterns tagged
  ``"bfloat16"`` (numpy has no bfloat16 type); :func:`widen` turns any
  tensor into an array numpy computes with.
- :func:`write` takes ``name -> array`` or ``name -> (array, dtype name)``
  and the metadata.  For ``"bfloat16"`` the array is either ``uint16`` bit
  patterns (written as they are) or floating-point values, rounded to the
  nearest bfloat16 (ties to even), so values that came from bfloat16 are
  written back bit for bit.

``DTYPES`` is the one table of dtype names: safetensors name -> (numpy
dtype of the raw data, lrq dtype name).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Mapping, Optional

import numpy as np

from .errors import ArgumentError, FormatError, ResourceError
from .format import bfloat16_bits, bfloat16_to_float32

DTYPES = {
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
SAFETENSORS_NAMES = {ours: theirs for theirs, (_, ours) in DTYPES.items()}
METADATA_KEY = "__metadata__"
# The safetensors project caps its header at 100 MB; a larger length is damage.
MAX_HEADER_BYTES = 100_000_000


@dataclass
class Tensor:
    """One tensor of a safetensors file: raw values (bfloat16 as uint16 bits) and dtype name."""

    name: str
    values: np.ndarray
    dtype: str


def widen(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values numpy computes with: bfloat16 bit patterns become float32, others stay."""
    return bfloat16_to_float32(values) if dtype == "bfloat16" else values


def read(path) -> tuple:
    """``(tensors, metadata)`` of a safetensors file; tensors view a read-only memory map."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise FormatError(f"{path}: too short for a safetensors file")
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > min(MAX_HEADER_BYTES, size - 8):
        raise FormatError(f"{path}: safetensors header length {header_len} is out of range")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict) or any(not isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{path}: safetensors {METADATA_KEY} is not a map of strings to strings")
    base = 8 + header_len
    tensors = []
    for name, info in header.items():
        try:
            np_dtype, dtype = DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: tensor '{name}' has an unsupported dtype or a malformed entry") from None
        if any(d < 0 for d in shape):
            raise FormatError(f"{path}: tensor '{name}' has a negative dimension")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        itemsize = np.dtype(np_dtype).itemsize
        if not 0 <= begin <= end <= size - base or end - begin != count * itemsize:
            raise FormatError(f"{path}: tensor '{name}' has data offsets outside the file or of the wrong size")
        values = np.frombuffer(data, dtype=np_dtype, count=count, offset=base + begin).reshape(shape)
        if dtype == "bool":
            if (values > 1).any():
                raise FormatError(f"{path}: tensor '{name}' is bool but holds a byte other than 0 or 1")
            values = values.view(np.bool_)
        tensors.append(Tensor(name, values, dtype))
    return tensors, dict(metadata)


def _raw(name: str, value) -> tuple:
    """(safetensors dtype name, little-endian raw array) of one tensor to write."""
    if isinstance(value, tuple):
        array, dtype = value
    else:
        array = value
        dtype = np.asarray(value).dtype.name
    array = np.asarray(array)
    if dtype not in SAFETENSORS_NAMES:
        raise ArgumentError(f"tensor '{name}': dtype {dtype} cannot be written to safetensors "
                            f"(supported: {', '.join(SAFETENSORS_NAMES)})")
    if dtype == "bfloat16":
        raw = array.astype("<u2", copy=False) if array.dtype == np.uint16 else bfloat16_bits(array)
    elif dtype == "bool":
        raw = array.astype(np.bool_, copy=False).view(np.uint8)
    else:
        raw = array.astype(DTYPES[SAFETENSORS_NAMES[dtype]][0], copy=False)
    return SAFETENSORS_NAMES[dtype], np.asarray(raw, order="C")  # keeps 0-d arrays 0-d


def write(out: BinaryIO, tensors: Mapping, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write a safetensors file to the binary file ``out`` (see the module docstring).

    Use it through :func:`lrq.files.atomic_write` to write a path.
    """
    if metadata is not None and any(not isinstance(k, str) or not isinstance(v, str) for k, v in metadata.items()):
        raise ArgumentError("safetensors metadata must map strings to strings")
    header, raws, offset = {}, [], 0
    if metadata:
        header[METADATA_KEY] = dict(metadata)
    for name, value in tensors.items():
        if name == METADATA_KEY:
            raise ArgumentError(f"a tensor cannot be named {METADATA_KEY} in safetensors")
        st_dtype, raw = _raw(name, value)
        header[name] = {"dtype": st_dtype, "shape": list(raw.shape), "data_offsets": [offset, offset + raw.nbytes]}
        offset += raw.nbytes
        raws.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    out.write(struct.pack("<Q", len(text)))
    out.write(text)
    for raw in raws:
        out.write(memoryview(raw.reshape(-1)).cast("B"))


__all__ = ["DTYPES", "SAFETENSORS_NAMES", "Tensor", "read", "write", "widen"]
