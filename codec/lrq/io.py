"""Bytes and files: ``dumps``, ``loads``, ``save``, ``open`` and ``decode``."""

from __future__ import annotations

import mmap
import operator
import os
from collections.abc import Sequence
from typing import Iterator, Mapping, Optional

import msgpack
import numpy as np

from . import _native
from . import format, groups, private, safetensors_file
from .errors import ArgumentError, FormatError, LrqError, ResourceError
from .files import atomic_write
from .format import make_section
from .matrix import Matrix, Transposed
from .tensor import stored


def dumps(matrix) -> bytes:
    """One tensor, or one group (spec §10.4), as the bytes of a complete `.lrq` file."""
    if isinstance(matrix, groups.Group):
        for member in matrix.values():
            _verify(member._record)
        return b"".join(bytes(p) for p in matrix._serialize())
    if not isinstance(matrix, Matrix):
        raise ArgumentError(f"dumps takes an lrq.Matrix or lrq.Group, not {type(matrix).__name__}")

    def copy() -> bytes:  # reads the mapping of a file that may have been truncated
        _verify(matrix._record)
        return b"".join(bytes(p) for p in matrix._serialize())

    return matrix._reading_source(copy)


def _verify(record: format.TensorRecord) -> None:
    """Check the sections of a tensor read lazily from a file before they are
    copied into a new one, so that a writer never passes on a section that
    breaks a rule (sections made by an encoder are verified already)."""
    for tile in record.tiles:
        for section in tile.sections.values():
            section.payload(_native.crc32c)


class _CheckedSection(format.Section):
    """A section of a file parsed by the C core.

    ``data`` views the file's buffer; :meth:`payload` (every use that computes
    with the bytes goes through it) has C verify the section's CRC-32C and
    content rules first, once per section [SEC-7].  Copying the section into
    another file (``serialize``) reads ``data`` directly: bytes copied with
    their own checksum need no verification.
    """

    def __init__(self, parsed: _native.ContainerFile, index: tuple, entry: tuple, verified: bool):
        kind, offset, length, crc = entry
        super().__init__(kind, offset, length, crc, parsed.view(offset, length), verified)
        self._parsed = parsed
        self._index = index

    def payload(self, crc32c=None) -> memoryview:
        if not self.verified:
            self._parsed.section(*self._index)
            self.verified = True
        return self.data


class _FileTiles(Sequence):
    """The tiles of one tensor of a parsed file, each record built on first use.

    Opening a file then costs the C parse of its header and a record per
    tensor; a tensor of many tiles pays for the records of the tiles that
    are used, once (spec §13: nothing but the decoded output may cost more
    than the file's own size, and this keeps open cheap as well).
    """

    def __init__(self, parsed: _native.ContainerFile, tensor: int, count: int, verified: bool,
                 shared: Optional[dict] = None):
        self._parsed, self._tensor, self._verified = parsed, tensor, verified
        self._records = [None] * count
        # A group member's shared sections (spec §10.4): the group's section
        # objects, the same for every member, in place of its own.
        self._shared = shared or {}

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self._records)))]
        record = self._records[index]  # IndexError and negative indices as for a list
        if record is None:
            index = operator.index(index) % len(self._records)
            tile = self._parsed.tile(self._tensor, index)
            sections = {
                entry[0]: self._shared[entry[0]] if entry[0] in self._shared
                else _CheckedSection(self._parsed, (self._tensor, index, s), entry, self._verified)
                for s, entry in enumerate(tile["sections"])
            }
            record = format.TileRecord(tile["origin"], tile["shape"], tile["scheme"], tile["params"], sections)
            self._records[index] = record
        return record


    def dense_values(self, dtype: Optional[str] = None) -> Iterator[tuple]:
        """(index, origin, shape, values) of every tile in grid order: a dense
        tile's stored values (a view of the file; with ``dtype``, rounded to
        it [NUM-2]), None for a factorized one.

        Straight from the C tile table, without building tile records, so a
        tensor of many small tiles costs a few microseconds a tile (spec §13:
        a file costs time in proportion to its size and its output).
        """
        for index, origin, shape, storage, offset, length in self._parsed.dense_layout(self._tensor, len(self)):
            values = None if storage is None else format.dense_values(self._parsed.view(offset, length), storage, shape, dtype=dtype)
            yield index, origin, shape, values


def _parse(buf, *, verify: bool) -> format.FileRecord:
    """Parse and validate a whole `.lrq` file with the C core (:func:`_parse_c`)
    -- a 1.3 file with order-d signcut tensors, which the C parser does not
    read yet, with the reader of lrq.groups -- then the private-release
    records of a file that has them."""
    record = _parse_grouped(buf, verify) if _parsed_in_python(buf) else _parse_c(buf, verify)
    if record.optional_features & format.PRIVATE_RELEASE:
        # The parsers above ignore the record, as [PRE-5] and [HDR-9] let
        # any decoder; the record's rules are checked here.
        head = memoryview(buf).cast("B")
        header_length = int.from_bytes(head[32:40], "little")
        header = msgpack.unpackb(bytes(head[format.PREAMBLE_SIZE:format.PREAMBLE_SIZE + header_length]), raw=False,
                                 strict_map_key=True)
        private.attach_records(header, record)
    return record


def _parse_c(buf, verify: bool) -> format.FileRecord:
    """The records of a file parsed and validated by the C core.

    Builds the same records as the reference parser (``lrq.reference``, which
    keeps its own pure-Python parser), with section views into ``buf``; tile
    records are built when first used.  With ``verify`` every section's
    checksum and content rules are checked now (all checksums first);
    otherwise each section is checked on first use.  A group member's tile
    is a whole tile of its scheme whose shared sections are the group's
    section objects (spec §10.4), so members compute as any matrix and
    ``lrq.Group`` sees at once that they share them.
    """
    parsed = _native.ContainerFile(buf, "content" if verify else "none")
    group_records, shared = [], {}
    for g in parsed.groups():
        first = g["members"][0]  # the shared sections are checked through a member tile's first sections
        sections = {entry[0]: _CheckedSection(parsed, (first, 0, s), entry, verify)
                    for s, entry in enumerate(g["sections"])}
        shared.update((member, sections) for member in g["members"])
        group_records.append((g, sections))
    tensors = []
    for i in range(len(parsed)):
        t = parsed.tensor(i)
        tiles = _FileTiles(parsed, i, t["tile_count"], verify, shared.get(i))
        # The informational "encoder" map comes back as the msgpack bytes C
        # already checked against the header profile; decoding them cannot fail.
        encoder = msgpack.unpackb(t["encoder"], raw=False) if t["encoder"] is not None else None
        tensors.append(format.TensorRecord(t["name"], t["shape"], t["dtype"], t["tile_shape"], t["panel"],
                                           tiles, t["rel_error"], encoder))
    groups_read = [format.GroupRecord(g["name"], g["scheme"], g["columns"], g["panel"], g["params"],
                                      [tensors[m].name for m in g["members"]], sections)
                   for g, sections in group_records]
    required, optional = parsed.features
    return format.FileRecord(tensors, parsed.metadata(), required, optional, parsed.minor, groups_read)


def _parsed_in_python(buf) -> bool:
    """Whether a file sets signcut_tensor (and no bit this library does not
    know): a 1.3 file with order-d signcut tensors, which the Python reader
    parses (lrq.groups)."""
    head = memoryview(buf).cast("B")[:24]
    if len(head) < 24 or bytes(head[:8]) != format.MAGIC or int.from_bytes(head[8:10], "little") != format.FORMAT_MAJOR:
        return False
    required = int.from_bytes(head[16:24], "little")
    return bool(required & format.SIGNCUT_TENSOR) and not required & ~format.KNOWN_REQUIRED_FEATURES


def _parse_grouped(buf, verify: bool) -> format.FileRecord:
    record = groups.parse_grouped(buf)
    if verify:  # every section's CRC, then its content rules, tile by tile [SEC-9]
        for t in record.tensors:
            matrix = stored(t, cache=False)
            for index, tile in enumerate(t.tiles):
                for section in tile.sections.values():
                    section.payload(_native.crc32c)
                if tile.scheme == "dense":
                    Matrix._dense_section(tile, t.dtype)
                else:
                    matrix._kernel(index, tile)
    return record


def _group_objects(record: format.FileRecord, matrices: dict, owner=None) -> dict:
    return {g.name: groups.Group({name: matrices[name] for name in g.members}, name=g.name, owner=owner)
            for g in record.groups}


def loads(data):
    """Read a `.lrq` file held in bytes; it must contain exactly one tensor.

    Every checksum and value rule is verified now, so a damaged file fails
    here.  The bytes are copied, so later changes to ``data`` do not matter.
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise ArgumentError(f"loads takes bytes-like data, not {type(data).__name__}") from None
    record = _parse(bytes(view), verify=True)
    if len(record.groups) == 1 and len(record.groups[0].members) == len(record.tensors):
        return _group_objects(record, {t.name: stored(t) for t in record.tensors})[record.groups[0].name]
    if len(record.tensors) != 1:
        raise ArgumentError(f"loads needs a file with one tensor; this one has {len(record.tensors)} (use lrq.open)")
    return stored(record.tensors[0])


def decode(matrix) -> np.ndarray:
    """The dense array a compressed matrix (or order-d tensor, :class:`lrq.Tensor`) stands for."""
    if isinstance(matrix, (bytes, bytearray, memoryview)):
        matrix = loads(matrix)
    if not isinstance(matrix, (Matrix, Transposed)):
        raise ArgumentError(f"decode takes an lrq.Matrix (or its .T) or bytes, not {type(matrix).__name__}")
    return matrix.decode()


def _dense_record(name: str, array, source: Optional[str] = None) -> format.TensorRecord:
    """A raw array stored losslessly as a one-tile dense tensor of dtype ``source``.

    ``source`` names the original dtype when ``array`` does not carry it:
    for ``"bfloat16"``, ``array`` holds either the values (float32, widened
    exactly from bfloat16) or the ``uint16`` bit patterns, and the file keeps
    the bits exactly.  Without ``source`` the array's own dtype is kept.
    """
    if source is None:
        source = str(getattr(array, "dtype", ""))
    if source == "bfloat16":
        array = np.asarray(array)
        if array.dtype != np.uint16:
            array = np.asarray(array, dtype=np.float32)
    else:
        array = np.asarray(array)
        source = array.dtype.name
    if source not in format.DTYPES:
        raise ArgumentError(f"tensor '{name}': dtype {array.dtype} cannot be stored (supported: {', '.join(format.DTYPES)})")
    if array.ndim > format.MAX_NDIM or array.size == 0:
        raise ArgumentError(f"tensor '{name}': shape {array.shape} cannot be stored (0-8 dims, none of them 0)")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ArgumentError(f"tensor '{name}': holds NaN or infinity")
    shape = tuple(int(d) for d in array.shape)
    data = format.dense_bytes(array, source)
    tile = format.TileRecord((0,) * len(shape), shape, "dense", {"storage": source},
                                {"values": make_section("values", data, _native.crc32c)})
    return format.TensorRecord(name, shape, source, shape, format.DEFAULT_PANEL, [tile])


def dense_matrix(name: str, array, source: Optional[str] = None) -> Matrix:
    """An array as a lossless dense ``lrq.Matrix`` (any dtype the format stores)."""
    return Matrix(_dense_record(name, array, source))


def _records(tensors: Mapping) -> tuple:
    """(tensor records, group records) for ``save``; a Group adds its members
    under their own names and itself under its key (spec §10.4)."""
    if not isinstance(tensors, Mapping):
        raise ArgumentError("save takes a mapping of name -> lrq.Matrix, lrq.Group or array")
    records, group_records = [], []
    for name, value in tensors.items():
        if (
            not isinstance(name, str)
            or any("\ud800" <= ch <= "\udfff" for ch in name)  # lone surrogates are not UTF-8
            or not 1 <= len(name.encode("utf-8")) <= format.MAX_NAME_BYTES
        ):
            raise ArgumentError(f"tensor names must be non-empty strings of at most 1024 bytes, not {name!r}")
        if isinstance(value, groups.Group):
            for member in value.values():
                _verify(member._record)
            members, group = value.records(name)
            records.extend(members)
            group_records.append(group)
        elif isinstance(value, Matrix):
            record = value._record
            _verify(record)
            records.append(format.TensorRecord(name, record.shape, record.dtype, record.tile_shape,
                                                  record.panel, record.tiles, record.rel_error, record.encoder,
                                                  record.privacy))
        elif isinstance(value, safetensors_file.Tensor):
            records.append(_dense_record(name, value.values, value.dtype))
        else:
            records.append(_dense_record(name, value))
    if len(records) > format.MAX_TENSORS:
        raise ArgumentError(f"a file holds at most {format.MAX_TENSORS} tensors")
    names = [r.name for r in records]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ArgumentError(f"tensor names must be unique in a file (spec [TEN-2]); a group's members "
                            f"clash with other tensors: {', '.join(twice[:5])}")
    return records, group_records


def save(path, tensors: Mapping, *, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write named tensors to one `.lrq` file, atomically.

    Values are ``lrq.Matrix`` objects (stored as they are), arrays (stored
    dense, losslessly, in their own dtype) or tensors read by
    :func:`lrq.safetensors_file.read` (bfloat16 kept bit for bit).  ``metadata`` maps strings to
    strings (a safetensors ``__metadata__`` map fits as it is).  Everything
    the decoders check about the header (spec §13 limits, UTF-8) is checked
    before anything is written, so what ``save`` writes always opens.  The
    file goes through :func:`lrq.files.atomic_write`: a failure or an
    interrupt leaves any existing file untouched and nothing behind, and the
    new file's mode follows the umask.
    """
    records, group_records = _records(tensors)
    pieces = format.serialize(records, format.check_metadata(metadata), _native.crc32c, group_records)

    def write(out) -> None:
        for piece in pieces:
            out.write(piece)
        # Sections copied from a mapped file that was truncated meanwhile
        # read as zeros: the new file must not replace anything then.
        for value in tensors.values():
            for matrix in (value.values() if isinstance(value, groups.Group) else (value,)):
                if isinstance(matrix, Matrix):
                    matrix._check_source()

    atomic_write(path, write)


class File(Mapping):
    """An open `.lrq` file: a read-only mapping of tensor name → ``lrq.Matrix``.

    The file is memory-mapped; nothing is read beyond the header until used,
    and each section's checksum is verified on its first use.  Use it as a
    context manager, or call :meth:`close`.

    A file truncated while mapped (by this process or another) does not end
    the process with SIGBUS: every product, decode or copy of its matrices
    then raises FormatError ("file ... was truncated while mapped") and what
    the call computed is discarded.  The mapping is guarded by the C core's
    SIGBUS handler (``lrq_mapping_guard`` in ``lrq.h``), which chains to any
    handler installed before it for faults elsewhere; at most
    ``LRQ_MAPPING_GUARD_MAX`` (1024) files are guarded at once, later ones
    only by the size check made before each call.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            with builtin_open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    raise FormatError("[PRE-8] not an .lrq file: it is empty")
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ResourceError(f"cannot open {self.path}: {exc}") from None
        self._mapped_size = size
        self._truncated = False
        self._guard = _native.MappingGuard(self._map)
        try:
            record = _parse(self._map, verify=False)
        except BaseException:
            self._matrices = {}
            self.close()
            raise
        self.metadata = dict(record.metadata)
        self.format_version = (format.FORMAT_MAJOR, record.minor)
        self._matrices = {t.name: stored(t, owner=self, cache=False) for t in record.tensors}
        # Groups of a 1.2 file (spec §10.4), name -> lrq.Group of the matrices above.
        self.groups = _group_objects(record, self._matrices, owner=self)

    def __getitem__(self, name: str) -> Matrix:
        if self._map is None:
            raise LrqError("the file is closed")
        try:
            return self._matrices[name]
        except KeyError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._matrices)

    def __len__(self) -> int:
        return len(self._matrices)

    def _check_intact(self) -> None:
        """Raise FormatError if the file was truncated while mapped.

        Called by the file's matrices before and after every product, decode
        or copy.  Before: the file's size (one fstat) catches a truncation
        that no access has met yet.  After: the SIGBUS guard
        (:class:`lrq._native.MappingGuard`) says whether an access met one
        during the call -- the pages past the file's new end then read as
        zeros, so what the call computed is discarded.
        """
        if not self._truncated:
            mapping = self._guard.mapping
            self._truncated = self._guard.damaged or (mapping is not None and mapping.size() < self._mapped_size)
        if self._truncated:
            raise FormatError(f"file {self.path} was truncated while mapped (it had {self._mapped_size:,} "
                              "bytes); what was read from it is discarded: reopen it once it is whole")

    def close(self) -> None:
        """Release the mapping.

        Matrices already taken from the file keep the mapping alive until they
        are freed, so they stay usable; the file object itself no longer is.
        """
        if self._map is not None:
            self._matrices = {}
            self._truncated = self._truncated or self._guard.damaged
            # The guard goes before the mapping: a fault in the range the
            # mapping leaves must never be taken for one of ours.
            self._guard.release()
            try:
                self._map.close()
            except BufferError:
                # A matrix still points into the map (it closes when freed):
                # it stays guarded.
                self._guard = _native.MappingGuard(self._map)
            self._map = None

    def __enter__(self) -> "File":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<lrq.File {self.path!r}: {len(self._matrices)} tensors>"


builtin_open = open


def open(path) -> File:  # noqa: A001 - the API name is fixed by the design
    """Open a `.lrq` file for lazy, memory-mapped access (see :class:`File`)."""
    return File(path)
