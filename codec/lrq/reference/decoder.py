"""Whole-tensor decoding: assemble tiles into the dense array the file describes."""

from __future__ import annotations

import numpy as np

from . import dense, lplr, signcut
from .container import DTYPES


def output_dtype(dtype: str) -> np.dtype:
    """The numpy dtype a tensor decodes to: its own, or float32 for bfloat16."""
    if dtype == "bfloat16":
        return np.dtype(np.float32)
    if dtype == "bool":
        return np.dtype(np.bool_)
    return np.dtype(DTYPES[dtype][0]).newbyteorder("=")


def decode_tile(tile, panel: int, crc32c) -> np.ndarray:
    """A tile's values: exact for dense, float64 products for the factorizations."""
    if tile.scheme == "dense":
        return dense.load(tile.section("values", crc32c), tile.params["storage"], tile.shape)
    if tile.scheme == "signcut":
        return signcut.decode(tile, panel, crc32c)
    return lplr.decode(tile, panel, crc32c)


def decode_tensor(record, crc32c) -> np.ndarray:
    out = np.empty(record.shape, dtype=output_dtype(record.dtype))
    for tile in record.tiles:
        index = tuple(slice(o, o + s) for o, s in zip(tile.origin, tile.shape))
        out[index] = decode_tile(tile, record.panel, crc32c)
    return out
