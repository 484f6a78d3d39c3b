"""Scheme ``quant`` (format 1.5, spec §10.7): the encoder's quantizer and writer.

A quant tile is one factor F (m × n) in the code representation of an lplr
factor (§10.3) whose per-(row, group) scales are stored as t-bit codes
under a power of two per row and a binary32 super-scale per tile:

    F[i, k] = σ · code[i, k // g] · 2^e_i · (q[i, k] − (2^b − 1) / 2)

(``lrq.reference.quantized`` is the decoder of the same definition, kept
apart from this module as every reference module is.)
"""

from __future__ import annotations

import numpy as np

from . import _native, lplr


def quantize(values: np.ndarray, bits: int, group: int, scale_bits: int):
    """Quantize a float matrix for a quant tile, in C (``lrq_quant_fit_coded``).

    Returns (codes uint8 m × n, scale codes uint8 m × G, row exponents int8
    m, σ float).  Each group's scale is the clipping ratio with the least
    squared error (lplr's search: 13 ratios from 0.1 to 1 of the group's
    largest magnitude; a finer one, steps of 0.025 around the best, lowered
    the error of MiniLM's weights and N(0,1) matrices at 2-4 bits by under
    0.1 %); divided by σ (the largest, as float32) it is rounded
    to a t-bit code under its row's exponent, the code and its two
    neighbours are tried against the group, and the element codes are
    chosen against the scale the decoder will use.
    """
    return _native.quantize_coded(values, bits, group, scale_bits)


def dequantize(codes, scale_codes, exps, sigma: float, bits: int, group: int) -> np.ndarray:
    """F as a decoder defines it, in float64 (exact: at most 41 significant bits)."""
    rows, k = codes.shape
    scales = scale_codes.astype(np.float64) * np.ldexp(1.0, np.asarray(exps, dtype=np.int64))[:, None]
    per_element = scales[:, np.arange(k) // group]
    return float(np.float32(sigma)) * per_element * (codes.astype(np.float64) - (2**bits - 1) / 2)


def pack_scale_codes(scale_codes: np.ndarray, scale_bits: int) -> bytes:
    """The m × G codes in §10.3's scale order (row tiles, groups, rows), scale_bits each, least significant bit first."""
    ordered = lplr.scale_order(np.asarray(scale_codes, dtype=np.uint8))
    bits = np.unpackbits(ordered.astype(np.uint8)[:, None], axis=1, bitorder="little")[:, :scale_bits]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def params_and_sections(bits: int, group: int, scale_bits: int, quantized, panel: int) -> tuple:
    """Header parameters and section bytes of a quant tile from :func:`quantize`'s result."""
    codes, scale_codes, exps, sigma = quantized
    params = {"bits": bits, "group": group, "scale_bits": scale_bits, "scale": float(np.float32(sigma))}
    sections = {
        "codes": lplr.pack_codes(codes, bits, panel),
        "scale_codes": pack_scale_codes(scale_codes, scale_bits),
        "row_exponents": np.asarray(exps, dtype=np.int8).tobytes(),
    }
    return params, sections
