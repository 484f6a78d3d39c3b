"""Scheme ``dense``: the tile's values stored element by element (spec §10.1)."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, FormatError
from .container import DTYPES, FLOAT_STORAGE


def float_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest, ties to even) as uint16 bits."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bfloat16_bits_to_float(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def _float64_to_float32_round_to_odd(values: np.ndarray) -> np.ndarray:
    """float64 to float32 rounding toward zero, with the last bit set when inexact.

    Rounding this result to bfloat16 (8 significant bits, binary32's exponent
    range) is then the single correct rounding of the float64 value: the 16
    extra bits and the sticky last bit keep every tie and near-tie intact.
    """
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    bits = nearest.view(np.uint32).copy()
    wide = np.abs(nearest.astype(np.float64)) > np.abs(values)  # rounded away from zero: step back
    bits[wide] -= 1
    inexact = bits.view(np.float32).astype(np.float64) != values
    bits[inexact] |= 1
    return bits.view(np.float32)


def to_dtype(values: np.ndarray, storage: str, dtype: str) -> np.ndarray:
    """Stored float values as the decoded values of a ``dtype`` tensor [NUM-2].

    A value stored in a type wider than the tensor's dtype is rounded once, to
    nearest with ties to even, to the dtype (an infinity when it exceeds the
    dtype's range); bfloat16 values come back as float32, which holds them
    exactly.  A narrower storage type widens exactly; values stored in the
    dtype itself (and integer and bool values, [DN-2]) are returned unchanged.
    """
    if storage == dtype or dtype not in FLOAT_STORAGE:
        return values
    if dtype == "bfloat16":
        wide = values.astype(np.float64)
        as32 = _float64_to_float32_round_to_odd(wide) if values.dtype == np.float64 else wide.astype(np.float32)
        return bfloat16_bits_to_float(float_to_bfloat16_bits(as32))
    with np.errstate(over="ignore"):  # beyond the dtype's range the value is an infinity, by definition
        return values.astype(DTYPES[dtype][0])


def store(values: np.ndarray, storage: str) -> bytes:
    """Encode a tile's values in ``storage`` type; refuses what would overflow."""
    with np.errstate(over="ignore"):  # overflow is reported just below, as an error
        if storage == "bfloat16":
            bits = float_to_bfloat16_bits(values)
            decoded = bfloat16_bits_to_float(bits)
            raw = bits.astype("<u2")
        elif storage == "bool":
            decoded = raw = np.ascontiguousarray(values, dtype=np.bool_).view(np.uint8)
        else:
            raw = np.ascontiguousarray(values).astype(DTYPES[storage][0])
            decoded = raw
    if storage in FLOAT_STORAGE and not np.isfinite(decoded).all():
        raise ArgumentError(f"values do not fit in {storage} (they would become infinite); choose a wider storage")
    return raw.tobytes()


def load(buf, storage: str, shape: tuple) -> np.ndarray:
    """Decode a ``values`` section; checks the element values are allowed."""
    if storage == "bfloat16":
        values = bfloat16_bits_to_float(np.frombuffer(buf, dtype="<u2"))
    elif storage == "bool":
        raw = np.frombuffer(buf, dtype=np.uint8)
        if (raw > 1).any():
            raise FormatError("a bool value byte is neither 0 nor 1 [DN-4]")
        values = raw.astype(np.bool_)
    else:
        values = np.frombuffer(buf, dtype=DTYPES[storage][0])
    if storage in FLOAT_STORAGE and not np.isfinite(values).all():
        raise FormatError("dense values hold NaN or infinity [DN-3]")
    return values.reshape(shape)


def encode(tile: np.ndarray, storage: str) -> tuple:
    """(params, sections) of one dense tile."""
    return {"storage": storage}, {"values": store(tile, storage)}
