"""The lplr fit of the production encoder (spec §10.3): A ≈ L̂ · R̂.

L = A Ω (a seeded Gaussian sketch, or U_r Σ_r for the ``svd`` variant) is
quantized with the C quantizer, R is fitted by least squares against the
quantized L̂ (so the fit absorbs the first quantization's error) and then
quantized.  Factors are held as the decoder rebuilds them, so the error the
encoder measures is the error of the file.

``lrq.reference.lplr`` is the spec's independent twin of this module; the
conformance tests compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _native

VARIANTS = ("sketch", "svd")
# Rows per row tile of the kernel layout [LAY-1]: scales are stored per tile.
_ROW_TILE = 16


@dataclass
class Factor:
    """One quantized factor: codes, per-(row, group) binary16 scales, σ."""

    codes: np.ndarray  # uint8, rows × k
    scales: np.ndarray  # float16, rows × groups
    sigma: float  # binary32 super-scale
    bits: int
    group: int

    def values(self) -> np.ndarray:
        """The factor in float64 as the decoder defines it [LP-2]."""
        k = self.codes.shape[1]
        half = (2**self.bits - 1) / 2
        per_element = self.scales.astype(np.float64)[:, np.arange(k) // self.group]
        return float(np.float32(self.sigma)) * per_element * (self.codes.astype(np.float64) - half)


def quantize(values: np.ndarray, bits: int, group: int) -> Factor:
    codes, scales, sigma = _native.quantize(values, bits, group)
    return Factor(codes, scales, sigma, bits, group)


def sketch(a: np.ndarray, rank: int, seed: int) -> np.ndarray:
    """A Ω for a seeded n × rank Gaussian Ω with entries N(0, 1/rank).

    Ω's columns are drawn one after another from the seed, so a smaller rank
    sees a prefix of a larger rank's sketch (rank searches stay stable).
    """
    omega = np.random.default_rng(seed).standard_normal((rank, a.shape[1])).T / np.sqrt(max(rank, 1))
    return a @ omega


def starting_factor(a: np.ndarray, rank: int, variant: str, seed: int, svd=None) -> np.ndarray:
    """The unquantized left factor (m × rank) before the least-squares fit."""
    if variant == "svd":
        u, sv, _ = svd if svd is not None else np.linalg.svd(a, full_matrices=False)
        return u[:, :rank] * sv[:rank]
    return sketch(a, rank, seed)


def least_squares(left: np.ndarray, a: np.ndarray) -> np.ndarray:
    """argmin_W ‖left · W − a‖_F.

    The normal equations (GEMM speed) when ``left`` is well conditioned
    (its Cholesky diagonal spans less than 1e4, so squaring the condition
    costs at most ~1e-8 relative); otherwise QR, or an SVD solve when
    ``left`` is rank-deficient.  The caller measures the error of the
    result either way.
    """
    gram = left.T @ left
    try:
        diag = np.abs(np.diag(np.linalg.cholesky(gram)))
    except np.linalg.LinAlgError:
        diag = None
    if diag is not None and diag.size and diag.min() > 1e-4 * diag.max():
        return np.linalg.solve(gram, left.T @ a)
    q, r = np.linalg.qr(left)
    rdiag = np.abs(np.diag(r))
    if rdiag.size and rdiag.min() > 1e-10 * rdiag.max():
        return np.linalg.solve(r, q.T @ a)
    return np.linalg.lstsq(left, a, rcond=None)[0]


def pack_codes(codes: np.ndarray, bits: int, panel: int) -> bytes:
    """Codes of ≤ 4 bits as bit-planes, wider ones as bytes [LP-4] (lplr factors and quant tiles)."""
    if bits <= 4:
        planes = [_native.pack_interleaved(((codes >> p) & 1).astype(np.uint8), 1, panel) for p in range(bits)]
        return b"".join(p.tobytes() for p in planes)
    return _native.pack_interleaved(codes, 8, panel).tobytes()


def scale_order(values: np.ndarray) -> np.ndarray:
    """A rows × groups array flattened in the [row tile][group][row] order of
    lplr's scales (spec §10.3), which quant's scale codes follow too (§10.7)."""
    rows = values.shape[0]
    parts = [values[r0 : r0 + _ROW_TILE].T.reshape(-1) for r0 in range(0, rows, _ROW_TILE)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=values.dtype)


def pack_scales(scales: np.ndarray) -> bytes:
    """Per-(row, group) binary16 scales in [row tile][group][row] order [LP-3]."""
    return scale_order(np.asarray(scales, dtype="<f2")).tobytes()


def params_and_sections(rank: int, left: Factor, right: Factor, panel: int, scale_l=None, scale_r=None):
    """Header parameters and section bytes of an lplr tile.

    ``scale_l`` / ``scale_r`` replace the factors' σ when given (the encoder
    folds the input's power-of-two normalisation into them).
    """
    params = {
        "rank": rank,
        "bits_l": left.bits,
        "bits_r": right.bits,
        "group": left.group,
        "scale_l": float(np.float32(left.sigma if scale_l is None else scale_l)),
        "scale_r": float(np.float32(right.sigma if scale_r is None else scale_r)),
    }
    sections = {
        "r_codes": pack_codes(right.codes, right.bits, panel),
        "r_scales": pack_scales(right.scales),
        "l_codes": pack_codes(left.codes, left.bits, panel),
        "l_scales": pack_scales(left.scales),
    }
    return params, sections
