"""``lrq.Matrix``: a compressed tensor you can multiply with and decode."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _native
from .errors import ArgumentError
from .reference import container, decoder, lplr, signcut


def _unpack_signs(buf, rows, k, panel):
    return _native.unpack_signs_f32(buf, rows, k, panel)


class Matrix:
    """A tensor stored in the `.lrq` format, usually a low-rank/1-bit matrix.

    Made by :func:`lrq.encode`, :func:`lrq.loads`, :func:`lrq.signcut_from_factors`
    or read from :func:`lrq.open`.  Nothing is decoded to dense unless you ask
    (``lrq.decode(M)`` or ``np.asarray(M)``): products ``M @ x``, ``M.T @ y``
    and ``M @ X`` run on the factors.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype — what ``decode`` returns (float32 for bfloat16 originals)
    scheme : str — "signcut", "lplr" or "dense", or "mixed" when tiles differ
    nbytes : int — size of the tensor written alone as a `.lrq` file
    bits_per_entry : float — ``8 * nbytes / size``: everything stored, headers included
    rel_error : float or None — ‖A − decode(M)‖_F / ‖A‖_F measured at encode time
    name : str or None — the tensor's name in the file it came from
    """

    __array_priority__ = 20  # so ndarray @ Matrix defers to Matrix.__rmatmul__

    def __init__(self, record: container.TensorRecord, *, owner=None, cache: bool = True):
        self._record = record
        self._owner = owner  # keeps a file mapping alive while views point into it
        self._cache = {} if cache else None
        self._nbytes: Optional[int] = None
        self.name: Optional[str] = record.name

    # ----------------------------------------------------------- properties
    @property
    def shape(self) -> tuple:
        return tuple(self._record.shape)

    @property
    def ndim(self) -> int:
        return len(self._record.shape)

    @property
    def size(self) -> int:
        return math.prod(self._record.shape)

    @property
    def dtype(self) -> np.dtype:
        return decoder.output_dtype(self._record.dtype)

    @property
    def source_dtype(self) -> str:
        """The original element type recorded in the file (e.g. "bfloat16")."""
        return self._record.dtype

    @property
    def scheme(self) -> str:
        schemes = {tile.scheme for tile in self._record.tiles}
        return schemes.pop() if len(schemes) == 1 else "mixed"

    @property
    def params(self) -> dict:
        """Scheme parameters of a single-tile matrix (e.g. ``{"width": 1024}``)."""
        if len(self._record.tiles) != 1:
            raise ArgumentError("params is defined for single-tile matrices; see tiles")
        return dict(self._record.tiles[0].params)

    @property
    def tiles(self) -> list:
        """(origin, shape, scheme, params) of every tile, in grid order."""
        return [(t.origin, t.shape, t.scheme, dict(t.params)) for t in self._record.tiles]

    @property
    def rel_error(self) -> Optional[float]:
        return self._record.rel_error

    @property
    def nbytes(self) -> int:
        if self._nbytes is None:
            self._nbytes = sum(len(memoryview(p).cast("B")) for p in self._serialize())
        return self._nbytes

    @property
    def bits_per_entry(self) -> float:
        return 8.0 * self.nbytes / self.size

    @property
    def T(self) -> "_Transposed":
        """A view whose ``@`` computes products with the transpose."""
        return _Transposed(self)

    def __repr__(self) -> str:
        err = "" if self.rel_error is None else f", rel_error={self.rel_error:.4g}"
        shape = "×".join(map(str, self.shape)) or "scalar"
        return (
            f"<lrq.Matrix {shape} {self.scheme} {self._record.dtype}, "
            f"{self.nbytes} bytes, {self.bits_per_entry:.3g} bits/entry{err}>"
        )

    # -------------------------------------------------------------- decoding
    def _serialize(self):
        return container.serialize([self._record], None, _native.crc32c)

    def __array__(self, dtype=None, copy=None):
        out = self.decode()
        return out if dtype is None else out.astype(dtype, copy=False)

    def decode(self) -> np.ndarray:
        """The dense array (same as ``lrq.decode(M)``)."""
        out = np.empty(self.shape, dtype=self.dtype)
        for tile in self._record.tiles:
            index = tuple(slice(o, o + s) for o, s in zip(tile.origin, tile.shape))
            if tile.scheme == "signcut":
                values = signcut.decode(tile, self._record.panel, _native.crc32c, _unpack_signs)
            else:
                values = decoder.decode_tile(tile, self._record.panel, _native.crc32c)
            out[index] = values
        return out

    # -------------------------------------------------------------- products
    def _factors(self, index: int, tile):
        """Per-tile operands for products, cached for in-memory matrices."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        panel = self._record.panel
        # A float64 matrix keeps float64 operands: dequantized lplr factors
        # and float64 dense values do not survive a round trip through float32.
        kept = np.float64 if self.dtype == np.float64 else np.float32
        if tile.scheme == "signcut":
            ops = signcut.factors(tile, panel, _native.crc32c, _unpack_signs)
        elif tile.scheme == "lplr":
            left, right = lplr.factors(tile, panel, _native.crc32c)
            ops = (left.astype(kept), right.astype(kept))
        else:
            ops = (decoder.decode_tile(tile, panel, _native.crc32c).astype(kept),)
        if self._cache is not None:
            self._cache[index] = ops
        return ops

    def _check_operand(self, x, axis_len: int, what: str) -> np.ndarray:
        if self.ndim != 2:
            raise ArgumentError(f"products need a 2-D matrix; this one has shape {self.shape}")
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise ArgumentError(f"{what} is not an array: {exc}") from None
        if x.dtype.kind not in "fiub" or x.dtype.kind == "c":
            raise ArgumentError(f"{what} must be real numbers, not {x.dtype}")
        if x.ndim not in (1, 2) or x.shape[0] != axis_len:
            raise ArgumentError(f"{what} has shape {x.shape}; it needs {axis_len} rows")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ArgumentError(f"{what} holds NaN or infinity")
        return x

    def _compute_dtype(self, x: np.ndarray) -> np.dtype:
        wide = x.dtype == np.float64 or self.dtype == np.float64
        return np.dtype(np.float64 if wide else np.float32)

    def _product(self, x, transpose: bool) -> np.ndarray:
        m, n = self.shape
        x = self._check_operand(x, m if transpose else n, "the vector" if np.ndim(x) == 1 else "the matrix")
        ct = self._compute_dtype(x)
        xc = x.astype(ct, copy=False)
        out_rows = n if transpose else m
        out = np.zeros((out_rows,) + x.shape[1:], dtype=ct)
        for index, tile in enumerate(self._record.tiles):
            (r0, c0), (tm, tn) = tile.origin, tile.shape
            ops = [np.asarray(op, dtype=ct) if op.dtype != ct else op for op in self._factors(index, tile)]
            if transpose:
                part = xc[r0 : r0 + tm]
                for op in ops:  # A = ops[0] @ ops[1] @ …; Aᵀy applies them first to last
                    part = op.T @ part if op.ndim == 2 else (op[:, None] * part if part.ndim == 2 else op * part)
                out[c0 : c0 + tn] += part
            else:
                part = xc[c0 : c0 + tn]
                for op in reversed(ops):
                    part = op @ part if op.ndim == 2 else (op[:, None] * part if part.ndim == 2 else op * part)
                out[r0 : r0 + tm] += part
        return out

    def matvec(self, x) -> np.ndarray:
        """y = A x for a vector x (or A X for a matrix X with one column per vector)."""
        return self._product(x, transpose=False)

    def rmatvec(self, y) -> np.ndarray:
        """x = Aᵀ y."""
        return self._product(y, transpose=True)

    def matmat(self, x) -> np.ndarray:
        return self._product(x, transpose=False)

    def __matmul__(self, x):
        return self._product(x, transpose=False)

    def __rmatmul__(self, x):
        # x @ A = (Aᵀ xᵀ)ᵀ
        x = np.asarray(x)
        return self._product(x.T, transpose=True).T


class _Transposed:
    """``M.T``: products with the transpose, without materializing anything."""

    def __init__(self, base: Matrix):
        self._base = base

    @property
    def shape(self) -> tuple:
        m, n = self._base.shape
        return (n, m)

    @property
    def T(self) -> Matrix:
        return self._base

    def __matmul__(self, y):
        return self._base.rmatvec(y)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._base, dtype=dtype).T
