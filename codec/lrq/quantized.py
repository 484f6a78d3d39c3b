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

from . import _native
from .format import ROW_EXPONENTS as EXPONENTS  # [QT-4]
# Clipping ratios the scale search tries (a group's largest magnitude onto
# the top level times the ratio).  Finer than lplr's: the scale of a matrix's
# own entries is what its error is made of.
_CLIP_RATIOS = np.linspace(0.30, 1.0, 29)
_ROW_TILE = 16


def _grouped(values: np.ndarray, group: int) -> np.ndarray:
    rows, k = values.shape
    groups = -(-k // group)
    padded = np.zeros((rows, groups * group), dtype=np.float64)
    padded[:, :k] = values
    return padded.reshape(rows, groups, group)


def _codes_for(grouped: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    half = (2**bits - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(scale[..., None] > 0, grouped / scale[..., None] + half, 0.0)
    return np.clip(np.rint(scaled), 0, 2**bits - 1)


def _group_error(grouped: np.ndarray, real: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    half = (2**bits - 1) / 2
    residual = grouped - scale[..., None] * (_codes_for(grouped, scale, bits) - half)
    return ((residual * residual) * real).sum(axis=2)


def quantize(values: np.ndarray, bits: int, group: int, scale_bits: int):
    """Quantize a float matrix for a quant tile.

    Returns (codes uint8 m × n, scale codes uint8 m × G, row exponents int8
    m, σ float).  Each group's scale is first the clipping ratio with the
    least squared error; then it is rounded to a t-bit code under its row's
    exponent, the code and its two neighbours are tried against the group,
    and the element codes are chosen against the scale the decoder will use.
    """
    values = np.asarray(values, dtype=np.float64)
    rows, k = values.shape
    half = (2**bits - 1) / 2
    grouped = _grouped(values, group)
    real = (np.arange(grouped.shape[1] * group) < k).reshape(1, -1, group)
    peak = np.abs(grouped).max(axis=2) if grouped.size else np.zeros((rows, 0))
    best_err = np.full(peak.shape, np.inf)
    best_scale = np.zeros(peak.shape)
    for ratio in _CLIP_RATIOS:
        scale = ratio * peak / half
        err = _group_error(grouped, real, scale, bits)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_scale = np.where(better, scale, best_scale)
    top = float(best_scale.max()) if best_scale.size else 0.0
    sigma = float(np.float32(top)) if top > 0 else 1.0
    relative = best_scale / sigma  # at most about 1
    top_code = 2**scale_bits - 1
    row_max = relative.max(axis=1) if relative.size else np.zeros(rows)
    with np.errstate(divide="ignore"):
        exps = np.ceil(np.log2(np.where(row_max > 0, row_max, 1.0) / top_code))
    exps = np.clip(exps, *EXPONENTS).astype(np.int8)
    step = np.ldexp(1.0, exps.astype(np.int64))[:, None]
    nearest = np.clip(np.rint(relative / step), 0, top_code)
    chosen, chosen_err = nearest, np.full(peak.shape, np.inf)
    for delta in (0, -1, 1):
        code = np.clip(nearest + delta, 0, top_code)
        err = _group_error(grouped, real, sigma * code * step, bits)
        better = err < chosen_err
        chosen_err = np.where(better, err, chosen_err)
        chosen = np.where(better, code, chosen)
    effective = sigma * chosen * step
    codes = _codes_for(grouped, effective, bits).reshape(rows, -1)[:, :k].astype(np.uint8)
    return codes, chosen.astype(np.uint8), exps, sigma


def dequantize(codes, scale_codes, exps, sigma: float, bits: int, group: int) -> np.ndarray:
    """F as a decoder defines it, in float64 (exact: at most 41 significant bits)."""
    rows, k = codes.shape
    scales = scale_codes.astype(np.float64) * np.ldexp(1.0, np.asarray(exps, dtype=np.int64))[:, None]
    per_element = scales[:, np.arange(k) // group]
    return float(np.float32(sigma)) * per_element * (codes.astype(np.float64) - (2**bits - 1) / 2)


def _pack_codes(codes: np.ndarray, bits: int, panel: int) -> bytes:
    """Codes of ≤ 4 bits as bit-planes, wider ones as bytes (§10.3)."""
    if bits <= 4:
        return b"".join(_native.pack_interleaved(((codes >> p) & 1).astype(np.uint8), 1, panel).tobytes()
                        for p in range(bits))
    return _native.pack_interleaved(codes, 8, panel).tobytes()


def pack_scale_codes(scale_codes: np.ndarray, scale_bits: int) -> bytes:
    """The m × G codes in §10.3's scale order (row tiles, groups, rows), scale_bits each, least significant bit first."""
    rows, groups = scale_codes.shape
    if not rows or not groups:
        return b""
    ordered = np.concatenate([scale_codes[r0:r0 + _ROW_TILE].T.reshape(-1) for r0 in range(0, rows, _ROW_TILE)])
    bits = np.unpackbits(ordered.astype(np.uint8)[:, None], axis=1, bitorder="little")[:, :scale_bits]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def params_and_sections(bits: int, group: int, scale_bits: int, quantized, panel: int) -> tuple:
    """Header parameters and section bytes of a quant tile from :func:`quantize`'s result."""
    codes, scale_codes, exps, sigma = quantized
    params = {"bits": bits, "group": group, "scale_bits": scale_bits, "scale": float(np.float32(sigma))}
    sections = {
        "codes": _pack_codes(codes, bits, panel),
        "scale_codes": pack_scale_codes(scale_codes, scale_bits),
        "row_exponents": np.asarray(exps, dtype=np.int8).tobytes(),
    }
    return params, sections
