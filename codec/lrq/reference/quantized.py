"""Scheme ``quant`` (format 1.5, spec §10.7): a matrix quantized to b bits (the decoder).

The tile is one factor F (m × n) in the code representation of an lplr
factor (§10.3): codes q in [0, 2^b) on b bit-planes (b ≤ 4) or a byte
matrix, and one scale per (row, group of g columns).  The scales are not
stored as float16 but as t-bit codes under one power-of-two exponent per row
and one binary32 super-scale σ per tile, as GGUF's k-quants store theirs:

    F[i, k] = σ · code[i, k // g] · 2^e_i · (q[i, k] − (2^b − 1) / 2)

so a group costs t bits instead of 16, and small groups (which follow the
data more closely) become affordable.  code · 2^e is an exact binary16 for
code < 2^8 and −24 ≤ e ≤ 7 [QT-4], which lets a decoder hand the scales to
the lplr kernels unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import FormatError
from . import layout, lplr, quant

EXPONENTS = (-24, 7)  # [QT-4]


def dequantize(codes, scale_codes, exps, sigma: float, bits: int, group: int) -> np.ndarray:
    """F as the decoder defines it, in float64 (exact: at most 41 significant bits)."""
    scales = scale_codes.astype(np.float64) * np.ldexp(1.0, np.asarray(exps, dtype=np.int64))[:, None]
    return quant.dequantize(codes, scales, sigma, bits, group)


def pack_scale_codes(scale_codes: np.ndarray, scale_bits: int) -> bytes:
    """The m × G codes in §10.3's scale order, scale_bits each, least significant bit first."""
    rows, groups = scale_codes.shape
    ordered = np.concatenate([scale_codes[r0:r1].T.reshape(-1) for r0, r1 in layout._row_tiles(rows)]) \
        if rows and groups else np.zeros(0, dtype=np.uint8)
    bits = np.unpackbits(ordered.astype(np.uint8)[:, None], axis=1, bitorder="little")[:, :scale_bits]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def unpack_scale_codes(buf, rows: int, groups: int, scale_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_scale_codes`; refuses nonzero bits after the last code [QT-3]."""
    count = rows * groups
    raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.size != -(-count * scale_bits // 8):
        raise FormatError(f"scale_codes: {raw.size} bytes where {-(-count * scale_bits // 8)} are needed [SEC-2]")
    stream = np.unpackbits(raw, bitorder="little")
    if stream[count * scale_bits:].any():
        raise FormatError("scale_codes: the bits after the last scale code are not zero [QT-3]")
    weights = (1 << np.arange(scale_bits)).astype(np.int64)
    ordered = (stream[: count * scale_bits].reshape(count, scale_bits).astype(np.int64) * weights).sum(axis=1)
    out = np.empty((rows, groups), dtype=np.uint8)
    pos = 0
    for r0, r1 in layout._row_tiles(rows):
        size = (r1 - r0) * groups
        out[r0:r1] = ordered[pos : pos + size].reshape(groups, r1 - r0).T
        pos += size
    return out


def params_and_sections(bits: int, group: int, scale_bits: int, quantized, panel: int,
                        pack=layout.pack_interleaved) -> tuple:
    """Header parameters and section bytes of a quant tile from :func:`quantize`'s result."""
    codes, scale_codes, exps, sigma = quantized
    params = {"bits": bits, "group": group, "scale_bits": scale_bits, "scale": float(np.float32(sigma))}
    sections = {
        "codes": lplr.pack_codes(codes, bits, panel, pack),
        "scale_codes": pack_scale_codes(scale_codes, scale_bits),
        "row_exponents": np.asarray(exps, dtype=np.int8).tobytes(),
    }
    return params, sections


def factor(tile, panel: int, crc32c) -> np.ndarray:
    """F (m × n) of a quant tile in float64, checking [QT-3], [QT-4], [QT-5] and the padding rules."""
    m, n = tile.shape
    p = tile.params
    codes = lplr.load_codes(tile.section("codes", crc32c), m, n, p["bits"], panel, "codes", "QT-5")
    groups = quant.groups_of(n, p["group"])
    scale_codes = unpack_scale_codes(tile.section("scale_codes", crc32c), m, groups, p["scale_bits"])
    exps = np.frombuffer(tile.section("row_exponents", crc32c), dtype=np.int8)
    lo, hi = EXPONENTS
    bad = np.flatnonzero((exps < lo) | (exps > hi))
    if bad.size:
        raise FormatError(f"row_exponents: row {int(bad[0])} has exponent {int(exps[bad[0]])}, outside [{lo}, {hi}] [QT-4]")
    return dequantize(codes, scale_codes, exps, p["scale"], p["bits"], p["group"])


def bits_per_entry(shape: tuple, bits: int, group: int, scale_bits: int) -> float:
    """Section bits per entry of a quant tile (no header, no alignment)."""
    m, n = shape
    return (bits * math.ceil(n / 16) * 16 + math.ceil(n / group) * scale_bits + 8) / n if m and n else 0.0
