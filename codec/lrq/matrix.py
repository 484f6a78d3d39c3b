"""``lrq.Matrix``: a compressed tensor you can multiply with and decode."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _native
from .errors import ArgumentError, FormatError, LrqError, ResourceError
from . import format as container

_FACTORED = ("signcut", "lplr", "quant")
_PRECISIONS = ("float32", "int16", "int8")


def _as_array(x) -> np.ndarray:
    if type(x) is np.ndarray:
        return x
    try:
        return np.asarray(x)
    except Exception as exc:
        raise ArgumentError(f"the operand is not an array: {exc}") from None


class _StoredSize:
    """``nbytes`` and ``bits_per_entry`` of what ``_serialize()`` writes
    (everything stored, headers included), for Matrix and Group."""

    @property
    def nbytes(self) -> int:
        if self._nbytes is None:
            self._nbytes = sum(len(memoryview(p).cast("B")) for p in self._serialize())
        return self._nbytes

    @property
    def bits_per_entry(self) -> float:
        return 8.0 * self.nbytes / self.size


class Matrix(_StoredSize):
    """A tensor stored in the `.lrq` format, usually a low-rank/1-bit matrix.

    Made by :func:`lrq.encode`, :func:`lrq.loads`, :func:`lrq.signcut_from_factors`
    or read from :func:`lrq.open`.  Nothing is decoded to dense unless you ask
    (``lrq.decode(M)`` or ``np.asarray(M)``): products ``M @ x``, ``M.T @ y``,
    ``x @ M`` and ``M @ X`` run on the factors, in the C core, straight from
    the section bytes (for a file from :func:`lrq.open`, from the mapping).

    Operands are any real numpy array (float16/32/64, integers, bool) in
    any memory layout -- copied to float32 only when the kernels cannot read
    it in place -- as a vector, a matrix of column vectors, or a stack
    ``(..., n, k)`` that broadcasts like numpy's matmul.  ``M.T`` is a view
    with the same interface (:class:`Transposed`).

    Signcut and lplr tiles are computed in float32 with the exact kernels:
    results are the same bits on every CPU path and thread count, and within
    1e-5 of the sum of the terms' magnitudes (spec [NUM-1]).  A batch so wide
    that decoding a tile and multiplying densely costs less (a choice from
    shapes alone, :func:`dense_is_cheaper`) takes that path; see
    :meth:`matmat`.  ``matvec`` and ``matmat`` accept ``precision="int16"``
    or ``"int8"`` for the faster paths that quantize the input vector (error
    bounds in ``lrq.h``).

    Pickling (and ``copy.deepcopy``) goes through the `.lrq` bytes, for
    matrices of :func:`lrq.open` too (see :meth:`__reduce__`), so matrices
    travel to process pools and distributed workers.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype — what ``decode`` returns (float32 for bfloat16 originals)
    scheme : str — "signcut", "lplr" or "dense", or "mixed" when tiles differ
    nbytes : int — size of the tensor written alone as a `.lrq` file
    bits_per_entry : float — ``8 * nbytes / size``: everything stored, headers included
    rel_error : float or None — ‖A − decode(M)‖_F / ‖A‖_F measured at encode time
    privacy : dict or None — the differential-privacy record of a private release
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
        return container.output_dtype(self._record.dtype)

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
        """Scheme parameters, e.g. ``{"width": 1024}``.

        For a tiled matrix, every parameter any tile has, mapped to its value
        when all tiles agree, else to a tuple of the tiles' values in grid
        order (None for a tile without it, as a dense tile of a mixed
        matrix has no "width").  :attr:`tiles` gives each tile's own.
        """
        tiles = self._record.tiles
        if len(tiles) == 1:
            return dict(tiles[0].params)
        names = list(dict.fromkeys(key for tile in tiles for key in tile.params))
        out = {}
        for key in names:
            values = tuple(tile.params.get(key) for tile in tiles)
            out[key] = values[0] if len(set(values)) == 1 else values
        return out

    @property
    def tiles(self) -> list:
        """(origin, shape, scheme, params) of every tile, in grid order."""
        return [(t.origin, t.shape, t.scheme, dict(t.params)) for t in self._record.tiles]

    @property
    def rel_error(self) -> Optional[float]:
        return self._record.rel_error

    @property
    def privacy(self) -> Optional[dict]:
        """The differential-privacy record of a private release (spec §10.6:
        mechanism, epsilon, delta, rank, clip, sensitivity, noise_scale,
        library), or None.  See :func:`lrq.private_covariance`."""
        return None if self._record.privacy is None else dict(self._record.privacy)


    @property
    def T(self) -> "Transposed":
        """The transpose as a view with the Matrix interface (see :class:`Transposed`)."""
        return Transposed(self)

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
        """The dense array (same as ``lrq.decode(M)``).

        Costs the output's size, the kernels' decode of each factorized
        tile, and Python work per tile: a few microseconds for each dense
        tile of a file's tensor (read straight from the C tile table), about
        ten times that for a factorized tile.  Since every tile takes at
        least about 120 bytes of file, even a file made of 1×1 tiles decodes
        at about 30 MB of file per second of that work (a 28 MB file of
        230 000 tiles: about 1 s).  Products with a mapped file's matrix
        read its dense tiles the same way, each call.

        Raises ResourceError when the memory for the array (or a tile's
        working copy) cannot be had.
        """
        try:
            return self._reading_source(self._decode)
        except MemoryError:
            nbytes = self.size * self.dtype.itemsize
            shape = "×".join(map(str, self.shape)) or "scalar"
            what = f"tensor '{self.name}'" if self.name is not None else "the tensor"
            raise ResourceError(f"{what}: not enough memory to decode it (its {shape} {self.dtype} "
                                f"output alone takes {nbytes:,} bytes) [LIM-8]") from None

    def _tile_values(self, from_table: bool):
        """(index, origin, shape, values) of every tile in grid order: a dense
        tile's stored values, None for a factorized one.

        With ``from_table``, a file's tensor reads its dense tiles straight
        from the C tile table, building no tile records (a few microseconds a
        tile, see :meth:`decode`); otherwise tile by tile from the records.
        """
        tiles = self._record.tiles
        if from_table and hasattr(tiles, "dense_values"):
            return tiles.dense_values(self._record.dtype)
        return ((index, tile.origin, tile.shape, None if tile.scheme in _FACTORED else self._dense_section(tile, self._record.dtype))
                for index, tile in enumerate(tiles))

    def _decode(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        for number, origin, shape, values in self._tile_values(from_table=True):
            index = tuple(slice(o, o + s) for o, s in zip(origin, shape))
            if values is not None:
                out[index] = values
                continue
            kernel = self._kernel(number, self._record.tiles[number])
            if out.dtype == np.float32:
                kernel.decode(out=out[index])
            else:
                out[index] = kernel.decode()
        return out

    # -------------------------------------------------------------- products
    def _kernel(self, index: int, tile) -> "_native.Tile":
        """The C handle of a signcut or lplr tile, made on first use.

        ``tile.section`` checks each section's CRC the first time it is read;
        the handle then checks the value rules (spec [SC-*], [LP-*]) and
        borrows the bytes.  A tile the C core rejects raises FormatError
        naming the rule and the section that break it.
        """
        kernel = self._tiles.get(index)
        if kernel is not None:
            return kernel
        panel = self._record.panel
        (m, n), p = tile.shape, tile.params
        crc = _native.crc32c
        kinds = container.SECTION_KINDS[tile.scheme]
        # Read first: a file's sections are checked here (CRC, content) with
        # messages that already name the tensor and the tile.
        sections = [tile.section(kind, crc) for kind in kinds]
        try:
            if tile.scheme == "signcut":
                kernel = _native.signcut_tile(m, n, p["width"], panel, *sections, c_scale=p.get("c_scale"))
            elif tile.scheme == "quant":
                kernel = _native.quant_tile(m, n, p, panel, *sections)
            else:
                kernel = _native.lplr_tile(m, n, p, panel, *sections)
        except FormatError as exc:
            # "[RULE] section 'x': ..." gains the tensor and the tile, as the
            # file reader words it ("[RULE] tensor 'W' tile #0 section 'x': ...").
            rule, _, rest = str(exc).partition(" ")
            where = (f"tensor '{self.name}' " if self.name is not None else "") + f"tile #{index}"
            raise type(exc)(f"{rule} {where} {rest}" if rule.startswith("[") else f"{where}: {exc}") from None
        self._tiles[index] = kernel
        return kernel

    @staticmethod
    def _dense_section(tile, dtype: str) -> np.ndarray:
        """A dense tile's values, read from its ``values`` section [DN-1]-[DN-4] and rounded to ``dtype`` [NUM-2]."""
        return container.dense_values(tile.section("values", _native.crc32c), tile.params["storage"], tile.shape,
                                      dtype=dtype)

    def _dense(self, index: int, tile):
        """A dense tile's values for products, from the cache of an in-memory matrix."""
        values = self._cache.get(index)
        if values is None:
            # A float64 matrix keeps float64 values: they do not survive float32.
            kept = np.float64 if self.dtype == np.float64 else np.float32
            values = self._cache[index] = self._dense_section(tile, self._record.dtype).astype(kept)
        return values

    # The one validation path of every product: M @ x, M.T @ y, x @ M,
    # matvec/rmatvec/matmat/rmatmat and the transposed view all come here.
    def _operand(self, x, rows: int) -> np.ndarray:
        """``x`` as an array after every check a product makes of its operand.

        Accepted: any real array (float16/32/64, integers, bool) of any
        memory layout, 1-D (a vector of ``rows`` elements), 2-D (``rows``
        rows, one column per vector) or a stack of such matrices
        (``x.shape[-2] == rows``, numpy's matmul broadcasting).  The values
        are not converted here: the kernel wrapper copies to float32 exactly
        when the kernels cannot read the array in place.
        """
        if self.ndim != 2:
            raise ArgumentError(f"products need a 2-D matrix; this one has shape {self.shape}")
        x = _as_array(x)
        what = "the vector" if x.ndim == 1 else "the matrix"
        kind = x.dtype.kind
        if kind not in "fiub":
            raise ArgumentError(f"{what} must hold real numbers, not {x.dtype}")
        if x.ndim == 0:
            raise ArgumentError("the operand is a scalar; products need a vector or a matrix")
        if x.ndim == 1 and x.shape[0] != rows:
            raise ArgumentError(f"the vector has {x.shape[0]} elements; it needs {rows}")
        if x.ndim == 2 and x.shape[0] != rows:
            raise ArgumentError(f"the matrix has shape {x.shape}; it needs {rows} rows")
        if x.ndim > 2 and x.shape[-2] != rows:
            raise ArgumentError(f"the stacked batch has shape {x.shape}: each matrix of the stack (the last "
                                f"two dimensions) needs {rows} rows, so shape[-2] must be {rows}")
        if kind == "f":
            # A float64 sum of float16/float32 values cannot overflow, so it
            # is finite exactly when every element is; wider floats are checked
            # element by element.
            finite = (math.isfinite(float(x.sum(dtype=np.float64))) if x.dtype.itemsize <= 4
                      else bool(np.isfinite(x).all()))
            if not finite:
                raise ArgumentError(f"{what} holds NaN or infinity")
        return x

    def _compute_dtype(self, x: np.ndarray) -> np.dtype:
        wide = (x.dtype.kind == "f" and x.dtype.itemsize > 4) or self.dtype == np.float64
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

    def _check_source(self) -> None:
        """For a matrix of :func:`lrq.open`: raise FormatError if its file was
        truncated while mapped (see ``lrq.File``)."""
        if self._owner is not None:
            self._owner._check_intact()

    def _reading_source(self, call, *args):
        """``call(*args)``, checked before and after for a truncated file.

        What a call computed from a truncated mapping (its lost pages read as
        zeros) is discarded; an error it raised on those zeros (a checksum
        that no longer matches) gives way to the truncation that caused it.
        """
        self._check_source()
        try:
            result = call(*args)
        except LrqError:
            self._check_source()
            raise
        self._check_source()
        return result

    def _product(self, x, transpose: bool, precision: str = "float32", dense_fallback: bool = True) -> np.ndarray:
        """op(A) @ x, op = transpose or identity, for x 1-D, 2-D or stacked."""
        return self._reading_source(self._product_unchecked, x, transpose, precision, dense_fallback)

    def _product_unchecked(self, x, transpose: bool, precision: str, dense_fallback: bool) -> np.ndarray:
        if precision not in _PRECISIONS:
            raise ArgumentError(f"precision must be one of {', '.join(_PRECISIONS)}, not {precision!r}")
        if transpose and precision != "float32":
            raise ArgumentError("the int16 / int8 fast paths compute M @ x only; transposed products are float32")
        m, n = self.shape if self.ndim == 2 else (0, 0)
        x = self._operand(x, m if transpose else n)
        if x.ndim <= 2:
            return self._apply(x, transpose, precision, dense_fallback)
        # A stack (..., rows, k): one batched product over all its columns.
        batch, k = x.shape[:-2], x.shape[-1]
        flat = np.moveaxis(x, -2, 0).reshape(x.shape[-2], -1)
        y = self._apply(flat, transpose, precision, dense_fallback)
        return np.ascontiguousarray(np.moveaxis(y.reshape((y.shape[0],) + batch + (k,)), 0, -2))

    def _left_product(self, x, transpose: bool) -> np.ndarray:
        """x @ op(A) as (op(A)ᵀ xᵀ)ᵀ; the transposed operand is passed by its strides."""
        x = _as_array(x)
        if x.ndim <= 1:
            return self._product(x, not transpose)
        rows = self.shape[1 if transpose else 0] if self.ndim == 2 else 0
        if self.ndim == 2 and x.shape[-1] != rows:
            raise ArgumentError(f"the {'matrix' if x.ndim == 2 else 'stacked batch'} has shape {x.shape}; "
                                f"x @ M needs {rows} columns (x.shape[-1] == {rows})")
        return np.swapaxes(self._product(np.swapaxes(x, -1, -2), not transpose), -1, -2)

    def _apply(self, x: np.ndarray, transpose: bool, precision: str, dense_fallback: bool) -> np.ndarray:
        """The product with a checked 1-D or 2-D operand, tile by tile."""
        ct = self._compute_dtype(x)
        nvec = 1 if x.ndim == 1 else x.shape[1]
        kernel = self._single_kernel() if ct == np.float32 else None
        if kernel is not None and not (dense_fallback and precision == "float32"
                                       and dense_is_cheaper(self._record.tiles[0], nvec, transpose)):
            return kernel.product(x, transpose=transpose, precision=precision)
        m, n = self.shape
        tiles = self._record.tiles
        x32 = None  # x for the kernels, made at the first factorized tile, once for all of them
        out_rows = n if transpose else m
        out = np.empty((out_rows,) + x.shape[1:], dtype=ct)
        # The first product into each output row writes it (no zeroed
        # buffer, no temporary to add); later ones add to it.
        written = _Written(out)
        fallback = _DecodedBlock(transpose, written) if dense_fallback and precision == "float32" else None
        # Values near the float32 limit may overflow to inf in numpy's dense
        # products and sums: that is the correctly rounded result, as on the
        # kernels, not a fault to warn about.
        with np.errstate(over="ignore"):
            # A mapped file's dense tiles come from the C tile table (no
            # records); an in-memory matrix's from its cache.
            for index, (r0, c0), (tm, tn), values in self._tile_values(from_table=self._cache is None):
                src, dst = (slice(r0, r0 + tm), slice(c0, c0 + tn)) if transpose else (slice(c0, c0 + tn), slice(r0, r0 + tm))
                if values is None:
                    tile = tiles[index]
                    kernel = self._kernel(index, tile)
                    if x32 is None:
                        x32 = _native.kernel_readable(x)  # converted only when the kernels cannot read x
                        if x.dtype.itemsize > 4 and not np.isfinite(x32).all():
                            raise ArgumentError("the operand holds values beyond the float32 range")
                    if fallback is not None and dense_is_cheaper(tile, nvec, transpose):
                        fallback.add(kernel, r0, c0, tm, tn, x32)
                        continue
                    if fallback is not None and fallback.pending:
                        fallback.flush(x32)
                    if ct == np.float32 and written.first(dst):
                        kernel.product(x32[src], transpose=transpose, precision=precision, out=out[dst])
                    else:
                        written.add(dst, kernel.product(x32[src], transpose=transpose, precision=precision))
                else:
                    if fallback is not None and fallback.pending:
                        fallback.flush(x32)
                    if self._cache is not None:
                        values = self._dense(index, tiles[index])
                    values = values.astype(ct) if values.dtype != ct else values
                    written.matmul(dst, values.T if transpose else values, x[src].astype(ct, copy=False))
            if fallback is not None:
                fallback.flush(x32)
        written.zero_rest()
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

    def matmat(self, x, precision: str = "float32", dense_fallback: bool = True) -> np.ndarray:
        """Y = A X for X of shape (n, k), or a stack (..., n, k) as numpy's matmul.

        On the kernels, column j equals ``matvec(X[:, j])`` bit for bit on
        every CPU path and thread count.  When X has so many columns that
        decoding a tile and multiplying it densely costs less (the cost
        model of :func:`dense_is_cheaper`, a choice from shapes alone), the
        tile is decoded (the same bits everywhere) and multiplied by numpy:
        then the result is within the same [NUM-1] bound but its last bits
        are numpy's (BLAS) and may differ between machines.  That path
        decodes adjacent tiles into one buffer of at most 2^21 float32
        entries (8 MiB; a larger tile alone, up to 64 MiB for the 4096 x
        4096 tiles ``lrq.encode`` makes by default) and multiplies the whole
        buffer at once.
        ``dense_fallback=False`` keeps the kernels for any k.
        """
        return self._product(x, transpose=False, precision=precision, dense_fallback=dense_fallback)

    def rmatmat(self, y, dense_fallback: bool = True) -> np.ndarray:
        """Aᵀ Y for Y of shape (m, k) or a stack (..., m, k); see :meth:`matmat`."""
        return self._product(y, transpose=True, dense_fallback=dense_fallback)

    def aslinearoperator(self):
        """This matrix as a ``scipy.sparse.linalg.LinearOperator`` (needs scipy).

        ``scipy.sparse.linalg.aslinearoperator(M)`` works as well; this one
        also hands scipy the batched ``matmat``.
        """
        return _linear_operator(self)

    def __matmul__(self, x):
        return self._product(x, transpose=False)

    def __rmatmul__(self, x):
        return self._left_product(x, transpose=False)

    # -------------------------------------------------------------- pickling
    def __reduce__(self):
        """Pickle (and ``copy.deepcopy``) as the bytes of a one-tensor `.lrq` file.

        The same for a matrix of :func:`lrq.open`: its sections are copied
        into the pickle (after their checksums are verified) and it comes
        back as an in-memory matrix.  Bytes rather than the file's path and
        the tensor's name, because a pickle must stand alone: a process pool
        or a Dask worker on another machine may not see the path, and the
        file may have been replaced or truncated by the time it is
        unpickled, which would give another matrix silently.  The cost is
        the compressed size, the size lrq exists to keep small; to share one
        mapping between processes, pass the path and name and call
        :func:`lrq.open` in each.
        """
        from .io import dumps

        return (_from_lrq_bytes, (dumps(self),))


# The cost model of the dense fallback of batched products: seconds per
# unit, the medians of three runs of ``python bench/matvec.py --cost-model``
# (which re-measures them on any host) on an Intel Xeon with AVX-512 and
# AMX, 2 cores, both threads, on a quiet machine (load average 0.3), after
# the kernels came to take 16 vectors at a time (wide batches; decode too):
# the absolute values scale with the load, the choice depends on their
# ratios, and a loaded machine slows NumPy's dense product most (the last
# constants, measured at load ~4, had the dense side 3x slower).  They are
# constants on purpose: the choice depends on shapes and parameters alone,
# never on timing at run time, so a product takes the same path (and gives
# the same bits) on every run.  Near the crossover both paths cost about
# the same, so an error of 2x in a constant costs little.
_KERNEL_FORWARD = 4.1e-12     # per sign-MAC per vector of M @ X on the kernels
_KERNEL_TRANSPOSED = 8.5e-12  # per sign-MAC per vector of M.T @ Y
_DECODE_ENTRY = 8.3e-10       # per entry of a decoded tile (allocation, first touch, stores)
_DECODE_MAC = 4.4e-12         # per sign-MAC of the decode's forward pass
_DENSE_MAC = 9.9e-12          # per multiply-add of numpy's float32 dense product, 64 columns
_BYTE_CODE_MACS = 10.0        # sign-MACs one byte-code (5-8 bit lplr) multiply-add costs
# Quant tiles: one factor, read row by row both ways, and a decode that
# reads the codes directly (between NumPy products).  Rounded
# between ``bench/matvec.py --cost-model`` (512 x 384 tiles, groups of 128:
# 9.6e-12, 5.4, 4.1e-10) and MiniLM's embedding table at 2 and 4 bits
# (groups of 512, k = 32 .. 512: 7.0-8.8e-12 per sign-MAC, 2.4-5.7e-10 per
# decoded entry) on the same host and threads as above.
_QUANT_KERNEL_MAC = 9.0e-12    # per sign-MAC per vector, M @ X and M.T @ Y alike
_QUANT_BYTE_CODE_MACS = 6.0    # sign-MACs one byte-code (5-8 bit) entry costs
_QUANT_DECODE_ENTRY = 5.0e-10  # per decoded entry


def _code_macs(bits: int, byte_code_macs: float) -> float:
    """Sign-MACs one entry of ``bits``-bit codes costs: a sign plane per bit
    up to 4 bits, a byte-code multiply-add (in sign-MACs) past that."""
    return bits if bits <= 4 else byte_code_macs


def _factor_macs(tile) -> tuple:
    """Sign-MACs of one vector through the first (m-side) and second (n-side)
    factor of a signcut or lplr tile."""
    (m, n), p = tile.shape, tile.params
    if tile.scheme == "signcut":
        return m * p["width"], n * p["width"]
    return (m * p["rank"] * _code_macs(p["bits_l"], _BYTE_CODE_MACS),
            n * p["rank"] * _code_macs(p["bits_r"], _BYTE_CODE_MACS))


def dense_is_cheaper(tile, nvec: int, transpose: bool) -> bool:
    """Whether decoding a factorized tile and multiplying densely beats the kernels.

    Kernels: ``nvec * (first + second factor's sign-MACs) * per-MAC cost``;
    dense: the decode (``m n`` entries, plus the forward pass of the first
    factor for each of the ``n`` columns; a quant tile's decode reads its
    codes, with no kernel pass) and ``nvec m n`` dense multiply-adds.  A
    single vector always stays on the kernels.
    """
    if nvec < 2:
        return False
    (m, n) = tile.shape
    if tile.scheme == "quant":
        kernels = nvec * m * n * _code_macs(tile.params["bits"], _QUANT_BYTE_CODE_MACS) * _QUANT_KERNEL_MAC
        dense = m * n * _QUANT_DECODE_ENTRY + nvec * m * n * _DENSE_MAC
        return dense < kernels
    first, second = _factor_macs(tile)
    kernels = nvec * (first + second) * (_KERNEL_TRANSPOSED if transpose else _KERNEL_FORWARD)
    dense = m * n * _DECODE_ENTRY + n * first * _DECODE_MAC + nvec * m * n * _DENSE_MAC
    return dense < kernels


# Entries of decoded tiles the dense fallback multiplies at once (8 MiB of
# float32; a larger tile goes alone).  Measured on MiniLM's embedding table
# (sixty 512 x 384 quant tiles, k = 64 and 512, AVX-512 Xeon, 2 threads):
# one NumPy product per tile reached 0.72-0.78x of NumPy on the dense table,
# 2^20-2^21 entries 0.85-0.92x, and 2^24 (the whole table in one fresh
# buffer, whose first touch costs a page fault per 4 KiB) 0.50-0.81x.
_FALLBACK_BLOCK_ENTRIES = 1 << 21


class _Written:
    """Which output rows of a tiled product hold a partial sum already."""

    def __init__(self, out: np.ndarray):
        self.out = out
        self.done = np.zeros(out.shape[0], bool)

    def first(self, rows: slice) -> bool:
        """Whether no product has written ``rows`` yet (they are marked now)."""
        # A ufunc reduction, not .any(): no Python-level call per tile.
        fresh = not np.logical_or.reduce(self.done[rows])
        self.done[rows] = True
        return fresh

    def add(self, rows: slice, part: np.ndarray) -> None:
        if self.first(rows):
            self.out[rows] = part
        else:
            self.out[rows] += part

    def matmul(self, rows: slice, a: np.ndarray, b: np.ndarray) -> None:
        """out[rows] (+)= a @ b, straight into ``out`` the first time."""
        if self.first(rows):
            np.matmul(a, b, out=self.out[rows])
        else:
            self.out[rows] += a @ b

    def zero_rest(self) -> None:
        """Rows no tile reached (an empty inner dimension) are zeros."""
        if not self.done.all():
            self.out[~self.done] = 0


class _DecodedBlock:
    """The dense fallback of a product: adjacent tiles decoded side by side
    into one reused buffer, then one NumPy product for the whole rectangle.

    Tiles come in grid order; a tile joins the pending rectangle when it
    extends it to a larger rectangle (the next tile of its tile row, or of
    its tile column) of at most ``_FALLBACK_BLOCK_ENTRIES`` entries (or one
    tile, if larger); anything else flushes it first.
    """

    def __init__(self, transpose: bool, written: _Written):
        self.transpose, self.written = transpose, written
        self.pending = []  # (kernel, r0, c0, tm, tn)
        self.rect = None   # (R0, C0, R1, C1) of the pending tiles, while there are any
        self.buffer = None

    def add(self, kernel, r0, c0, tm, tn, x32) -> None:
        if self.pending:
            R0, C0, R1, C1 = self.rect
            if r0 == R0 and r0 + tm == R1 and c0 == C1:
                grown = (R0, C0, R1, c0 + tn)
            elif c0 == C0 and c0 + tn == C1 and r0 == R1:
                grown = (R0, C0, r0 + tm, C1)
            else:
                grown = None
            if grown is None or (grown[2] - grown[0]) * (grown[3] - grown[1]) > _FALLBACK_BLOCK_ENTRIES:
                self.flush(x32)
            else:
                self.rect = grown
        if not self.pending:  # a new rectangle, or the flushed one's successor
            self.rect = (r0, c0, r0 + tm, c0 + tn)
        self.pending.append((kernel, r0, c0, tm, tn))

    def flush(self, x32) -> None:
        if not self.pending:
            return
        R0, C0, R1, C1 = self.rect
        size = (R1 - R0) * (C1 - C0)
        if self.buffer is None or self.buffer.size < size:
            self.buffer = None  # free the smaller one first
            self.buffer = np.empty(size, np.float32)
        block = self.buffer[:size].reshape(R1 - R0, C1 - C0)
        for kernel, r0, c0, tm, tn in self.pending:
            # lrq's threads, though OpenBLAS's may still spin after the last
            # block's product: on MiniLM's table (quant, 4 bits, k = 64 and
            # 512) that was 0.87-0.88x of NumPy dense against 0.78-0.85x for
            # a decode on the calling thread alone.
            kernel.decode(out=block[r0 - R0:r0 - R0 + tm, c0 - C0:c0 - C0 + tn])
        if self.transpose:
            self.written.matmul(slice(C0, C1), block.T, x32[R0:R1])
        else:
            self.written.matmul(slice(R0, R1), block, x32[C0:C1])
        self.pending.clear()


def _from_lrq_bytes(data: bytes) -> Matrix:
    from .io import loads

    return loads(data)


class Transposed:
    """``M.T``: the transpose of a :class:`Matrix`, nothing materialized.

    The interface of a 2-D Matrix: ``shape``, ``dtype``, ``ndim``, ``size``,
    ``@`` on both sides (stacked batches too), ``matvec``/``rmatvec``/
    ``matmat``/``rmatmat``, ``decode()`` (also ``lrq.decode(M.T)`` and
    ``np.asarray(M.T)``), ``aslinearoperator()``, pickling; ``.T`` gives
    the Matrix back.  Every product runs on the factors of M.
    """

    __slots__ = ("_base",)
    __array_priority__ = Matrix.__array_priority__

    def __init__(self, base: Matrix):
        if base.ndim != 2:
            raise ArgumentError(f"only a 2-D matrix has a transpose; this one has shape {base.shape}")
        self._base = base

    @property
    def shape(self) -> tuple:
        m, n = self._base.shape
        return (n, m)

    ndim = property(lambda self: 2)
    size = property(lambda self: self._base.size)
    dtype = property(lambda self: self._base.dtype)
    scheme = property(lambda self: self._base.scheme)

    @property
    def T(self) -> Matrix:
        return self._base

    def __repr__(self) -> str:
        return f"<transpose of {self._base!r}>"

    def __reduce__(self):
        return (Transposed, (self._base,))

    def decode(self) -> np.ndarray:
        """The dense transpose (a transposed view of ``M.decode()``)."""
        return self._base.decode().T

    def __array__(self, dtype=None, copy=None):
        out = self.decode()
        return out if dtype is None else out.astype(dtype, copy=False)

    def matvec(self, x) -> np.ndarray:
        return self._base.rmatvec(x)

    def rmatvec(self, y, precision: str = "float32") -> np.ndarray:
        return self._base.matvec(y, precision=precision)

    def matmat(self, x, dense_fallback: bool = True) -> np.ndarray:
        return self._base.rmatmat(x, dense_fallback=dense_fallback)

    def rmatmat(self, y, precision: str = "float32", dense_fallback: bool = True) -> np.ndarray:
        return self._base.matmat(y, precision=precision, dense_fallback=dense_fallback)

    def aslinearoperator(self):
        """See :meth:`Matrix.aslinearoperator`."""
        return _linear_operator(self)

    def __matmul__(self, x):
        return self._base._product(x, transpose=True)

    def __rmatmul__(self, x):
        return self._base._left_product(x, transpose=True)


def _linear_operator(op):
    try:
        from scipy.sparse.linalg import LinearOperator
    except ImportError:
        raise ImportError("aslinearoperator needs scipy (pip install scipy)") from None
    if op.ndim != 2:
        raise ArgumentError(f"a linear operator needs a 2-D matrix; this one has shape {op.shape}")
    return LinearOperator(op.shape, matvec=op.matvec, rmatvec=op.rmatvec, matmat=op.matmat,
                          rmatmat=op.rmatmat, dtype=op.dtype)
