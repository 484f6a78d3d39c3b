"""Whole-tensor decoding: assemble tiles into the dense array the file describes.

Memory: beyond the decoded output, decoding a tensor takes the unpacked
factors of one tile (a fixed multiple of that tile's section bytes) and at
most :data:`PRODUCT_BLOCK_BYTES` of float64 products at a time, so a small
file that declares a large output costs its output and no more ([LIM-8]).
A result that cannot be allocated is a :class:`lrq.ResourceError`.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..errors import ResourceError
from . import dense, lplr, quantized, signcut
from .container import DTYPES, is_tensor_tile

# float64 rows of a factorized tile's product computed at once.
PRODUCT_BLOCK_BYTES = 64 << 20


def output_dtype(dtype: str) -> np.dtype:
    """The numpy dtype a tensor decodes to: its own, or float32 for bfloat16."""
    if dtype == "bfloat16":
        return np.dtype(np.float32)
    if dtype == "bool":
        return np.dtype(np.bool_)
    return np.dtype(DTYPES[dtype][0]).newbyteorder("=")


def _product_into(out: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """out = left @ right in float64, a block of rows at a time."""
    rows = max(1, PRODUCT_BLOCK_BYTES // (8 * max(1, right.shape[1])))
    # A tile that is not binary32-safe may exceed the output type's range: its
    # values are unspecified and it is decoded all the same [NUM-4].
    with np.errstate(over="ignore", invalid="ignore"):
        for r0 in range(0, left.shape[0], rows):
            out[r0 : r0 + rows] = left[r0 : r0 + rows].astype(np.float64) @ right


def _dense_values(tile, crc32c, dtype: Optional[str]) -> np.ndarray:
    """A dense tile's decoded values: stored values rounded to the tensor's ``dtype`` [NUM-2]."""
    storage = tile.params["storage"]
    values = dense.load(tile.section("values", crc32c), storage, tile.shape)
    return values if dtype is None else dense.to_dtype(values, storage, dtype)


def decode_tile_into(tile, panel: int, crc32c, out: np.ndarray, dtype: Optional[str] = None) -> None:
    """Write a tile's values into ``out`` (exact for dense; float64 products rounded once for the factorizations).

    ``dtype`` is the tensor's dtype: a dense value stored in a wider type is
    rounded to it [NUM-2] (``None`` keeps the stored values, for callers that
    want them as stored).  The CRCs of all the tile's sections are checked
    before any of its content rules [SEC-9].
    """
    for section in tile.sections.values():
        section.payload(crc32c)
    if tile.scheme == "dense":
        out[...] = _dense_values(tile, crc32c, dtype)
    elif is_tensor_tile(tile.scheme, tile.shape):
        left, right = signcut.tensor_matrix_factors(tile, panel, crc32c)
        _product_into(out.reshape(left.shape[0], right.shape[1]), left, right)
    elif tile.scheme == "signcut":
        s, c, tt = signcut.factors(tile, panel, crc32c)
        _product_into(out, s, c.astype(np.float64)[:, None] * tt.astype(np.float64))
    elif tile.scheme == "quant":
        out[...] = quantized.factor(tile, panel, crc32c)
    else:
        _product_into(out, *lplr.factors(tile, panel, crc32c))


def decode_tile(tile, panel: int, crc32c, dtype: Optional[str] = None) -> np.ndarray:
    """A tile's values: exact for dense (rounded to ``dtype`` as for :func:`decode_tile_into`),
    float64 products for the factorizations."""
    if tile.scheme == "dense":
        return _dense_values(tile, crc32c, dtype)
    out = np.empty(tile.shape, dtype=np.float64)
    decode_tile_into(tile, panel, crc32c, out)
    return out


def decode_tensor(record, crc32c, max_output_bytes: Optional[int] = None) -> np.ndarray:
    """The tensor's dense array; refuses (ResourceError) an output over ``max_output_bytes`` [LIM-8]."""
    dtype = output_dtype(record.dtype)
    nbytes = math.prod(record.shape) * dtype.itemsize
    shape = "×".join(map(str, record.shape)) or "scalar"
    if max_output_bytes is not None and nbytes > max_output_bytes:
        raise ResourceError(f"tensor '{record.name}': its decoded {shape} {dtype} output takes {nbytes:,} bytes, "
                            f"over the limit of {max_output_bytes:,} [LIM-8]")
    try:
        out = np.empty(record.shape, dtype=dtype)
        for tile in record.tiles:
            index = tuple(slice(o, o + s) for o, s in zip(tile.origin, tile.shape))
            decode_tile_into(tile, record.panel, crc32c, out[index] if index else out, record.dtype)  # a 0-d view is out itself
    except MemoryError:
        raise ResourceError(f"tensor '{record.name}': not enough memory to decode it (its {shape} {dtype} "
                            f"output alone takes {nbytes:,} bytes) [LIM-8]") from None
    return out


# [NUM-1]'s domain (spec §11): M <= (1 - 2^-16) * 2^128, and for lplr every
# nonzero factor element within [2^-63, 2^63] in magnitude.
SAFE_SUM = (1 - 2.0**-16) * 2.0**128
SAFE_FACTOR_RANGE = (2.0**-63, 2.0**63)


def binary32_safe(tile, panel: int, crc32c) -> bool:
    """Whether [NUM-1] applies to a tile's elements (always, for dense tiles).

    A signcut or lplr tile outside this domain decodes to unspecified values
    [NUM-4]; comparisons of decoders skip it.
    """
    if tile.scheme == "signcut":
        return float(np.abs(signcut.coefficients(tile, crc32c).astype(np.float64)).sum()) <= SAFE_SUM
    if tile.scheme == "quant":  # one rounding of exact values: [NUM-1] holds wherever they are finite
        return bool(np.abs(quantized.factor(tile, panel, crc32c)).max(initial=0.0) <= SAFE_SUM)
    if tile.scheme == "lplr":
        left, right = lplr.factors(tile, panel, crc32c)
        lo, hi = SAFE_FACTOR_RANGE
        for factor in (left, right):
            magnitude = np.abs(factor[factor != 0])
            if magnitude.size and not (lo <= magnitude.min() and magnitude.max() <= hi):
                return False
        with np.errstate(over="ignore"):
            return not (left.size and right.size) or float((np.abs(left) @ np.abs(right)).max()) <= SAFE_SUM
    return True
