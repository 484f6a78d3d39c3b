"""Chunked arrays whose chunks are `.lrq` streams: what the HDF5 and Zarr doors share.

A chunk is a complete `.lrq` stream of one tensor (spec/hdf5-filter.md §2,
spec/zarr-codec.md §2): this module encodes a chunk (with the edge-chunk
budget of spec/hdf5-filter.md §5), decodes one into the chunk's shape
([H5-3], [H5-4]), parses and checks the encoding request both doors store
(spec/hdf5-filter.md §3.2; the Zarr codec's configuration carries the same
fields), and computes products chunk by chunk on the chunks' factors, never
decoding one (:func:`chunked_product`, :func:`partial_product`), for
``lrq.hdf5.Matrix``, ``lrq.zarr.Matrix`` and ``lrq.dask``.

It imports neither h5py nor zarr: each door brings its own way to read a
chunk's raw bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Callable, Optional

import numpy as np

from .encoder import SCHEMES, encode
from .errors import ArgumentError, FormatError, LrqError
from .io import dumps, loads

# The tensor name every chunk's stream carries [H5-1].
CHUNK_TENSOR_NAME = "chunk"
# Edge of the default chunk: the size at which a chunk's own header and
# section alignment cost about 1-4 % of its bits at 2 bits/entry.
DEFAULT_CHUNK_EDGE = 256

SCHEME_CODES = {"auto": 0, "signcut": 1, "lplr": 2, "dense": 3}
TARGET_CODES = {"default": 0, "bits": 1, "width": 2, "rel_error": 3}
STORAGE_CODES = {"float64": 1, "float32": 2, "float16": 3, "bfloat16": 4}
C_STORAGE_CODES = {"float32": 0, "float16": 1}
# Element types a chunked lrq array holds [H5-2].
CHUNK_DTYPES = ("float64", "float32")


def _float_word(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def request_words(scheme: str = "signcut", *, bits=None, width=None, rel_error=None, seed: int = 0,
                  c_storage=None, storage=None) -> tuple:
    """The six words of an encoding request (spec/hdf5-filter.md §3.2):
    scheme, target kind, target value, the seed's low and high 32 bits, the
    scheme option.  A float target is stored as the bits of its binary32
    value, so it is rounded to binary32 here.  Checks every argument: bad
    ones raise :class:`lrq.ArgumentError`."""
    if scheme not in SCHEME_CODES:
        raise ArgumentError(f"scheme must be one of {tuple(SCHEME_CODES)}, not {scheme!r}")
    given = [(kind, value) for kind, value in (("bits", bits), ("width", width), ("rel_error", rel_error))
             if value is not None]
    if len(given) > 1:
        raise ArgumentError("give at most one of bits=, width=, rel_error=")
    kind, value = given[0] if given else ("default", 0)
    if kind == "width":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value < 2**31:
            raise ArgumentError(f"width must be an integer in [1, 2^31-1], not {value!r}")
        if scheme != "signcut":
            raise ArgumentError("width= applies to scheme='signcut'")
        value_word = int(value)
    elif kind == "default":
        value_word = 0
    else:
        try:
            number = float(np.float32(value))
        except (TypeError, ValueError):
            raise ArgumentError(f"{kind} must be a number, not {value!r}") from None
        low, high = (0.0, 1024.0) if kind == "bits" else (0.0, 1.0)
        if isinstance(value, bool) or not (low < number <= high) or (kind == "rel_error" and number == 1.0):
            raise ArgumentError(f"{kind} must be in ({low:g}, {high:g}{']' if kind == 'bits' else ')'}, not {value!r}")
        value_word = _float_word(number)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ArgumentError(f"seed must be a non-negative integer, not {seed!r}")
    if scheme == "dense":
        if c_storage is not None:
            raise ArgumentError("c_storage= applies to scheme='signcut'; dense takes storage=")
        if storage is not None and storage not in STORAGE_CODES:
            raise ArgumentError(f"storage must be one of {tuple(STORAGE_CODES)}, not {storage!r}")
        # 0: not given, the encoder chooses by the target (lrq.encode).
        option = STORAGE_CODES[storage] if storage is not None else 0
    else:
        if storage is not None and scheme == "signcut":
            raise ArgumentError("storage= applies to scheme='dense'; signcut takes c_storage=")
        if c_storage is not None and c_storage not in C_STORAGE_CODES:
            raise ArgumentError(f"c_storage must be one of {tuple(C_STORAGE_CODES)}, not {c_storage!r}")
        option = C_STORAGE_CODES[c_storage or "float32"]
    return (SCHEME_CODES[scheme], TARGET_CODES[kind], value_word, int(seed) & 0xFFFFFFFF, int(seed) >> 32, option)


def request_options(words: tuple) -> dict:
    """The six words of :func:`request_words` as keyword arguments of
    :func:`lrq.encode` (``scheme``, the target, ``seed``, the scheme option)."""
    scheme, kind, value, seed_lo, seed_hi, option = words
    names = {code: name for name, code in SCHEME_CODES.items()}
    kinds = {code: name for name, code in TARGET_CODES.items()}
    if scheme not in names or kind not in kinds:
        raise FormatError(f"lrq encoding request: scheme code {scheme} or target code {kind} is unknown")
    request = {"scheme": names[scheme]}
    if kinds[kind] == "width":
        request["width"] = value
    elif kinds[kind] != "default":
        request[kinds[kind]] = struct.unpack("<f", struct.pack("<I", value))[0]
    request["seed"] = seed_lo | seed_hi << 32
    if request["scheme"] == "dense":
        storages = {code: name for name, code in STORAGE_CODES.items()}
        if option in storages:
            request["storage"] = storages[option]
    elif request["scheme"] in ("signcut", "auto"):
        request["c_storage"] = {code: name for name, code in C_STORAGE_CODES.items()}.get(option, "float32")
    return request


def normalized_request(**options) -> dict:
    """``options`` checked and in their stored form: what ``request_options(request_words(**options))`` gives."""
    return request_options(request_words(**options))


def matrix_view_lead(chunk_shape: tuple) -> int:
    """How many leading dimensions of extent 1 the matrix view drops [H5-3]."""
    lead = 0
    while len(chunk_shape) - lead > 2 and chunk_shape[lead] == 1:
        lead += 1
    return lead


def encode_chunk(block: np.ndarray, chunk_shape: tuple, *, bits=None, **encode_args) -> bytes:
    """The `.lrq` stream of one chunk: ``block`` is the chunk's values, the
    whole chunk or (an edge chunk written by an application that knows the
    array's extent) the part inside the array (spec/hdf5-filter.md §5).  A
    ``bits=`` budget is for the chunk's place, a full chunk's entries, so an
    edge block gets the bytes a full chunk would have."""
    block = np.asarray(block)
    block = block.reshape(block.shape[matrix_view_lead(tuple(chunk_shape)):])
    if bits is not None:
        encode_args["bits"] = bits * math.prod(chunk_shape) / block.size
    return dumps(encode(block, name=CHUNK_TENSOR_NAME, **encode_args))


def load_chunk(stream, chunk_shape: tuple, dtype, where: str):
    """The chunk's tensor (an ``lrq.Matrix``) after the checks of [H5-1]-[H5-3];
    errors are the stream's, prefixed with ``where``."""
    try:
        matrix = loads(bytes(stream) if not isinstance(stream, (bytes, bytearray, memoryview)) else stream)
    except LrqError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    view = tuple(chunk_shape)[matrix_view_lead(tuple(chunk_shape)):]
    if matrix.dtype != np.dtype(dtype) or matrix.ndim != len(view) or any(t > v for t, v in zip(matrix.shape, view)):
        raise FormatError(f"{where}: holds a {matrix.dtype} tensor of shape {matrix.shape}, not a {np.dtype(dtype)} "
                          f"tensor fitting the chunk's matrix view {view} [H5-2, H5-3]")
    return matrix


def decode_chunk(stream, chunk_shape: tuple, dtype, where: str) -> np.ndarray:
    """The chunk's values in its full shape: the tensor in the leading corner
    of the matrix view, +0 elsewhere [H5-4]."""
    matrix = load_chunk(stream, chunk_shape, dtype, where)
    try:
        values = matrix.decode()
    except LrqError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    chunk_shape = tuple(chunk_shape)
    if values.shape == chunk_shape[matrix_view_lead(chunk_shape):]:
        return values.reshape(chunk_shape)
    out = np.zeros(chunk_shape, np.dtype(dtype))
    view = out.reshape(chunk_shape[matrix_view_lead(chunk_shape):])
    view[tuple(slice(0, s) for s in values.shape)] = values
    return out


def chunk_operand(stream, chunk_shape: tuple, extent: tuple, dtype, where: str) -> tuple:
    """(rows, cols, operand) of a 2-D chunk's stream: the part of the
    chunk inside the array that the tensor covers, and the tensor (an
    ``lrq.Matrix`` that multiplies on its factors).  ``extent`` is the
    chunk's part inside the array."""
    matrix = load_chunk(stream, chunk_shape, dtype, where)
    return min(extent[0], matrix.shape[0]), min(extent[1], matrix.shape[1]), matrix


def product_dtype(matrix_dtype, x: np.ndarray) -> np.dtype:
    """The result type of a chunked product: float32 for a float32 array and operand, else float64."""
    wide = np.dtype(matrix_dtype) == np.float64 or x.dtype != np.float32
    return np.dtype(np.float64 if wide else np.float32)


def check_operand(x, shape: tuple, transpose: bool, matrix_dtype) -> np.ndarray:
    """``x`` checked for ``op(A) @ x`` (a real vector or matrix whose first
    dimension is the contracted one) and cast to the product's type."""
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.dtype.kind not in "fiu":
        raise ArgumentError(f"the operand must be a real vector or matrix, not {x.dtype} of shape {x.shape}")
    inner = shape[0] if transpose else shape[1]
    if x.shape[0] != inner:
        raise ArgumentError(f"shapes {shape[::-1] if transpose else shape} and {x.shape} do not multiply")
    return x.astype(product_dtype(matrix_dtype, x), copy=False)


def partial_product(operand, rows: int, cols: int, x_part: np.ndarray, transpose: bool) -> np.ndarray:
    """One chunk's share of ``op(A) @ x``: ``operand`` covers ``rows`` x
    ``cols`` of the array (it may be larger: a padded edge chunk);
    ``x_part`` is the operand's slice for the chunk (``cols`` rows, or
    ``rows`` transposed).  Returns ``cols`` (transposed) or ``rows`` rows."""
    height, width = operand.shape
    inner, outer, size = (rows, cols, height) if transpose else (cols, rows, width)
    if size != inner:
        part = np.zeros((size,) + x_part.shape[1:], x_part.dtype)
        part[:inner] = x_part[:inner]
    else:
        part = x_part
    result = (operand.T @ part) if transpose else (operand @ part)
    return np.asarray(result[:outer], dtype=x_part.dtype)


def chunked_product(shape: tuple, chunks: tuple, matrix_dtype, chunk_at: Callable[[tuple], Optional[tuple]],
                    x, transpose: bool) -> np.ndarray:
    """``op(A) @ x`` over a chunked matrix, chunk by chunk: ``chunk_at(corner)``
    gives (rows, cols, operand) for the chunk at ``corner``, or None for a
    chunk that is all zeros.  Memory stays at one chunk's operand."""
    x = check_operand(x, shape, transpose, matrix_dtype)
    out = np.zeros((shape[1] if transpose else shape[0],) + x.shape[1:], x.dtype)
    for r0 in range(0, shape[0], chunks[0]):
        for c0 in range(0, shape[1], chunks[1]):
            found = chunk_at((r0, c0))
            if found is None:
                continue
            rows, cols, operand = found
            if transpose:
                out[c0:c0 + cols] += partial_product(operand, rows, cols, x[r0:r0 + rows], True)
            else:
                out[r0:r0 + rows] += partial_product(operand, rows, cols, x[c0:c0 + cols], False)
    return out


class ChunkedMatrix:
    """Products with a 2-D chunked array whose chunks are `.lrq` streams:
    ``M @ x``, ``M @ X``, ``M.T @ y``, computed chunk by chunk on the
    chunks' factors by :func:`chunked_product`.  A door sets ``shape``,
    ``dtype`` and ``chunks`` and implements ``_chunk(corner)``, which gives
    (rows, cols, operand) of the chunk at ``corner`` or None for zeros."""

    shape: tuple
    dtype: np.dtype
    chunks: tuple

    def _chunk(self, corner: tuple) -> Optional[tuple]:
        raise NotImplementedError

    @property
    def T(self) -> "TransposedView":
        return TransposedView(self)

    def __matmul__(self, x):
        return self._product(x, transpose=False)

    def _product(self, x, transpose: bool) -> np.ndarray:
        return chunked_product(self.shape, self.chunks, self.dtype, self._chunk, x, transpose)


class TransposedView:
    """``M.T`` of a :class:`ChunkedMatrix`: ``M.T @ y``."""

    def __init__(self, matrix: ChunkedMatrix):
        self._matrix = matrix
        self.shape = matrix.shape[::-1]

    def __matmul__(self, y):
        return self._matrix._product(y, transpose=True)
