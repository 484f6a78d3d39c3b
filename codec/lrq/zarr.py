"""lrq.zarr: Zarr arrays whose chunks are `.lrq` streams.

    import zarr, lrq.zarr
    z = zarr.create_array("data.zarr", shape=A.shape, chunks=(256, 256), dtype="float32",
                          serializer=lrq.zarr.LRQ(bits=2))
    z[:] = A
    y = lrq.zarr.Matrix(z) @ x            # products on the stored chunks, none decoded

    # another process, which never imports lrq: the "lrq" entry point loads it
    A2 = zarr.open_array("data.zarr")[:]

Two codecs, one chunk form (spec/zarr-codec.md):

- :class:`LRQ`, a Zarr v3 array-to-bytes codec named ``"lrq"`` (entry
  point group ``zarr.codecs``): the ``serializer=`` of a Zarr v3 array.
- :class:`Numcodec`, a numcodecs codec with ``codec_id="lrq"`` (entry point
  group ``numcodecs.codecs``): ``compressors=`` of a Zarr v2 array, or any
  numcodecs user.

Every chunk is a complete `.lrq` stream of one tensor (``lrq.loads`` reads
it), encoded from the chunk Zarr hands the codec -- edge chunks padded with
the array's fill value, as HDF5's filter does (spec/hdf5-filter.md §5) --
with the chunk logic the HDF5 door uses (:mod:`lrq.chunks`).
"""

from __future__ import annotations

import asyncio
from typing import Optional

import numpy as np

try:
    import numcodecs.abc
    import zarr
    from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lrq.zarr needs zarr and numcodecs (pip install 'lrq[zarr]')") from exc

from .chunks import CHUNK_DTYPES, ChunkedMatrix, chunk_operand, decode_chunk, encode_chunk, normalized_request
from .errors import ArgumentError, FormatError, UnsupportedError

#: The codec's name in Zarr v3 metadata and its numcodecs codec_id.
CODEC_NAME = "lrq"
#: The version of the configuration's layout (spec/zarr-codec.md §3).
CONFIGURATION_VERSION = 1
# The configuration's keys besides "version", in the order they are written.
_KEYS = ("scheme", "bits", "width", "rel_error", "seed", "c_storage", "storage")


def _configuration(scheme: str, bits, width, rel_error, seed, c_storage, storage) -> dict:
    """The encoding request checked and in its stored form (spec/zarr-codec.md §3):
    what the HDF5 door stores in its filter parameters, as JSON."""
    request = normalized_request(scheme=scheme, bits=bits, width=width, rel_error=rel_error, seed=seed,
                                 c_storage=c_storage, storage=storage)
    return {key: request[key] for key in _KEYS if key in request}


def _parse_configuration(data: dict, where: str) -> tuple:
    """(encoding options, unknown keys) of a stored configuration [ZC-4]."""
    if not isinstance(data, dict):
        raise FormatError(f"{where}: the lrq codec's configuration must be a JSON object, not {data!r}")
    version = data.get("version", CONFIGURATION_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(f"{where}: the lrq codec's configuration version must be a positive integer, not {version!r}")
    if version > CONFIGURATION_VERSION:
        raise UnsupportedError(f"{where}: the lrq codec's configuration version {version} is newer than this "
                               f"lrq's ({CONFIGURATION_VERSION}); upgrade lrq [ZC-4]")
    options = {key: data[key] for key in _KEYS if key in data}
    unknown = tuple(sorted(set(data) - set(_KEYS) - {"version", "id"}))
    return options, unknown


class _Options:
    """The encoding options both codecs share, and their use on one chunk."""

    def _set_options(self, scheme="signcut", *, bits=None, width=None, rel_error=None, seed=0, c_storage=None,
                     storage=None, unknown=()):
        options = _configuration(scheme, bits, width, rel_error, seed, c_storage, storage)
        # Keys a newer lrq wrote: they never change decoding [ZC-4], but this
        # version cannot honour them when encoding.
        object.__setattr__(self, "_unknown", tuple(unknown))
        object.__setattr__(self, "options", options)

    def _encode_chunk(self, values: np.ndarray) -> bytes:
        if self._unknown:
            raise UnsupportedError(f"the lrq codec's configuration has keys this lrq does not know "
                                   f"({', '.join(self._unknown)}): it reads such arrays but cannot write them [ZC-4]")
        if values.dtype.name not in CHUNK_DTYPES:
            raise ArgumentError(f"the lrq codec stores float32 or float64 chunks, not {values.dtype}")
        return encode_chunk(values, values.shape, **self.options)

    def _configuration_dict(self) -> dict:
        return {"version": CONFIGURATION_VERSION, **self.options}

    def _describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class LRQ(_Options, ArrayBytesCodec):
    """The lrq codec for Zarr v3 arrays (``serializer=``): every chunk is
    encoded with :func:`lrq.encode` and stored as a `.lrq` stream.

        zarr.create_array(store, shape=(4096, 4096), chunks=(512, 512), dtype="float32",
                          serializer=lrq.zarr.LRQ(bits=2))

    scheme : "signcut" (default), "lplr", "dense" or "auto"
    bits, rel_error, width : at most one; none gives 4 bits/entry
        As for :func:`lrq.encode`, applied to each chunk on its own: a
        ``rel_error=`` target holds for each chunk, a ``bits=`` budget for
        each chunk's entries (headers included).  Float targets are stored,
        and applied, as their binary32 values (as the HDF5 filter's).
    seed : int
        The encoder's seed: equal chunks give equal bytes.
    c_storage : "float32" or "float16" (signcut); storage : a float type (dense)

    Chunks must be matrices ((r, c), or (1, ..., 1, r, c)) for the
    factorizing schemes; dense takes any chunk.  float32 and float64
    arrays.  A chunk the encoder cannot store (NaN, a target not met) fails
    the write with :class:`lrq.LrqError`; a chunk that is not a valid
    stream fails the read with one, never returns data.  The metadata is
    ``{"name": "lrq", "configuration": {"version": 1, "scheme": ..., ...}}``
    (spec/zarr-codec.md §3).
    """

    is_fixed_size = False

    def __init__(self, *, scheme: str = "signcut", bits=None, width=None, rel_error=None, seed: int = 0,
                 c_storage=None, storage=None):
        self._set_options(scheme, bits=bits, width=width, rel_error=rel_error, seed=seed, c_storage=c_storage,
                          storage=storage)

    @classmethod
    def from_dict(cls, data: dict) -> "LRQ":
        if not isinstance(data, dict) or data.get("name") != CODEC_NAME:
            raise FormatError(f"not the metadata of the lrq codec: {data!r}")
        options, unknown = _parse_configuration(data.get("configuration", {}), "Zarr metadata")
        codec = cls.__new__(cls)
        codec._set_options(**options, unknown=unknown)
        return codec

    def to_dict(self) -> dict:
        return {"name": CODEC_NAME, "configuration": self._configuration_dict()}

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.options == self.options and other._unknown == self._unknown

    def __hash__(self) -> int:
        return hash((CODEC_NAME, tuple(self.options.items())))

    def __repr__(self) -> str:
        return f"lrq.zarr.LRQ({self._describe()})"

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        native = dtype.to_native_dtype()
        if native.name not in CHUNK_DTYPES or native.byteorder == ">":
            raise ArgumentError(f"the lrq codec stores float32 or float64 arrays, not {native}")
        if self.options["scheme"] != "dense" and len(shape) != 2 and \
                sum(1 for c in getattr(chunk_grid, "chunk_shape", ()) if c != 1) > 2:
            raise ArgumentError(f"scheme {self.options['scheme']!r} stores matrix chunks ((r, c) or (1, ..., r, c)); "
                                "use scheme='dense' for others")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError  # the size of a stream depends on the values

    def _decode_sync(self, chunk_bytes, chunk_spec):
        dtype = chunk_spec.dtype.to_native_dtype()
        values = decode_chunk(chunk_bytes.to_bytes(), chunk_spec.shape, dtype, "Zarr chunk")
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(values)

    def _encode_sync(self, chunk_array, chunk_spec):
        values = np.asarray(chunk_array.as_ndarray_like())
        return chunk_spec.prototype.buffer.from_bytes(self._encode_chunk(values))

    async def _decode_single(self, chunk_bytes, chunk_spec):
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    async def _encode_single(self, chunk_array, chunk_spec):
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)


class Numcodec(_Options, numcodecs.abc.Codec):
    """The lrq codec for numcodecs (``codec_id="lrq"``): ``compressors=``
    of a Zarr v2 array, or ``numcodecs.get_codec({"id": "lrq", "bits": 2})``.

    Takes the options of :class:`LRQ`.  :meth:`encode` takes the chunk as an
    ndarray (its shape is the tensor's: raw bytes have none, as for
    numcodecs' ZFPY); :meth:`decode` returns the chunk's values (a stream
    knows its shape and type), into ``out`` when given.
    """

    codec_id = CODEC_NAME

    def __init__(self, scheme: str = "signcut", bits=None, width=None, rel_error=None, seed: int = 0,
                 c_storage=None, storage=None, version: int = CONFIGURATION_VERSION, **unknown):
        _parse_configuration({"version": version}, "numcodecs configuration")
        self._set_options(scheme, bits=bits, width=width, rel_error=rel_error, seed=seed, c_storage=c_storage,
                          storage=storage, unknown=tuple(sorted(unknown)))

    def encode(self, buf) -> bytes:
        if not isinstance(buf, np.ndarray):
            raise ArgumentError(f"the lrq codec encodes an ndarray (it needs the chunk's shape), not {type(buf).__name__}")
        if not buf.flags.c_contiguous:
            # Zarr v2 hands an "F" order array's chunks in Fortran order and
            # reads the decoded bytes back in that order: lrq streams are C order.
            raise ArgumentError("the lrq codec encodes C-contiguous chunks (a Zarr v2 array needs order='C')")
        return self._encode_chunk(buf)

    def decode(self, buf, out=None):
        from .io import loads

        try:
            matrix = loads(bytes(memoryview(buf).cast("B")))
            values = matrix.decode()
        except (TypeError, BufferError):
            raise ArgumentError(f"the lrq codec decodes bytes, not {type(buf).__name__}") from None
        if out is None:
            return values
        target = np.asarray(out)
        if target.nbytes != values.nbytes:
            raise ArgumentError(f"out holds {target.nbytes} bytes; the chunk decodes to {values.nbytes}")
        target.reshape(-1).view(values.dtype)[:] = values.reshape(-1)
        return out

    def get_config(self) -> dict:
        return {"id": CODEC_NAME, **self._configuration_dict()}

    @classmethod
    def from_config(cls, config: dict) -> "Numcodec":
        config = dict(config)
        config.pop("id", None)
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.options == self.options and other._unknown == self._unknown

    __hash__ = None

    def __repr__(self) -> str:
        return f"lrq.zarr.Numcodec({self._describe()})"


# ------------------------------------------------------------------ products


def _chunk_layout(zarray) -> tuple:
    """The bytes-to-bytes codecs after the lrq serializer of ``zarray`` (a
    checksum, a compressor such as Zarr's default zstd): what lies between a
    stored chunk and its `.lrq` stream.  Raises UnsupportedError for an
    array whose chunks are not lrq streams (another serializer, sharding,
    array-to-array filters)."""
    if not isinstance(zarray, zarr.Array):
        raise ArgumentError(f"lrq.zarr.Matrix takes a zarr.Array, not {type(zarray).__name__}")
    if zarray.ndim != 2:
        raise ArgumentError(f"array of shape {zarray.shape} is not a matrix")
    metadata = zarray.metadata
    where = f"Zarr array {zarray.path or '/'!r}"
    if metadata.zarr_format == 3:
        codecs = list(metadata.codecs)
        if not codecs or not isinstance(codecs[0], LRQ) or not all(isinstance(c, BytesBytesCodec) for c in codecs[1:]):
            names = [c.to_dict().get("name") for c in codecs]
            raise UnsupportedError(f"{where} has codecs {names}; products on its chunks need the lrq serializer "
                                   "first (no sharding or array-to-array filters)")
        return tuple(codecs[1:])
    if metadata.filters or not isinstance(metadata.compressor, Numcodec):
        raise UnsupportedError(f"Zarr v2 array {zarray.path or '/'!r} is not compressed by the lrq codec alone "
                               f"(compressor {metadata.compressor!r}, filters {metadata.filters!r})")
    return ()


def read_chunk(zarray, coords: tuple) -> Optional[bytes]:
    """The `.lrq` stream of the chunk at grid ``coords`` (the stored bytes
    with any bytes-to-bytes codec undone, never decoded to values), or None
    if the store does not hold the chunk."""
    after = _chunk_layout(zarray)
    key = zarray.metadata.encode_chunk_key(tuple(coords))
    prototype = default_buffer_prototype()
    buffer = sync((zarray.store_path / key).get(prototype=prototype))
    if buffer is None:
        return None
    if after:
        spec = zarray.metadata.get_chunk_spec(tuple(coords), zarray.config, prototype)
        for codec in reversed(after):
            buffer = next(iter(sync(codec.decode([(buffer, spec)]))))
    return buffer.to_bytes()


def chunk_source(zarray, corner: tuple):
    """(rows, cols, operand) of the chunk at element ``corner`` of a 2-D lrq
    Zarr array, or None for a chunk that is not stored and reads as zeros."""
    chunks = tuple(int(c) for c in zarray.chunks)
    shape = tuple(int(d) for d in zarray.shape)
    coords = tuple(o // c for o, c in zip(corner, chunks))
    extent = tuple(min(c, d - o) for c, d, o in zip(chunks, shape, corner))
    stream = read_chunk(zarray, coords)
    if stream is None:
        # Zarr does not store a chunk that equals the fill value everywhere.
        fill = float(zarray.fill_value or 0)
        return None if fill == 0 else (extent[0], extent[1], np.full(extent, fill, zarray.dtype))
    return chunk_operand(stream, chunks, extent, zarray.dtype, f"Zarr array {zarray.path or '/'!r} chunk {coords}")


class Matrix(ChunkedMatrix):
    """Products with a 2-D Zarr array stored by the lrq codec, computed on
    its chunks as stored: ``M @ x``, ``M @ X``, ``M.T @ y``.

    Each chunk's raw bytes are read from the store and their factors
    multiply in the C kernels: no chunk is decoded to dense, and memory
    stays at about one chunk's stream whatever the array's size.  A chunk
    the store does not hold is the fill value everywhere.  Results equal
    ``zarray[:] @ x`` within the format's tolerance (spec §11); float32 for
    a float32 array and operand, else float64 (as ``lrq.hdf5.Matrix``).
    """

    def __init__(self, zarray):
        _chunk_layout(zarray)
        self.chunks = tuple(int(c) for c in zarray.chunks)
        self._array = zarray
        self.shape = tuple(int(d) for d in zarray.shape)
        self.dtype = np.dtype(zarray.dtype)

    def __repr__(self) -> str:
        return f"lrq.zarr.Matrix({self._array.path or '/'!r}, shape={self.shape}, chunks={self.chunks})"

    def _chunk(self, corner: tuple):
        return chunk_source(self._array, corner)
