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
