"""Scheme ``lplr``: A ≈ L · R with both factors quantized to few bits.

LPLR (Saha, Srivastava & Pilanci, NeurIPS 2023): sketch the range of A with
a Gaussian matrix Ω (n × r, entries N(0, 1/r)), quantize L = Q(A Ω), fit
R = argmin ‖L R − A‖ by least squares against the quantized L, then quantize
R.  The fit absorbs the first quantization's error, which is why LPLR beats
quantizing an SVD directly.  The ``svd`` variant starts from U_r Σ_r instead
of a sketch (the paper's LPLR-SVD).

Quantization is symmetric midrise with one float16 scale per (row, group)
along the reduction dimension (see ``quant``), a clear improvement on the
paper's one min/max range per matrix.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from . import layout, quant

VARIANTS = ("sketch", "svd")


def starting_factor(a: np.ndarray, rank: int, variant: str, seed: int, svd=None) -> np.ndarray:
    """The unquantized left factor (m × rank) before the least-squares fit."""
    if variant == "svd":
        u, sv, _ = svd if svd is not None else np.linalg.svd(a, full_matrices=False)
        return u[:, :rank] * sv[:rank]
    # Columns are drawn one after another from the seed, so a smaller rank
    # sees a prefix of a larger rank's sketch; searches over rank stay stable.
    omega = np.random.default_rng(seed).standard_normal((rank, a.shape[1])).T / np.sqrt(max(rank, 1))
    return a @ omega


def least_squares(left: np.ndarray, a: np.ndarray) -> np.ndarray:
    """argmin_W ‖left · W − a‖_F, by QR (fast), or by SVD when left is rank-deficient."""
    q, r = np.linalg.qr(left)
    diag = np.abs(np.diag(r))
    if diag.size and diag.min() > 1e-10 * diag.max():
        return np.linalg.solve(r, q.T @ a)
    return np.linalg.lstsq(left, a, rcond=None)[0]


def fit(a: np.ndarray, left: np.ndarray, bits_l: int, bits_r: int, group: int,
        quantize=quant.quantize, solve=None):
    """Quantize ``left``, fit and quantize the right factor.

    Returns ((l_codes, l_scales, σ_L), (r_codes, r_scales, σ_R), L̂, R̂) where
    L̂ and R̂ are the factors exactly as a decoder reconstructs them.
    ``quantize`` and ``solve`` (the least-squares fit) may be replaced by
    faster implementations of the same contract (the encoder uses C ones).
    """
    l_codes, l_scales, l_sigma = quantize(left, bits_l, group)
    l_hat = quant.dequantize(l_codes, l_scales, l_sigma, bits_l, group)
    right = (solve or least_squares)(l_hat, a)
    r_codes, r_scales, r_sigma = quantize(right, bits_r, group)
    r_hat = quant.dequantize(r_codes, r_scales, r_sigma, bits_r, group)
    return (l_codes, l_scales, l_sigma), (r_codes, r_scales, r_sigma), l_hat, r_hat


def pack_codes(codes: np.ndarray, bits: int, panel: int, pack) -> bytes:
    """A code section (§10.3): b bit-planes one after another for b ≤ 4, else one byte matrix."""
    if bits <= 4:
        planes = [pack(((codes >> p) & 1).astype(np.uint8), 1, panel) for p in range(bits)]
        return b"".join(p.tobytes() for p in planes)
    return pack(codes, 8, panel).tobytes()


def params_and_sections(rank, bits_l, bits_r, group, left, right, panel: int, pack=layout.pack_interleaved):
    """Header parameters and section bytes of an lplr tile."""
    l_codes, l_scales, l_sigma = left
    r_codes, r_scales, r_sigma = right
    params = {
        "rank": rank,
        "bits_l": bits_l,
        "bits_r": bits_r,
        "group": group,
        "scale_l": float(np.float32(l_sigma)),
        "scale_r": float(np.float32(r_sigma)),
    }
    sections = {
        "r_codes": pack_codes(r_codes, bits_r, panel, pack),
        "r_scales": layout.pack_scales(r_scales),
        "l_codes": pack_codes(l_codes, bits_l, panel, pack),
        "l_scales": layout.pack_scales(l_scales),
    }
    return params, sections


def load_codes(raw, rows: int, k: int, bits: int, panel: int, kind: str, rule: str = "LP-4") -> np.ndarray:
    """The rows × k codes of a code section (inverse of :func:`pack_codes`),
    refusing a byte code of more than ``bits`` bits [``rule``]."""
    if bits <= 4:
        plane_bytes = layout.layout_size(rows, k, 1)
        codes = np.zeros((rows, k), dtype=np.uint8)
        for p in range(bits):
            plane = layout.unpack_interleaved(
                raw[p * plane_bytes : (p + 1) * plane_bytes], rows, k, 1, panel, what=f"{kind} plane {p}"
            )
            codes |= plane << p
        return codes
    codes = layout.unpack_interleaved(raw, rows, k, 8, panel, what=kind)
    if (codes >> bits).any():
        raise FormatError(f"{kind} holds a code of {bits + 1} or more bits [{rule}]")
    return codes


def _load_factor(tile, which: str, rows: int, k: int, panel: int, crc32c) -> np.ndarray:
    bits = tile.params[f"bits_{which}"]
    group = tile.params["group"]
    sigma = tile.params[f"scale_{which}"]
    codes = load_codes(tile.section(f"{which}_codes", crc32c), rows, k, bits, panel, f"{which}_codes")
    scales = layout.unpack_scales(tile.section(f"{which}_scales", crc32c), rows, quant.groups_of(k, group))
    raw_scales = scales.view(np.uint16)
    if ((raw_scales & 0x8000) != 0).any() or not np.isfinite(scales).all():
        raise FormatError(f"{which}_scales holds a negative, NaN or infinite scale [LP-3]")
    return quant.dequantize(codes, scales, sigma, bits, group)


def factors(tile, panel: int, crc32c):
    """(L m×r, R r×n) of a tile in float64, as the decoder defines them."""
    m, n = tile.shape
    r = tile.params["rank"]
    right = _load_factor(tile, "r", r, n, panel, crc32c)
    left = _load_factor(tile, "l", m, r, panel, crc32c)
    return left, right


def decode(tile, panel: int, crc32c) -> np.ndarray:
    left, right = factors(tile, panel, crc32c)
    return left @ right
