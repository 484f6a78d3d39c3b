"""Scheme ``signcut``: A ≈ S · diag(c) · Tᵀ with ±1 matrices S and T.

The encoder is the greedy signed cut decomposition (Frieze–Kannan style, as
in Riasanovsky & El Kazdadi 2024): each cut starts from a random t and
alternates s = sign(R t), t = sign(Rᵀ s) while the cut sᵀ R t strictly
increases, then takes c = sᵀ R t / (m n), the least-squares coefficient for
that pair, and subtracts c s tᵀ from the remainder R.

This is the reference encoder, in float64 NumPy.  It follows the algorithm
to the letter but not the C encoder's speed tricks, except two that keep it
usable: images are updated over the flipped coordinates only when few flip,
and the dense remainder is updated once per block of cuts (the cuts of the
open block are applied on the fly as a low-rank correction).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from ..errors import FormatError
from . import layout

BLOCK = 32  # cuts applied to the dense remainder at once
RNGS = ("numpy", "lrq")
_M64 = (1 << 64) - 1


class LrqRandom:
    """The C encoder's random starts (lrq.h): xoshiro256** seeded by SplitMix64.

    ``signs(n)`` draws one t: n bits taken least-significant first from
    ceil(n/64) successive outputs, bit 1 meaning −1.  With ``rng="lrq"`` the
    reference encoder starts cut i from the i-th t of this stream, as the C
    encoder does (the C encoder draws them 32 at a time and skips to a new
    batch after a zero-cut restart, which the reference does not model), so
    the two differ only in arithmetic (float64 here, float32 in C).
    """

    def __init__(self, seed: int):
        x, self.state = seed & _M64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & _M64
            z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
            self.state.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & _M64

    def next(self) -> int:
        s = self.state
        result = (self._rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def signs(self, n: int) -> np.ndarray:
        words = np.array([self.next() for _ in range(-(-n // 64))], dtype="<u8")
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:n]
        return np.where(bits == 1, -1.0, 1.0)


class _Remainder:
    """R = base − S_b diag(c_b) T_bᵀ, with the open block (S_b, c_b, T_b) kept apart."""

    def __init__(self, a: np.ndarray):
        self.base = np.array(a, dtype=np.float64, order="C")
        m, n = self.base.shape
        self.s_block = np.empty((m, BLOCK))
        self.t_block = np.empty((n, BLOCK))
        self.c_block = np.empty(BLOCK)
        self.size = 0

    def matvec(self, t: np.ndarray) -> np.ndarray:
        out = self.base @ t
        if self.size:
            k = self.size
            out -= self.s_block[:, :k] @ (self.c_block[:k] * (self.t_block[:, :k].T @ t))
        return out

    def rmatvec(self, s: np.ndarray) -> np.ndarray:
        out = self.base.T @ s
        if self.size:
            k = self.size
            out -= self.t_block[:, :k] @ (self.c_block[:k] * (self.s_block[:, :k].T @ s))
        return out

    def matvec_columns(self, idx: np.ndarray, v: np.ndarray) -> np.ndarray:
        """R[:, idx] @ v, for a few columns."""
        out = self.base[:, idx] @ v
        if self.size:
            k = self.size
            out -= self.s_block[:, :k] @ (self.c_block[:k] * (self.t_block[idx, :k].T @ v))
        return out

    def rmatvec_rows(self, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """R[idx, :]ᵀ @ u, for a few rows."""
        out = self.base[idx].T @ u
        if self.size:
            k = self.size
            out -= self.t_block[:, :k] @ (self.c_block[:k] * (self.s_block[idx, :k].T @ u))
        return out

    def subtract(self, c: float, s: np.ndarray, t: np.ndarray) -> None:
        k = self.size
        self.s_block[:, k], self.t_block[:, k], self.c_block[k] = s, t, c
        self.size += 1
        if self.size == BLOCK:
            self.flush()

    def flush(self) -> None:
        if self.size:
            k = self.size
            self.base -= (self.s_block[:, :k] * self.c_block[:k]) @ self.t_block[:, :k].T
            self.size = 0

    def norm2(self) -> float:
        self.flush()
        return float(np.einsum("ij,ij->", self.base, self.base))


def _signs(v: np.ndarray) -> np.ndarray:
    # sign(+0) = +1, sign(−0) = −1: the IEEE sign bit decides, as in the format.
    return np.where(np.signbit(v), -1.0, 1.0)


def _refresh(current: np.ndarray, old: np.ndarray, new: np.ndarray, full, partial) -> np.ndarray:
    """Image of ``new`` given the image ``current`` of ``old``.

    Only flipped coordinates change the image, by 2·new[j] times their column;
    when many flip, a full product is cheaper than the gather.
    """
    flipped = np.flatnonzero(old != new)
    if flipped.size == 0:
        return current
    if flipped.size * 4 > new.size:
        return full(new)
    return current + partial(flipped, 2.0 * new[flipped])


def _one_cut(rem: _Remainder, s_prev: np.ndarray, t: np.ndarray):
    """Alternate until the cut stops strictly increasing; returns (cut, s, t)."""
    rt = rem.matvec(t)
    s = s_prev
    cut = float(s @ rt)
    rs = None
    while True:
        value = float(np.abs(rt).sum())
        if not value > cut:
            break
        cut, s_new = value, _signs(rt)
        rs = rem.rmatvec(s_new) if rs is None else _refresh(rs, s, s_new, rem.rmatvec, rem.rmatvec_rows)
        s = s_new
        value = float(np.abs(rs).sum())
        if not value > cut:
            break
        cut, t_new = value, _signs(rs)
        rt = _refresh(rt, t, t_new, rem.matvec, rem.matvec_columns)
        t = t_new
    return cut, s, t


def encode(
    a: np.ndarray,
    *,
    width: Optional[int] = None,
    rel_error: Optional[float] = None,
    seed: int = 0,
    max_width: Optional[int] = None,
    progress: Optional[Callable[[int, float], None]] = None,
    rng: str = "numpy",
):
    """Greedy signed cuts of ``a`` until ``width`` cuts or ``rel_error`` is met.

    Returns (S, T, c, errors): S m×w and T n×w as ±1 float arrays, c float32,
    and the relative Frobenius error after each cut (exact: the remainder is
    tracked with the float32 c actually stored, and re-measured every block).
    The decomposition stops early when the remainder is exactly zero.
    ``rng="lrq"`` draws the random starts from the C encoder's generator.
    """
    a = np.asarray(a, dtype=np.float64)
    m, n = a.shape
    limit = width if width is not None else max_width
    if rng not in RNGS:
        raise ValueError(f"rng must be one of {RNGS}")
    if rng == "lrq":
        draw = LrqRandom(seed).signs
    else:
        generator = np.random.default_rng(seed)
        draw = lambda n: np.where(generator.integers(0, 2, size=n) == 1, -1.0, 1.0)  # noqa: E731
    rem = _Remainder(a)
    total2 = float(np.einsum("ij,ij->", a, a))
    norm2 = total2
    s_prev = np.ones(m)
    s_cols, t_cols, coefs, errors = [], [], [], []

    def rel(norm2_value: float) -> float:
        return float(np.sqrt(max(norm2_value, 0.0) / total2)) if total2 > 0 else 0.0

    while len(coefs) < limit:
        if norm2 <= 0.0 or (rel_error is not None and rel(norm2) <= rel_error):
            break
        t = draw(n)
        cut, s, t = _one_cut(rem, s_prev, t)
        if not cut > 0.0:
            # A random t can be orthogonal to every row of a non-zero R
            # (R = [1 −1], t = [1 1]).  Restart from the row holding R's
            # largest entry, whose image is then certainly non-zero.
            rem.flush()
            i = int(np.argmax(np.abs(rem.base).max(axis=1)))
            cut, s, t = _one_cut(rem, s_prev, _signs(rem.base[i]))
            if not cut > 0.0:
                break
        c = float(np.float32(cut / (m * n)))
        # ‖R − c s tᵀ‖² = ‖R‖² − 2c·sᵀRt + c²·mn, with the c that is stored.
        norm2 = norm2 - 2.0 * c * cut + c * c * m * n
        rem.subtract(c, s, t)
        if rem.size == 0:
            norm2 = rem.norm2()
        s_cols.append(s)
        t_cols.append(t)
        coefs.append(c)
        s_prev = s
        errors.append(rel(norm2))
        if progress is not None:
            progress(len(coefs), errors[-1])
    if coefs:
        errors[-1] = rel(rem.norm2())
    S = np.array(s_cols).T.reshape(m, len(coefs))
    T = np.array(t_cols).T.reshape(n, len(coefs))
    return S, T, np.array(coefs, dtype=np.float32), errors


def sections(S: np.ndarray, T: np.ndarray, c: np.ndarray, panel: int, pack=layout.pack_interleaved,
             c_scale: Optional[float] = None) -> dict:
    """The three sections of a signcut tile from ±1 factors and coefficients.

    With ``c_scale`` (format 1.1, [SC-3]) section c holds c / c_scale as
    binary16; the caller's c must already be c_scale times binary16 values.
    """
    bits_s = np.ascontiguousarray(np.asarray(S) < 0, dtype=np.uint8)
    bits_tt = np.ascontiguousarray(np.asarray(T).T < 0, dtype=np.uint8)
    if c_scale is None:
        c_bytes = np.asarray(c, dtype="<f4").tobytes()
    else:
        c16 = (np.asarray(c, dtype=np.float64) / c_scale).astype("<f2")
        if not np.array_equal(c16.astype(np.float64) * c_scale, np.asarray(c, dtype=np.float64)):
            raise ValueError("c is not c_scale times binary16 values")
        c_bytes = c16.tobytes()
    return {
        "c": c_bytes,
        "tt": pack(bits_tt, 1, panel).tobytes(),
        "s": pack(bits_s, 1, panel).tobytes(),
    }


def coefficients(tile, crc32c) -> np.ndarray:
    """The weights c of a tile as float32, checked [SC-2].

    Stored as binary32, or (with "c_scale", format 1.1) as binary16 values
    h with c[k] = c_scale × h[k]; c_scale is a power of two [SC-3], so the
    product is exact in binary32.
    """
    c_scale = tile.params.get("c_scale")
    c = np.frombuffer(tile.section("c", crc32c), dtype="<f4" if c_scale is None else "<f2")
    if not np.isfinite(c).all():
        raise FormatError("signcut coefficient c is NaN or infinite [SC-2]")
    if c_scale is None:
        return c
    return np.float32(c_scale) * c.astype(np.float32)


def factors(tile, panel: int, crc32c, unpack=None):
    """(S m×w, c, Tᵀ w×n) of a tile, S and Tᵀ as ±1 float32."""
    m, n = tile.shape
    w = tile.params["width"]
    c = coefficients(tile, crc32c)
    if unpack is None:
        tt = 1.0 - 2.0 * layout.unpack_interleaved(tile.section("tt", crc32c), w, n, 1, panel, what="tt").astype(np.float32)
        s = 1.0 - 2.0 * layout.unpack_interleaved(tile.section("s", crc32c), m, w, 1, panel, what="s").astype(np.float32)
    else:
        tt = unpack(tile.section("tt", crc32c), w, n, panel)
        s = unpack(tile.section("s", crc32c), m, w, panel)
    return s, c, tt


def tensor_factors(tile, panel: int, crc32c) -> tuple:
    """(c, [S_0, …, S_{d-1}]) of a tensor tile (spec §10.5): c as float32
    [SC-2], each S_a the n_a × w sign matrix of section "s{a}" as ±1 [LAY-1]."""
    w = tile.params["width"]
    c = coefficients(tile, crc32c)
    signs = [1.0 - 2.0 * layout.unpack_interleaved(tile.section(f"s{a}", crc32c), n, w, 1, panel,
                                                   what=f"s{a}").astype(np.float64)
             for a, n in enumerate(tile.shape)]
    return c, signs


def kron_signs(signs: list) -> np.ndarray:
    """Rows of the Kronecker product of ±1 matrices (n_a × w each), C order
    (the last index varies fastest): row (i_0, …) holds Π_a S_a[i_a, k]."""
    out = signs[0]
    for s in signs[1:]:
        out = (out[:, None, :] * s[None, :, :]).reshape(out.shape[0] * s.shape[0], s.shape[1])
    return out


def tensor_matrix_factors(tile, panel: int, crc32c) -> tuple:
    """(L, Rᵀ) with A = (L @ Rᵀ).reshape(shape) for a tensor tile (spec §10.5):
    A[i_0, …, i_{d-1}] = Σ_k c[k] Π_a S_a[i_a, k], the modes split into a
    leading group (rows, weighted by c) and the rest, so that the factors
    stay near √(entries) × w."""
    c, signs = tensor_factors(tile, panel, crc32c)
    shape = tile.shape
    # the split with the fewest rows plus columns (at least one mode each side)
    split = min(range(1, len(shape)), key=lambda k: math.prod(shape[:k]) + math.prod(shape[k:]))
    left = kron_signs(signs[:split]) * c.astype(np.float64)
    return left, kron_signs(signs[split:]).T


def decode(tile, panel: int, crc32c, unpack=None) -> np.ndarray:
    s, c, tt = factors(tile, panel, crc32c, unpack)
    return s.astype(np.float64) @ (c.astype(np.float64)[:, None] * tt.astype(np.float64))
