"""``lrq.Matrix``: a compressed tensor you can multiply with and decode."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _native
from .errors import ArgumentError, FormatError
from . import format as container
from .reference import decoder, lplr, signcut

_FACTORED = ("signcut", "lplr")
_PRECISIONS = ("float32", "int16", "int8")


class Matrix:
    """A tensor stored in the `.lrq` format, usually a low-rank/1-bit matrix.

    Made by :func:`lrq.encode`, :func:`lrq.loads`, :func:`lrq.signcut_from_factors`
    or read from :func:`lrq.open`.  Nothing is decoded to dense unless you ask
    (``lrq.decode(M)`` or ``np.asarray(M)``): products ``M @ x``, ``M.T @ y``,
    ``x @ M`` and ``M @ X`` run on the factors, in the C core, straight from
    the section bytes (for a file from :func:`lrq.open`, from the mapping).

    Signcut and lplr tiles are computed in float32 with the exact kernels:
    results are the same bits on every CPU path and thread count, and within
    1e-5 of the sum of the terms' magnitudes (spec [NUM-1]).  ``matvec`` and
    ``matmat`` accept ``precision="int16"`` or ``"int8"`` for the faster
    paths that quantize the input vector (error bounds in ``lrq.h``).

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
        # C tile handles: they borrow the section bytes (no copy), so they are
        # kept even when factor copies are not (files from lrq.open).
        self._tiles = {}
        self._single = None  # see _single_kernel()
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
        for number, tile in enumerate(self._record.tiles):
            index = tuple(slice(o, o + s) for o, s in zip(tile.origin, tile.shape))
            if tile.scheme in _FACTORED:
                kernel = self._kernel(number, tile)
                if out.dtype == np.float32:
                    kernel.decode(out=out[index])
                else:
                    out[index] = kernel.decode()
            else:
                out[index] = decoder.decode_tile(tile, self._record.panel, _native.crc32c)
        return out

    # -------------------------------------------------------------- products
    def _kernel(self, index: int, tile) -> "_native.Tile":
        """The C handle of a signcut or lplr tile, made on first use.

        ``tile.section`` checks each section's CRC the first time it is read;
        the handle then checks the value rules and borrows the bytes.  When
        the C core rejects a tile, the reference decoder runs to name the
        exact rule that fails.
        """
        kernel = self._tiles.get(index)
        if kernel is not None:
            return kernel
        panel = self._record.panel
        (m, n), p = tile.shape, tile.params
        crc = _native.crc32c
        try:
            if tile.scheme == "signcut":
                kernel = _native.signcut_tile(m, n, p["width"], panel, tile.section("c", crc),
                                              tile.section("tt", crc), tile.section("s", crc),
                                              c_scale=p.get("c_scale"))
            else:
                kernel = _native.lplr_tile(m, n, p, panel, *(tile.section(kind, crc) for kind in
                                                             ("r_codes", "r_scales", "l_codes", "l_scales")))
        except FormatError:
            (signcut if tile.scheme == "signcut" else lplr).factors(tile, panel, crc)
            raise
        self._tiles[index] = kernel
        return kernel

    def _dense(self, index: int, tile):
        """A dense tile's values for products, cached for in-memory matrices."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        # A float64 matrix keeps float64 values: they do not survive float32.
        kept = np.float64 if self.dtype == np.float64 else np.float32
        values = decoder.decode_tile(tile, self._record.panel, _native.crc32c).astype(kept)
        if self._cache is not None:
            self._cache[index] = values
        return values

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

    def _single_kernel(self):
        """The C handle when this is one signcut/lplr tile of a float32 matrix, else None.

        Remembered after the first call (the record never changes): products
        in a loop then pay one attribute read for it."""
        if self._single is not None:
            return self._single or None
        tiles = self._record.tiles
        if len(tiles) != 1 or tiles[0].scheme not in _FACTORED or self.dtype != np.float32:
            self._single = False
            return None
        self._single = self._kernel(0, tiles[0])
        return self._single

    def _product(self, x, transpose: bool, precision: str = "float32") -> np.ndarray:
        # The common case in a few checks: a float32 array against one
        # factorized tile.  A finite float64 sum of float32 values cannot
        # overflow, so it is finite exactly when every element is.
        kernel = self._single_kernel() if type(x) is np.ndarray and x.dtype == np.float32 else None
        if kernel is not None and x.ndim in (1, 2) and x.shape[0] == self.shape[1 if not transpose else 0]:
            if not math.isfinite(float(x.sum(dtype=np.float64))):
                raise ArgumentError(f"the {'vector' if x.ndim == 1 else 'matrix'} holds NaN or infinity")
            if precision not in _PRECISIONS or (transpose and precision != "float32"):
                raise ArgumentError(f"precision must be one of {', '.join(_PRECISIONS)} (float32 for "
                                    f"transposed products), not {precision!r}")
            return kernel.product(x, transpose=transpose, precision=precision)
        m, n = self.shape
        x = self._check_operand(x, m if transpose else n, "the vector" if np.ndim(x) == 1 else "the matrix")
        if precision not in _PRECISIONS:
            raise ArgumentError(f"precision must be one of {', '.join(_PRECISIONS)}, not {precision!r}")
        if transpose and precision != "float32":
            raise ArgumentError("the int16 / int8 fast paths compute M @ x only")
        ct = self._compute_dtype(x)
        tiles = self._record.tiles
        factored = any(t.scheme in _FACTORED for t in tiles)
        # Factorized tiles run in float32 on the C core, which reads any
        # strides, so a float32 operand is used in place.
        x32 = x.astype(np.float32, copy=False) if factored else None
        if x32 is not None and x.dtype != np.float32 and not np.isfinite(x32).all():
            raise ArgumentError("the operand holds values beyond the float32 range")
        out_rows = n if transpose else m
        whole = len(tiles) == 1 and factored and ct == np.float32  # C writes every element
        out = (np.empty if whole else np.zeros)((out_rows,) + x.shape[1:], dtype=ct)
        for index, tile in enumerate(tiles):
            (r0, c0), (tm, tn) = tile.origin, tile.shape
            src, dst = (slice(r0, r0 + tm), slice(c0, c0 + tn)) if transpose else (slice(c0, c0 + tn), slice(r0, r0 + tm))
            if tile.scheme in _FACTORED:
                kernel = self._kernel(index, tile)
                if whole:
                    kernel.product(x32[src], transpose=transpose, precision=precision, out=out[dst])
                else:
                    out[dst] += kernel.product(x32[src], transpose=transpose, precision=precision)
            else:
                values = self._dense(index, tile)
                values = values.astype(ct) if values.dtype != ct else values
                out[dst] += (values.T if transpose else values) @ x[src].astype(ct, copy=False)
        return out

    def matvec(self, x, precision: str = "float32") -> np.ndarray:
        """y = A x for a vector x (or A X for a matrix X with one column per vector).

        ``precision="int16"`` or ``"int8"`` quantizes the input of each
        bit-plane factor to integer tables: faster, with the error bounds
        documented in ``lrq.h`` (about 4e-5 and 1e-2 relative for Gaussian x).
        """
        return self._product(x, transpose=False, precision=precision)

    def rmatvec(self, y) -> np.ndarray:
        """x = Aᵀ y."""
        return self._product(y, transpose=True)

    def matmat(self, x, precision: str = "float32") -> np.ndarray:
        """Y = A X for X of shape (n, k); column j equals ``matvec(X[:, j])`` bit for bit."""
        return self._product(x, transpose=False, precision=precision)

    def rmatmat(self, y) -> np.ndarray:
        """Aᵀ Y for Y of shape (m, k)."""
        return self._product(y, transpose=True)

    def aslinearoperator(self):
        """This matrix as a ``scipy.sparse.linalg.LinearOperator`` (needs scipy).

        ``scipy.sparse.linalg.aslinearoperator(M)`` works as well; this one
        also hands scipy the batched ``matmat``.
        """
        try:
            from scipy.sparse.linalg import LinearOperator
        except ImportError:
            raise ImportError("Matrix.aslinearoperator needs scipy (pip install scipy)") from None
        if self.ndim != 2:
            raise ArgumentError(f"a linear operator needs a 2-D matrix; this one has shape {self.shape}")
        return LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec, matmat=self.matmat,
                              rmatmat=self.rmatmat, dtype=self.dtype)

    def __matmul__(self, x):
        return self._product(x, transpose=False)

    def __rmatmul__(self, x):
        # x @ A = (Aᵀ xᵀ)ᵀ; the transposed view is passed by its strides, not copied.
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
