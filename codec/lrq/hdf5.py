"""lrq.hdf5: HDF5 datasets whose chunks are `.lrq` streams.

    import h5py, lrq.hdf5
    with h5py.File("data.h5", "w") as f:
        f.create_dataset("A", data=A, chunks=(256, 256), compression=lrq.hdf5.LRQ(bits=2))
        lrq.hdf5.write(f, "B", B, chunks=(256, 256), scheme="lplr", bits=2)
    with h5py.File("data.h5") as f:
        A2 = f["A"][:]          # decoded by the lrq filter plugin

Two ways to write: :class:`LRQ` has the filter plugin encode every chunk
HDF5 writes, in C (schemes signcut and dense, the bytes :func:`lrq.encode`
writes for the chunk); :func:`write` encodes chunks in Python, every scheme,
and stores them directly.

Every chunk of such a dataset is a complete `.lrq` stream of one tensor
(``lrq.loads`` reads it), and the dataset's filter pipeline names the lrq
filter (ID :data:`FILTER_ID`), whose plugin ships inside this package in a
folder of its own, :data:`PLUGIN_PATH`.  Importing this module registers
the plugin with h5py; other HDF5 programs find it through the environment:

    export HDF5_PLUGIN_PATH=$(python -c "import lrq.hdf5; print(lrq.hdf5.PLUGIN_PATH)")
    h5dump data.h5

What a chunk holds, the filter parameters (cd_values: the stored form and
the request form ``h5repack -f UD=335,...`` gives), what the filter encodes
and edge chunks are specified in ``spec/hdf5-filter.md``.
"""

from __future__ import annotations

import ctypes
import itertools
import pathlib
from typing import Optional

import numpy as np

from .errors import ArgumentError, FormatError

try:
    import h5py
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lrq.hdf5 needs h5py (pip install 'lrq[hdf5]')") from exc

from .chunks import (CHUNK_TENSOR_NAME, DEFAULT_CHUNK_EDGE, ChunkedMatrix, chunk_operand, encode_chunk,
                     request_options as _request_options, request_words)

#: The HDF5 filter ID of lrq (spec/hdf5-filter.md §1).
FILTER_ID = 335
#: The folder holding the filter plugin, for HDF5_PLUGIN_PATH.
PLUGIN_PATH = str(pathlib.Path(__file__).with_name("hdf5_plugin"))
PLUGIN_FILE = "libh5lrq.so"

# cd_values word 0 of the stored form: marker 0x6C72 ("lr") and layout 1.
CD_WORD0 = (0x6C72 << 16) | 1
# "encoded by" (spec [H5-6], [H5-7]): the writing application encodes
# chunks and stores them directly (write), or the filter does (LRQ).
ENCODED_BY_WRITER = 1
ENCODED_BY_FILTER = 0
_DTYPE_CODES = {"float64": 1, "float32": 2}

_plugin = None


def register() -> None:
    """Make the lrq filter available to h5py (done on import; idempotent)."""
    global _plugin
    if h5py.h5z.filter_avail(FILTER_ID):
        return
    library = pathlib.Path(PLUGIN_PATH, PLUGIN_FILE)
    if not library.is_file():
        raise ImportError(f"the lrq HDF5 filter plugin is missing from {PLUGIN_PATH}; reinstall lrq")
    _plugin = ctypes.CDLL(str(library))
    _plugin.H5PLget_plugin_info.restype = ctypes.c_void_p
    h5py.h5z.register_filter(_plugin.H5PLget_plugin_info())


# Schemes whose encoder runs in C, so the filter itself can encode them
# (spec/hdf5-filter.md [H5-8]); lplr and auto need lrq.hdf5.write.
C_SCHEMES = ("signcut", "dense")


def filter_parameters(dtype, chunks: tuple, scheme: str = "auto", *, bits=None, width=None,
                      rel_error=None, seed: int = 0, encoded_by: int = ENCODED_BY_WRITER, **options) -> tuple:
    """The stored cd_values of an lrq-filtered dataset (spec/hdf5-filter.md).

    Words: the marker and layout, the element type, the chunk's rank and
    dimensions, who encodes the chunks (:func:`write`: the writer; a
    dataset made with :class:`LRQ`: the filter, which writes this form
    itself from the request form), then the encoding request
    (:func:`request_words`).
    """
    dtype = np.dtype(dtype).name
    if dtype not in _DTYPE_CODES:
        raise ArgumentError(f"an lrq-filtered dataset holds float32 or float64, not {dtype}")
    unknown = set(options) - {"c_storage", "storage"}
    request = request_words(scheme, bits=bits, width=width, rel_error=rel_error, seed=seed,
                            **{k: v for k, v in options.items() if k not in unknown})
    return (CD_WORD0, _DTYPE_CODES[dtype], len(chunks), *(int(c) for c in chunks), encoded_by, *request)


def encoding_request(words) -> dict:
    """The encoding request in stored cd_values, as keyword arguments of
    :func:`write` (``scheme``, the target, ``seed``, the scheme option):
    the inverse of :func:`filter_parameters` (a float target comes back as
    its binary32 value).  Accepts a dataset too."""
    if isinstance(words, h5py.Dataset):
        words = words.id.get_create_plist().get_filter_by_id(FILTER_ID)[1]
    words = tuple(int(w) for w in words)
    if len(words) < 3 or words[0] != CD_WORD0 or len(words) != 3 + words[2] + 7:
        raise FormatError(f"not the stored lrq filter parameters of layout 1: {words}")
    return _request_options(words[4 + words[2]:])


def _default_chunks(shape: tuple) -> tuple:
    lead = (1,) * (len(shape) - 2)
    return lead + tuple(min(d, DEFAULT_CHUNK_EDGE) for d in shape[len(lead):])


def _check_chunks(chunks, shape: tuple) -> tuple:
    try:
        chunks = tuple(int(c) for c in chunks)
    except (TypeError, ValueError):
        raise ArgumentError(f"chunks must be a tuple of positive integers, not {chunks!r}") from None
    if len(chunks) != len(shape) or any(not 1 <= c <= d for c, d in zip(chunks, shape)):
        raise ArgumentError(f"chunks {chunks} do not fit a dataset of shape {shape} "
                            "(one positive size per dimension, none larger than the dataset's)")
    return chunks


def write(parent, name: str, data, *, chunks: Optional[tuple] = None, scheme: str = "auto",
          **encode_args) -> "h5py.Dataset":
    """Create dataset ``name`` in ``parent`` (an h5py File or Group) holding
    ``data`` compressed with lrq, chunk by chunk.

    data : array_like, float32 or float64, 2-D or more (1-D with scheme="dense")
        Read one chunk at a time, so an h5py dataset or a memory map works.
    chunks : tuple, optional
        The HDF5 chunk shape.  Chunks hold matrices: their last two sizes are
        the matrix, leading sizes are 1 (e.g. (1, r, c) for a stack of
        matrices); only scheme "dense" stores chunks of other shapes.
        Default: 256 x 256 matrices (smaller where the data is).
    scheme, **encode_args
        As for :func:`lrq.encode` (``bits=``, ``rel_error=``, ``width=``,
        ``seed=``, scheme options), applied to every chunk on its own: a
        ``rel_error=`` target holds for each chunk, and a ``bits=`` budget
        for each chunk's place, a full chunk's entries.  Edge chunks are
        encoded at their own size (the part inside the dataset) within the
        budget of a full chunk, so HDF5's padding costs nothing and the
        edge gets the bits a full chunk would have.

    Chunks are encoded here in Python and stored with
    ``write_direct_chunk``; reading goes through the filter.  The filter
    is optional in the pipeline and declines to encode the chunks of such a
    dataset (spec [H5-7]): a later write to the dataset through HDF5 stores
    its chunks unfiltered (and marked so), exactly as given.  To have the
    plugin encode chunks written through HDF5, create the dataset with
    :class:`LRQ` instead (signcut and dense).
    """
    array = data if hasattr(data, "shape") and hasattr(data, "dtype") else np.asarray(data)
    shape = tuple(int(d) for d in array.shape)
    if len(shape) < 1 or 0 in shape:
        raise ArgumentError(f"data of shape {shape} cannot be written (at least 1-D, no empty dimension)")
    chunks = _check_chunks(_default_chunks(shape) if chunks is None else chunks, shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_filter(FILTER_ID, h5py.h5z.FLAG_OPTIONAL,
                    filter_parameters(array.dtype, chunks, scheme, **encode_args))
    dataset = parent.create_dataset(name, shape=shape, dtype=array.dtype, dcpl=dcpl)
    grid = [range(0, d, c) for d, c in zip(shape, chunks)]
    try:
        for corner in itertools.product(*grid):
            region = tuple(slice(o, min(o + c, d)) for o, c, d in zip(corner, chunks, shape))
            stream = encode_chunk(np.asarray(array[region]), chunks, scheme=scheme, **encode_args)
            dataset.id.write_direct_chunk(corner, stream)
    except BaseException:
        # A chunk that cannot be encoded (or Ctrl-C) leaves no dataset with
        # missing chunks, which would read back as fill values.
        del parent[name]
        raise
    return dataset


class LRQ(h5py.filters.FilterRefBase):
    """The lrq filter for h5py, with chunks encoded in C by the plugin:

        f.create_dataset("A", data=A, chunks=(256, 256), compression=lrq.hdf5.LRQ(bits=2))
        f.create_dataset("B", data=B, chunks=(256, 256), **lrq.hdf5.LRQ(rel_error=0.1))

    Writing through h5py (``dset[...] = A``) then encodes every chunk in the
    plugin, with the bytes ``lrq.encode(chunk, scheme, ...)`` gives
    (spec/hdf5-filter.md [H5-8]); a ``rel_error=`` target and a ``bits=``
    budget hold for each chunk on its own.  The chunk is what HDF5 hands
    the filter: an edge chunk is padded to the full chunk shape with the
    fill value and encoded whole, unlike :func:`write`, which encodes the
    part inside the dataset.  A write to part of a chunk already stored
    has HDF5 decode the chunk, change it and hand it to the filter again:
    the rest of the chunk is encoded a second time (write whole chunks to
    keep one encoding's error).

    bits, rel_error, width : at most one; none gives 4 bits/entry
        As for :func:`lrq.encode`; ``width=`` is signcut's number of cuts.
        Float targets are stored, and applied, as binary32 values.
    scheme : "signcut" (default) or "dense"
        The schemes with a C encoder.  "lplr" and "auto" have none: they
        raise :class:`lrq.ArgumentError` here (use :func:`write`).
    seed : int
        The encoder's seed: equal chunks give equal bytes.
    c_storage : "float32" or "float16" (signcut); storage : a float type (dense)

    Chunks must be matrices, (r, c) or (1, ..., 1, r, c), for signcut, of
    up to 4096 x 4096; dense takes any chunk.  float32 and float64 datasets.
    HDF5 refuses the dataset's creation when the parameters cannot be
    honoured (the plugin's message names why: a budget no chunk of this
    shape can meet, a chunk the encoder does not take, ...), and a chunk
    the encoder cannot store (a NaN, a ``rel_error=`` signcut does not
    reach) is stored by HDF5 unfiltered, exactly as given, and marked so
    in its chunk index (h5py makes every plugin filter optional, and the
    plugin keeps that; spec/hdf5-filter.md [H5-10]): nothing is lost, and
    ``lrq info`` counts such chunks.
    :attr:`filter_options` holds the request form of the parameters; the
    plugin stores the full form (:func:`filter_parameters`), from which
    :meth:`from_dataset` recovers the options.
    """

    filter_id = FILTER_ID

    def __init__(self, *, bits=None, rel_error=None, width=None, scheme: str = "signcut", seed: int = 0,
                 c_storage=None, storage=None):
        if scheme not in C_SCHEMES:
            raise ArgumentError(f"the lrq filter encodes schemes {', '.join(C_SCHEMES)} in C; scheme {scheme!r} "
                                "has a Python encoder only: write such datasets with lrq.hdf5.write")
        self.filter_options = request_words(scheme, bits=bits, width=width, rel_error=rel_error, seed=seed,
                                            c_storage=c_storage, storage=storage)
        self.options = _request_options(self.filter_options)

    @classmethod
    def from_dataset(cls, dataset) -> "LRQ":
        """The filter of an lrq-filtered dataset, from its stored parameters
        (``LRQ.from_dataset(d) == LRQ(**the options d was made with)``, float
        targets as their binary32 values)."""
        if not isinstance(dataset, h5py.Dataset):
            raise ArgumentError(f"LRQ.from_dataset takes an h5py Dataset, not {type(dataset).__name__}")
        plist = dataset.id.get_create_plist()
        if not plist.all_filters_avail() or FILTER_ID not in [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]:
            raise ArgumentError(f"dataset '{dataset.name}' is not lrq-filtered")
        request = encoding_request(dataset)
        if request["scheme"] not in C_SCHEMES:
            raise ArgumentError(f"dataset '{dataset.name}' was written with scheme {request['scheme']!r}, which the "
                                "filter does not encode (lrq.hdf5.write wrote it)")
        return cls(**request)

    def __repr__(self) -> str:
        return "lrq.hdf5.LRQ(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"


class Matrix(ChunkedMatrix):
    """Products with an lrq-filtered 2-D dataset, computed on its chunks as
    stored: ``M @ x``, ``M @ X``, ``M.T @ y``.

    Each chunk's raw bytes (``read_direct_chunk``) are a `.lrq` stream; its
    factors multiply the vector in the C kernels, so no chunk is decoded
    to dense and memory stays at about one chunk's stream whatever the
    dataset's size.  A chunk that HDF5 stored unfiltered (one the filter
    refused, or written through HDF5 after :func:`write`) is dense already
    and multiplies as it is.
    Results equal ``dataset[:] @ x`` within the format's tolerance (spec
    §11); they are float32 for a float32 dataset and vectors, else float64.
    """

    def __init__(self, dataset):
        if not isinstance(dataset, h5py.Dataset):
            raise ArgumentError(f"lrq.hdf5.Matrix takes an h5py Dataset, not {type(dataset).__name__}")
        if dataset.ndim != 2 or dataset.chunks is None:
            raise ArgumentError(f"dataset '{dataset.name}' of shape {dataset.shape} is not a chunked matrix")
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        if filters != [FILTER_ID]:
            raise ArgumentError(f"dataset '{dataset.name}' is not lrq-filtered (its filters: {filters or 'none'})")
        self._dataset = dataset
        self.shape = tuple(int(d) for d in dataset.shape)
        self.dtype = dataset.dtype
        self.chunks = tuple(int(c) for c in dataset.chunks)

    def __repr__(self) -> str:
        return f"lrq.hdf5.Matrix({self._dataset.name!r}, shape={self.shape}, chunks={self.chunks})"

    def _chunk(self, corner: tuple):
        """(rows, cols, operand) of the chunk at ``corner``: the extent it
        covers inside the dataset and a matrix that multiplies."""
        mask, stream = self._dataset.id.read_direct_chunk(corner)
        extent = tuple(min(c, d - o) for c, d, o in zip(self.chunks, self.shape, corner))
        if mask:
            values = np.frombuffer(stream, self.dtype).reshape(self.chunks)
            return extent[0], extent[1], values[:extent[0], :extent[1]]
        return chunk_operand(stream, self.chunks, extent, self.dtype, f"dataset '{self._dataset.name}' chunk at {corner}")


register()
