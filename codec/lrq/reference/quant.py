"""Symmetric midrise quantization with per-(row, group) scales (spec §10.3).

A factor F (rows × K) with b bits is stored as codes q in [0, 2^b) and one
float16 scale per row and group of g reduction elements, times one binary32
super-scale σ per factor:

    F[i, k] = σ · scale[i, k // g] · (q[i, k] − (2^b − 1) / 2)

The levels are symmetric around zero (no zero level), which is what lets a
factor of b ≤ 4 bits be stored as b sign matrices (bit-planes).
"""

from __future__ import annotations

import numpy as np

# Candidate clipping ratios for the scale search: the scale maps this fraction
# of a group's largest magnitude onto the top level.  A few low bits per entry
# want heavy clipping (for 1 bit the best level is the mean magnitude).
_CLIP_RATIOS = np.linspace(0.1, 1.0, 13)


def groups_of(k: int, group: int) -> int:
    return -(-k // group)


def _grouped(values: np.ndarray, group: int) -> np.ndarray:
    rows, k = values.shape
    n_groups = groups_of(k, group)
    padded = np.zeros((rows, n_groups * group), dtype=np.float64)
    padded[:, :k] = values
    return padded.reshape(rows, n_groups, group)


def _codes(grouped: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    half = (2**bits - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = grouped / scale[..., None] + half
    scaled = np.where(scale[..., None] > 0, scaled, 0.0)
    return np.clip(np.rint(scaled), 0, 2**bits - 1)


def quantize(values: np.ndarray, bits: int, group: int):
    """Quantize a float matrix; returns (codes uint8, scales float16, σ float).

    Each (row, group) scale is the clipping ratio with the least squared
    error, after rounding to what is actually stored (σ times a float16), so
    the codes are chosen against the scale the decoder will use.
    """
    values = np.asarray(values, dtype=np.float64)
    rows, k = values.shape
    half = (2**bits - 1) / 2
    grouped = _grouped(values, group)
    # The zeros padding the last group are not stored, so they must not
    # count in the error (midrise levels cannot hit zero: they would pull
    # every scale of a short group towards heavy clipping).
    real = (np.arange(grouped.shape[1] * group) < k).reshape(1, -1, group)
    peak = np.abs(grouped).max(axis=2) if grouped.size else np.zeros((rows, 0))
    best_err = np.full(peak.shape, np.inf)
    best_scale = np.zeros(peak.shape)
    for ratio in _CLIP_RATIOS:
        scale = ratio * peak / half
        err = (((grouped - scale[..., None] * (_codes(grouped, scale, bits) - half)) ** 2) * real).sum(axis=2)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_scale = np.where(better, scale, best_scale)
    top = best_scale.max() if best_scale.size else 0.0
    sigma = float(np.float32(top)) if top > 0 else 1.0
    stored = (best_scale / sigma).astype(np.float16)
    effective = sigma * stored.astype(np.float64)
    codes = _codes(grouped, effective, bits).reshape(rows, -1)[:, :k].astype(np.uint8)
    return codes, stored, sigma


def dequantize(codes: np.ndarray, scales: np.ndarray, sigma: float, bits: int, group: int) -> np.ndarray:
    """The factor the decoder sees, in float64."""
    rows, k = codes.shape
    half = (2**bits - 1) / 2
    # Index rather than np.repeat: repeating makes rows × groups × g values,
    # which for a large g (up to 2^20) and a short reduction is far more than
    # the rows × k the factor has.
    per_element = scales.astype(np.float64)[:, np.arange(k) // group]
    return float(np.float32(sigma)) * per_element * (codes.astype(np.float64) - half)
