"""lrq.dask: compressed matrices as Dask collections, and encoding on Dask workers.

    import lrq.dask
    A = lrq.dask.from_lrq("big.lrq")        # or from_zarr(zarray), from_hdf5("d.h5", "A")
    y = A @ x                               # a dask array; also A.T @ y, A @ X
    y.compute()                             # threads, or a dask.distributed cluster

    M = lrq.dask.encode(dask_array, "big.lrq", bits=2, tile_shape=(4096, 4096))

The blocks of a :class:`Matrix` are its compressed tiles (the tiles of a
`.lrq` tensor, or the chunks of an lrq Zarr array or HDF5 dataset, each an
``lrq.Matrix``): nothing is decoded.  A product is one task per tile, the
tile's factors times the operand's matching block (the partial product),
then Dask's tree reduction over the tiles of a block row -- as
``dask.array``'s own ``@`` does with dense blocks.  The graph is the same on
every scheduler, so a cluster's result is the same bits as the threaded
scheduler's.

:func:`encode` encodes the tiles on the workers and assembles the tensor
in the calling process: the bytes are those :func:`lrq.encode` writes for
the same matrix and tiles in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import Callable, NamedTuple, Optional

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lrq.dask needs dask (pip install 'lrq[dask]')") from exc

from . import encoder
from . import format as container
from ._native import crc32c
from .chunks import check_operand, partial_product, product_dtype
from .errors import ArgumentError, UnsupportedError
from .io import open as open_lrq, save
from .matrix import Matrix as LrqMatrix


class Tile(NamedTuple):
    """One block of a :class:`Matrix`: the block's extent in the matrix, the
    part the operand covers (``rows`` x ``cols``, at most the extent) and
    the operand (an ``lrq.Matrix``, a dense array, or None for zeros)."""

    extent: tuple
    rows: int
    cols: int
    operand: object


def _block(tile: Tile) -> np.ndarray:
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = tile
    return out


# ------------------------------------------------------------------ tile loaders (run on workers)

# Files a worker process has open, by path and identity (a replaced file is another key).
_OPEN_FILES: dict = {}
_OPEN_FILES_LOCK = threading.Lock()
_OPEN_FILES_MAX = 8


def _open_cached(path: str):
    stat = os.stat(path)
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _OPEN_FILES_LOCK:
        handle = _OPEN_FILES.get(key)
        if handle is None:
            if len(_OPEN_FILES) >= _OPEN_FILES_MAX:
                _OPEN_FILES.pop(next(iter(_OPEN_FILES))).close()
            handle = _OPEN_FILES[key] = open_lrq(path)
        return handle


def tile_matrix(matrix: LrqMatrix, index: int) -> LrqMatrix:
    """Tile ``index`` of a tensor as a one-tile ``lrq.Matrix`` of its own, its
    sections copied (checksums verified) so it outlives the file."""
    record = matrix._record
    tile = record.tiles[index]
    sections = {kind: container.make_section(kind, bytes(tile.section(kind, crc32c)), crc32c) for kind in tile.sections}
    one = container.TileRecord((0, 0), tuple(tile.shape), tile.scheme, dict(tile.params), sections)
    return LrqMatrix(container.TensorRecord(record.name, tuple(tile.shape), record.dtype, tuple(tile.shape),
                                            record.panel, [one]))


def _lrq_tile(path: str, tensor: str, index: int) -> np.ndarray:
    matrix = _open_cached(path)[tensor]
    shape = tuple(matrix._record.tiles[index].shape)
    return _block(Tile(shape, shape[0], shape[1], tile_matrix(matrix, index)))


def _zarr_tile(zarray, corner: tuple, extent: tuple) -> np.ndarray:
    from .zarr import chunk_source

    found = chunk_source(zarray, corner)
    return _block(Tile(extent, 0, 0, None) if found is None else Tile(extent, *found))


def _hdf5_tile(path: str, dataset: str, corner: tuple, extent: tuple) -> np.ndarray:
    import h5py

    from .hdf5 import Matrix as Hdf5Matrix

    with h5py.File(path, "r") as f:
        return _block(Tile(extent, *Hdf5Matrix(f[dataset])._chunk(corner)))


# ------------------------------------------------------------------ products (run on workers)


def _partial(block: np.ndarray, x_block: np.ndarray, transpose: bool, dtype) -> np.ndarray:
    """One tile's partial product, shaped (outer, 1[, k]) for the reduction over tiles."""
    tile = block[0, 0]
    outer = tile.extent[1] if transpose else tile.extent[0]
    out = np.zeros((outer, 1) + x_block.shape[1:], dtype)
    if tile.operand is not None:
        inner = tile.rows if transpose else tile.cols
        part = partial_product(tile.operand, tile.rows, tile.cols, x_block[:inner].astype(dtype, copy=False), transpose)
        out[:part.shape[0], 0] = part
    return out


def _decode_block(block: np.ndarray, dtype) -> np.ndarray:
    tile = block[0, 0]
    out = np.zeros(tile.extent, dtype)
    if tile.operand is not None:
        values = np.asarray(tile.operand)
        out[:tile.rows, :tile.cols] = values[:tile.rows, :tile.cols]
    return out


# ------------------------------------------------------------------ the collection


class Matrix:
    """A matrix as a grid of compressed tiles, each a Dask block.

    Made by :func:`from_lrq`, :func:`from_zarr` or :func:`from_hdf5`.  Lazy:
    a tile is read when a computation needs it (:meth:`persist` keeps the
    compressed tiles in the workers' memory).  ``A @ x``, ``A @ X`` and
    ``A.T @ y`` take numpy or dask operands and return dask arrays chunked
    like the tiles (x is rechunked to match them); results are float32 for
    a float32 matrix and operand, else float64, within the format's
    tolerance of the dense product (spec §11).

    Attributes: ``shape``, ``dtype``, ``chunks`` (the tile rows' and
    columns' sizes), ``tiles`` (the dask array of tiles: one object per
    block).
    """

    def __init__(self, tiles: "da.Array", chunks: tuple, dtype):
        self.tiles = tiles
        self.chunks = (tuple(chunks[0]), tuple(chunks[1]))
        self.shape = (sum(self.chunks[0]), sum(self.chunks[1]))
        self.dtype = np.dtype(dtype)

    @property
    def T(self) -> "_Transposed":
        return _Transposed(self)

    @property
    def numblocks(self) -> tuple:
        return (len(self.chunks[0]), len(self.chunks[1]))

    def __matmul__(self, x) -> "da.Array":
        return self._product(x, transpose=False)

    def __repr__(self) -> str:
        return (f"lrq.dask.Matrix(shape={self.shape}, dtype={self.dtype}, "
                f"tiles={self.numblocks[0]}x{self.numblocks[1]})")

    def persist(self, **kwargs) -> "Matrix":
        """The same matrix with its compressed tiles read once and kept (``dask.persist``)."""
        (tiles,) = dask.persist(self.tiles, **kwargs)
        return Matrix(tiles, self.chunks, self.dtype)

    def decode(self) -> "da.Array":
        """The dense matrix as a dask array, one decoded block per tile (for
        comparison and export; products never need it)."""
        name = "lrq-decode-" + tokenize(self.tiles.name)
        layer = {(name, i, j): (_decode_block, (self.tiles.name, i, j), self.dtype)
                 for i in range(self.numblocks[0]) for j in range(self.numblocks[1])}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[self.tiles])
        return da.Array(graph, name, self.chunks, dtype=self.dtype, meta=np.empty((0, 0), self.dtype))

    def _product(self, x, transpose: bool) -> "da.Array":
        if not isinstance(x, da.Array):
            x = check_operand(x, self.shape, transpose, self.dtype)
            x = da.from_array(x, chunks=(self.chunks[0] if transpose else self.chunks[1],) + x.shape[1:])
        if x.ndim not in (1, 2) or x.dtype.kind not in "fiu":
            raise ArgumentError(f"the operand must be a real vector or matrix, not {x.dtype} of shape {x.shape}")
        inner = self.shape[0] if transpose else self.shape[1]
        if x.shape[0] != inner:
            raise ArgumentError(f"shapes {self.shape[::-1] if transpose else self.shape} and {x.shape} do not multiply")
        dtype = product_dtype(self.dtype, np.empty(0, x.dtype))
        inner_chunks, outer_chunks = (self.chunks[0], self.chunks[1]) if transpose else (self.chunks[1], self.chunks[0])
        x = x.rechunk((inner_chunks,) + x.chunks[1:])
        name = "lrq-partial-" + tokenize(self.tiles.name, x.name, transpose, dtype)
        rows, cols = self.numblocks
        layer = {}
        for i in range(rows):
            for j in range(cols):
                out, red, inner_block = (j, i, i) if transpose else (i, j, j)
                if x.ndim == 1:
                    layer[(name, out, red)] = (_partial, (self.tiles.name, i, j), (x.name, inner_block), transpose, dtype)
                else:
                    for k in range(len(x.chunks[1])):
                        layer[(name, out, red, k)] = (_partial, (self.tiles.name, i, j), (x.name, inner_block, k),
                                                      transpose, dtype)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[self.tiles, x])
        chunks = (outer_chunks, (1,) * (rows if transpose else cols)) + x.chunks[1:]
        partials = da.Array(graph, name, chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))
        return partials.sum(axis=1, dtype=dtype)


class _Transposed:
    """``A.T`` of a :class:`Matrix`: ``A.T @ y``."""

    def __init__(self, matrix: Matrix):
        self._matrix = matrix
        self.shape = matrix.shape[::-1]

    def __matmul__(self, y) -> "da.Array":
        return self._matrix._product(y, transpose=True)


def _tiles_array(prefix: str, token: str, loads: dict, chunks: tuple) -> "da.Array":
    name = f"{prefix}-{token}"
    layer = {(name, i, j): task for (i, j), task in loads.items()}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    return da.Array(graph, name, ((1,) * len(chunks[0]), (1,) * len(chunks[1])), dtype=object,
                    meta=np.empty((0, 0), object))


def _grid_chunks(shape: tuple, chunks: tuple) -> tuple:
    return tuple(tuple(min(c, d - o) for o in range(0, d, c)) for d, c in zip(shape, chunks))


def from_lrq(path, name: Optional[str] = None) -> Matrix:
    """The tensor ``name`` of a `.lrq` file (the only one when None) as a
    :class:`Matrix` whose blocks are its tiles.  Each worker maps the file
    (the path must be readable there) and copies out the tiles it needs."""
    path = os.path.abspath(os.fspath(path))
    with open_lrq(path) as f:
        names = list(f)
        if name is None:
            if len(names) != 1:
                raise ArgumentError(f"{path} holds {len(names)} tensors ({', '.join(names[:5])}); pass name=")
            name = names[0]
        if name not in f:
            raise ArgumentError(f"{path} has no tensor {name!r} (it has {', '.join(names[:5])})")
        matrix = f[name]
        if matrix.ndim != 2:
            raise ArgumentError(f"tensor {name!r} of {path} has shape {matrix.shape}, not a matrix")
        record = matrix._record
        shape, dtype = tuple(record.shape), matrix.dtype
        chunks = _grid_chunks(shape, tuple(record.tile_shape))
        stat = os.stat(path)
    columns = len(chunks[1])
    loads = {(k // columns, k % columns): (_lrq_tile, path, name, k) for k in range(len(chunks[0]) * columns)}
    token = tokenize(path, name, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return Matrix(_tiles_array("lrq-tiles", token, loads, chunks), chunks, dtype)


def from_zarr(array, component: Optional[str] = None) -> Matrix:
    """A 2-D Zarr array stored by the lrq codec (a ``zarr.Array``, or a store
    / path with ``component``) as a :class:`Matrix` whose blocks are its
    chunks, read as raw stream bytes (spec/zarr-codec.md)."""
    import zarr

    from .zarr import Matrix as ZarrMatrix

    if not isinstance(array, zarr.Array):
        array = zarr.open_array(array, path=component, mode="r")
    ZarrMatrix(array)  # checks the chunk layout
    shape, size = tuple(int(d) for d in array.shape), tuple(int(c) for c in array.chunks)
    chunks = _grid_chunks(shape, size)
    loads = {(i, j): (_zarr_tile, array, (i * size[0], j * size[1]), (chunks[0][i], chunks[1][j]))
             for i in range(len(chunks[0])) for j in range(len(chunks[1]))}
    token = tokenize(str(array.store_path), shape, size)
    return Matrix(_tiles_array("lrq-zarr-tiles", token, loads, chunks), chunks, array.dtype)


def from_hdf5(path, dataset: str) -> Matrix:
    """An lrq-filtered 2-D HDF5 dataset as a :class:`Matrix` whose blocks are
    its chunks, read with ``read_direct_chunk`` in each task (every task
    opens the file read-only: HDF5 handles do not travel between processes)."""
    import h5py

    from .hdf5 import Matrix as Hdf5Matrix

    path = os.path.abspath(os.fspath(path))
    with h5py.File(path, "r") as f:
        if dataset not in f:
            raise ArgumentError(f"{path} has no dataset {dataset!r}")
        checked = Hdf5Matrix(f[dataset])
        shape, size, dtype = checked.shape, checked.chunks, checked.dtype
    stat = os.stat(path)
    chunks = _grid_chunks(shape, size)
    loads = {(i, j): (_hdf5_tile, path, dataset, (i * size[0], j * size[1]), (chunks[0][i], chunks[1][j]))
             for i in range(len(chunks[0])) for j in range(len(chunks[1]))}
    token = tokenize(path, dataset, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return Matrix(_tiles_array("lrq-hdf5-tiles", token, loads, chunks), chunks, dtype)


# ------------------------------------------------------------------ distributed encoding


def _encode_tile(request, plan, index: int, block, beats=None) -> tuple:
    """Tile ``index``'s (record, error), on a worker: as ``lrq.encode`` does
    with several tiles (one C thread and BLAS on one thread per tile), so
    the bytes are the same.  ``beats``: encoder.band_beats_of's result when
    quant runs in row bands."""
    if beats is not None:
        request = dataclasses.replace(request, band_beats=beats)
    with encoder._blas_on_one_thread():
        return encoder._encode_tile(request, plan, index, lambda fraction, message: None,
                                    encoder._Run(threads=1), block=np.asarray(block))


def _band_square_sum(pieces: list, exponent: int) -> float:
    """One band of rows of :func:`lrq.encoder._norm`, put together from the
    blocks it crosses: (block row, first row, end row, that row's blocks)."""
    band = np.concatenate([np.concatenate([block[lo:hi] for block in blocks], axis=1)
                           for _, lo, hi, blocks in pieces], axis=0)
    return encoder.band_square_sum(band, exponent)


def _summary_of(array: "da.Array", compute: Callable) -> encoder.ArraySummary:
    """The checks :func:`lrq.encode` makes of its input, made with one pass
    over the dask array on the workers."""
    dtype = np.dtype(array.dtype)
    if dtype.kind != "f" or dtype.name not in ("float16", "float32", "float64"):
        raise ArgumentError(f"input must be a floating-point array (float16/32/64), not {dtype}")
    if array.ndim != 2:
        raise ArgumentError(f"input is {array.ndim}-D with shape {array.shape}; lrq.dask.encode needs a 2-D array")
    if array.size == 0:
        raise ArgumentError(f"input is empty (shape {array.shape})")
    high, low, bad = compute(array.max(), array.min(), (~da.isfinite(array)).sum())
    if int(bad):
        raise ArgumentError(f"input holds {int(bad)} NaN or infinite values")
    return encoder.ArraySummary(tuple(int(d) for d in array.shape), dtype.name, max(float(high), -float(low)))


@contextlib.contextmanager
def _client(client):
    """The dask.distributed client to use: ``client``, a client connected
    to an address (closed afterwards), the default client if one exists,
    else None (Dask's local scheduler)."""
    if client is not None and not isinstance(client, str):
        yield client
        return
    try:
        import distributed
    except ModuleNotFoundError:
        if client is not None:
            raise UnsupportedError("a scheduler address needs dask.distributed (pip install 'lrq[dask]')") from None
        yield None
        return
    if isinstance(client, str):
        with distributed.Client(client) as connected:
            yield connected
        return
    try:
        found = distributed.default_client()
    except ValueError:
        found = None
    yield found


def _run_tasks(tasks: list, counted: int, client, progress, message: str = "tile {}/{} encoded") -> list:
    """The results of ``tasks`` (delayed), the first ``counted`` reported to
    ``progress`` as they finish; nothing keeps running after an error."""
    done = [0]

    def finished():
        done[0] += 1
        encoder._report(progress, done[0] / (counted + 1), message.format(done[0], counted))

    if client is not None:
        import distributed

        futures = client.compute(tasks)
        try:
            for future in distributed.as_completed(futures[:counted]):
                future.result()  # a tile's error is raised here, as itself
                finished()
            return client.gather(futures)
        finally:
            client.cancel(futures)
    from dask.callbacks import Callback

    keys = {task.key for task in tasks[:counted]}

    def posttask(key, result, dsk, state, worker_id):
        if key in keys:
            finished()

    with Callback(posttask=posttask):
        return list(dask.compute(*tasks))


def encode(array, path=None, scheme: str = "auto", *, bits=None, width=None, rel_error=None, seed: int = 0,
           tile_shape: Optional[tuple] = None, panel: int = container.DEFAULT_PANEL, name: Optional[str] = None,
           source_dtype: Optional[str] = None, progress: Optional[Callable[[float, str], None]] = None,
           client=None, **options) -> LrqMatrix:
    """Encode a 2-D array (a dask array, or anything ``dask.array.asarray``
    takes) with its tiles encoded on Dask workers; write it to ``path``
    (a `.lrq` file) when given.  Returns the ``lrq.Matrix``.

    Parameters are those of :func:`lrq.encode`, and the result is the
    matrix it returns for the same values, parameters and ``tile_shape``:
    ``lrq.dumps`` gives the same bytes (the tiles, their share of a
    ``bits=`` budget, the normalisation by the whole matrix's largest
    magnitude and the error's sums are computed as :func:`lrq.encode`
    computes them).  The array is read twice: once for its largest
    magnitude and its checks (finite floats), once to encode the tiles and
    sum its norm.

    client : a ``distributed.Client``, a scheduler address, or None for the
        default client if one exists, else Dask's local scheduler.
    progress : callable(fraction, message), optional
        Called from the calling thread as each tile finishes.

    A worker lost while it encodes a tile has its tile encoded again by
    Dask (tiles are pure functions of their values and the request); the
    file is written atomically once every tile is back, so an error or an
    interrupt leaves no file, and never a partial one.
    """
    with _client(client) as connected:
        return _encode(array, path, scheme, bits, width, rel_error, seed, tile_shape, panel, name, source_dtype,
                       progress, connected, options)


def _encode(array, path, scheme, bits, width, rel_error, seed, tile_shape, panel, name, source_dtype, progress,
            client, options) -> LrqMatrix:
    compute = (lambda *values: client.compute(list(values), sync=True)) if client is not None else dask.compute
    if not isinstance(array, da.Array):
        array = da.asarray(array)
    summary = _summary_of(array, compute)
    request = encoder._validate_request(None, scheme, bits, width, rel_error, seed, tile_shape, panel, progress, name,
                                        source_dtype, 1, options, summary=summary)
    banded = None
    if encoder.bands_apply(request, tile_shape):  # as lrq.encode: quant in row bands, left out of auto's tiles
        banded = encoder.band_request(request)
        request = dataclasses.replace(request, quant_in_bands=True)
    plan = encoder._plan(request)
    # The workers get the request without the array; each task its tile.
    request = dataclasses.replace(request, a=None)
    # One graph over the array's own blocks, rechunked to the tiles: every
    # tile and every norm band reads the blocks it needs by key, so each
    # block is computed once.  (Slices of the array handed to dask.delayed
    # would be optimized one by one, each with its own fused copy of the
    # blocks' tasks: a band of rows would recompute its blocks.)
    rows, cols = _grid_chunks(request.shape, request.tile_shape)
    source = array
    array = array.rechunk((rows, cols))
    token = tokenize(array.name, request, plan, banded)
    name = f"lrq-encode-{token}"
    layer = {}
    dependencies = [array]
    beats = None
    if banded is not None:  # quant in row bands (encoder.band_hull): one task per band, allocated here
        banded = dataclasses.replace(banded, a=None)
        band_rows, band_cols = _grid_chunks(banded.shape, banded.tile_shape)
        band_array = source.rechunk((band_rows, band_cols))
        dependencies.append(band_array)
        for k in range(len(band_rows) * len(band_cols)):
            layer[(name, "hull", k)] = (encoder.band_hull, banded, k,
                                        (band_array.name, k // len(band_cols), k % len(band_cols)))
        # What each of auto's tiles must beat, from the allocation of all the bands (as lrq.encode).
        beats = (name, "beats")
        layer[beats] = (encoder.band_beats_of, request, [(name, "hull", k) for k in range(len(band_rows) * len(band_cols))])
    for k in range(len(plan.grid)):
        layer[(name, "tile", k)] = (_encode_tile, request, plan, k, (array.name, k // len(cols), k % len(cols)), beats)
    step = encoder.norm_band_rows(request.shape)
    starts = np.cumsum((0,) + rows)
    for r in range(0, request.shape[0], step):
        # Lists, not tuples: Dask puts the blocks in place of their keys in lists.
        pieces = [[i, int(max(r, starts[i]) - starts[i]), int(min(r + step, starts[i + 1]) - starts[i]),
                   [(array.name, i, j) for j in range(len(cols))]]
                  for i in range(len(rows)) if starts[i] < r + step and starts[i + 1] > r]
        layer[(name, "band", r)] = (_band_square_sum, pieces, request.exponent)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    tiles = [Delayed((name, "tile", k), graph, layer=name) for k in range(len(plan.grid))]
    hulls = [Delayed(key, graph, layer=name) for key in layer if key[1] == "hull"]
    bands = [Delayed((name, "band", r), graph, layer=name) for r in range(0, request.shape[0], step)]
    results = _run_tasks(tiles + hulls + bands, len(tiles) + len(hulls), client, progress)
    norm = encoder.norm_from_bands(results[len(tiles) + len(hulls):])
    tile_results = results[:len(tiles)]
    chosen = None
    if banded is not None:  # as lrq.encode chooses: the bands for quant, the better of the two for auto
        chosen = encoder.band_assemble(banded, results[len(tiles):len(tiles) + len(hulls)], norm)
    if chosen is not None and scheme == "quant":
        matrix = chosen[0]
    else:
        matrix = encoder.choose_bands(chosen, tile_results, lambda: encoder.assemble(request, plan, tile_results, norm))
    if path is not None:
        save(path, {matrix.name: matrix})
    encoder._report(progress, 1.0, "done")
    return matrix


def _store_chunk(zarray, block: np.ndarray, corner: tuple) -> int:
    zarray[tuple(slice(o, o + s) for o, s in zip(corner, block.shape))] = block
    return 1


def to_zarr(array, store, *, chunks: Optional[tuple] = None, component: Optional[str] = None, client=None,
            progress: Optional[Callable[[float, str], None]] = None, **codec_options):
    """Write a 2-D array to a new Zarr v3 array stored by the lrq codec
    (``lrq.zarr.LRQ(**codec_options)``, Zarr's default zstd after it), each
    chunk encoded by the codec in a task of its own on the Dask workers: the
    chunk bytes are those the codec writes in one process.  ``chunks`` is
    the Zarr chunk shape (default: the dask array's first block shape).
    Returns the ``zarr.Array``; on an error the array is deleted from the
    store, so no array with missing chunks (which read as zeros) is left."""
    import zarr

    from .zarr import LRQ

    codec = LRQ(**codec_options)
    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim != 2:
        raise ArgumentError(f"lrq.dask.to_zarr writes a 2-D array, not shape {array.shape}")
    chunks = tuple(int(c) for c in chunks) if chunks is not None else tuple(c[0] for c in array.chunks)
    target = zarr.create_array(store, name=component, shape=array.shape, chunks=chunks, dtype=array.dtype,
                               serializer=codec, fill_value=0)
    tasks = []
    for r0 in range(0, array.shape[0], chunks[0]):
        for c0 in range(0, array.shape[1], chunks[1]):
            block = array[r0:r0 + chunks[0], c0:c0 + chunks[1]]
            tasks.append(dask.delayed(_store_chunk, pure=True)(target, block, (r0, c0)))
    try:
        with _client(client) as connected:
            _run_tasks(tasks, len(tasks), connected, progress, "chunk {} of {} written")
    except BaseException:
        from zarr.core.sync import sync

        sync(target.store_path.delete_dir())
        raise
    encoder._report(progress, 1.0, "done")
    return target
