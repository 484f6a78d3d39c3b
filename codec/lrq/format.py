"""The `.lrq` v1 format as the library writes it: constants, records, the writer.

Production code takes every format constant and limit from here, each
defined once (the pure-NumPy twin in ``lrq.reference`` keeps its own copy on
purpose: it is written from the spec alone and checks this one).  Reading is
done by the C core (``lrq.io``); this module builds the records the reader
fills in and writes them back:

- records: :class:`Section`, :class:`TileRecord`, :class:`TensorRecord`,
  :class:`FileRecord`; :func:`tile_grid`, :func:`section_lengths`;
- the writer: :func:`serialize` (the bytes of a whole file, piece by piece),
  :func:`planned_size`, :func:`header_object`, :func:`make_section`,
  :func:`section_alignment`, :func:`content_version`;
- :func:`check_header`, which refuses before anything is written a header
  the decoders would refuse ([PRE-6], [HDR-3], [LIM-1]–[LIM-4], [LIM-6]);
- dense values: :func:`dense_bytes` / :func:`dense_values` ([DN-1]–[DN-4])
  and the bfloat16 conversions; :func:`output_dtype`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import msgpack
import numpy as np

from .errors import ArgumentError, ChecksumError, FormatError

MAGIC = b"\x89LRQ\r\n\x1a\n"
PREAMBLE_SIZE = 64
FORMAT_MAJOR = 1
# The newest minor this library reads and writes; a file gets the lowest
# minor its content needs [VER-2] (see content_version).
FORMAT_MINOR = 5
# Required feature bits (spec §4): bit 0, signcut_c16 (since 1.1); bit 1,
# shared_factor (since 1.2), groups of tensors sharing a right factor (§10.4);
# bit 2, signcut_tensor (since 1.3), signcut tiles of order-d tensors (§10.5);
# bit 3, quant (since 1.5), tiles of the scheme "quant" (§10.7).
SIGNCUT_C16 = 1 << 0
SHARED_FACTOR = 1 << 1
SIGNCUT_TENSOR = 1 << 2
QUANT = 1 << 3
QUANT_MINOR = 5
KNOWN_REQUIRED_FEATURES = SIGNCUT_C16 | SHARED_FACTOR | SIGNCUT_TENSOR | QUANT
# Optional feature bits: bit 0, private_release (since 1.4), tensors carrying
# a differential-privacy record (§10.6), which a decoder may ignore.
PRIVATE_RELEASE = 1 << 0
PRIVATE_RELEASE_MINOR = 4
C_SCALE_EXPONENTS = (-125, 112)  # [SC-3]: c_scale = 2^e, e in this range
ROW_EXPONENTS = (-24, 7)  # [QT-4]: a quant row's scales are code * 2^e, e in this range

# Decoder limits, spec §13.
MAX_HEADER_LENGTH = 16 * 1024 * 1024  # [PRE-6]
MAX_MAP_ENTRIES = 64  # [LIM-1]
MAX_ARRAY_ELEMENTS = 1 << 20  # [LIM-2]
MAX_DEPTH = 8  # [LIM-3]
MAX_TENSORS = 65536  # [LIM-4]
MAX_STRING_BYTES = 65535  # [LIM-6]
MAX_NAME_BYTES = 1024  # [TEN-2]
MAX_NDIM = 8  # [TEN-3]
MAX_DIM = (1 << 31) - 1  # [TEN-3]
MAX_ELEMENTS = 1 << 48  # [TEN-3]
MAX_PARAM = (1 << 31) - 1  # [SC-1], [LP-1]
MIN_PANEL, MAX_PANEL = 64, 1 << 20  # [TEN-5]
MIN_GROUP, MAX_GROUP = 16, 1 << 20  # [LP-1]
DEFAULT_PANEL = 4096

SMALL_ALIGNMENT = 64
PAGE_ALIGNMENT = 4096
PAGE_ALIGNED_FROM = 1 << 20  # sections this long or longer start on a page [SEC-3]

_PREAMBLE = struct.Struct("<8sHHIQQQQI12s")

# Element types [TEN-4]: name -> (little-endian numpy dtype or None, item size, is float)
DTYPES = {
    "float64": ("<f8", 8, True),
    "float32": ("<f4", 4, True),
    "float16": ("<f2", 2, True),
    "bfloat16": (None, 2, True),
    "int64": ("<i8", 8, False),
    "int32": ("<i4", 4, False),
    "int16": ("<i2", 2, False),
    "int8": ("i1", 1, False),
    "uint64": ("<u8", 8, False),
    "uint32": ("<u4", 4, False),
    "uint16": ("<u2", 2, False),
    "uint8": ("u1", 1, False),
    "bool": ("u1", 1, False),
}
FLOAT_STORAGE = ("float32", "float16", "bfloat16", "float64")
SCHEMES = ("signcut", "lplr", "dense", "quant")
SECTION_KINDS = {
    "dense": ("values",),
    "signcut": ("c", "tt", "s"),
    "lplr": ("r_codes", "r_scales", "l_codes", "l_scales"),
    "quant": ("codes", "scale_codes", "row_exponents"),
}
# Scheme parameters in writer order [HDR-13] (optional ones only when present).
PARAM_KEYS = {
    "dense": ("storage",),
    "signcut": ("width", "c_scale"),
    "lplr": ("rank", "bits_l", "bits_r", "group", "scale_l", "scale_r"),
    "quant": ("bits", "group", "scale_bits", "scale"),
}

# Groups (spec §10.4): the sections and parameters a group holds once and
# those each member tile holds, per scheme, in writer order.
GROUP_SCHEMES = ("signcut", "lplr")
SHARED_KINDS = {"signcut": ("c", "tt"), "lplr": ("r_codes", "r_scales")}
MEMBER_KINDS = {"signcut": ("s",), "lplr": ("l_codes", "l_scales")}
SHARED_PARAMS = {"signcut": ("width",), "lplr": ("rank", "bits_r", "group", "scale_r")}
MEMBER_PARAMS = {"signcut": (), "lplr": ("bits_l", "scale_l")}

CrcFunction = Callable[..., int]


def is_tensor_tile(scheme: str, shape: tuple) -> bool:
    """A signcut tile of a tensor of order 3 or more (spec §10.5, format 1.3)."""
    return scheme == "signcut" and len(shape) >= 3


def tile_kinds(scheme: str, shape: tuple) -> tuple:
    """A tile's section kinds in table order: a tensor tile's are "c" and one
    sign matrix per mode, "s0" … "s{d-1}" [TNS-2]."""
    if is_tensor_tile(scheme, shape):
        return ("c",) + tuple(f"s{mode}" for mode in range(len(shape)))
    return SECTION_KINDS[scheme]


# --------------------------------------------------------------------------
# Geometry


def align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def section_alignment(length: int) -> int:
    """The alignment of a section's canonical offset [SEC-3]."""
    return PAGE_ALIGNMENT if length >= PAGE_ALIGNED_FROM else SMALL_ALIGNMENT


def interleaved_bytes(rows: int, k: int, elem_bits: int) -> int:
    """Bytes of a rows × k interleaved matrix (spec §9.1): k padded to 16-element chunks."""
    return rows * (-(-k // 16) * 16) * elem_bits // 8


def _factor_code_bytes(rows: int, k: int, bits: int) -> int:
    """An LPLR code section: bit-planes up to 4 bits, u8 codes above [LP-3]."""
    return bits * interleaved_bytes(rows, k, 1) if bits <= 4 else interleaved_bytes(rows, k, 8)


def section_lengths(scheme: str, shape: tuple, params: dict) -> tuple:
    """The exact byte length of every section of a tile, in table order [SEC-2]."""
    if scheme == "dense":
        return (math.prod(shape) * DTYPES[params["storage"]][1],)
    if is_tensor_tile(scheme, shape):  # [TNS-2]
        w = params["width"]
        return (4 * w,) + tuple(interleaved_bytes(n, w, 1) for n in shape)
    m, n = shape
    if scheme == "signcut":
        w = params["width"]
        return ((2 if "c_scale" in params else 4) * w, interleaved_bytes(w, n, 1), interleaved_bytes(m, w, 1))
    if scheme == "quant":  # §10.7
        scale_codes = m * -(-n // params["group"]) * params["scale_bits"]
        return (_factor_code_bytes(m, n, params["bits"]), -(-scale_codes // 8), m)
    r, g = params["rank"], params["group"]
    return (
        _factor_code_bytes(r, n, params["bits_r"]),
        2 * r * (-(-n // g)),
        _factor_code_bytes(m, r, params["bits_l"]),
        2 * m * (-(-r // g)),
    )


def tile_grid(shape: tuple, tile_shape: tuple) -> Iterator[tuple]:
    """(origin, shape) of every tile, in row-major grid order [TIL-3]."""
    if len(shape) != 2:
        yield (0,) * len(shape), tuple(shape)
        return
    m, n = shape
    tm, tn = tile_shape
    for r0 in range(0, m, tm):
        for c0 in range(0, n, tn):
            yield (r0, c0), (min(tm, m - r0), min(tn, n - c0))


# --------------------------------------------------------------------------
# Records


@dataclass
class Section:
    """One payload section: where it is, its CRC-32C and its bytes."""

    kind: str
    offset: int
    length: int
    crc: int
    data: Optional[memoryview] = None
    verified: bool = False

    def payload(self, crc32c: CrcFunction) -> memoryview:
        """The section's bytes, its CRC checked on first use [SEC-6]."""
        if not self.verified:
            actual = crc32c(self.data) if self.length else 0
            if actual != self.crc:
                raise ChecksumError(f"section '{self.kind}' at offset {self.offset}: CRC-32C is "
                                    f"{actual:#010x}, the table says {self.crc:#010x} [SEC-6]")
            self.verified = True
        return self.data


@dataclass
class TileRecord:
    """One tile of a tensor: its position, scheme, parameters and sections."""

    origin: tuple
    shape: tuple
    scheme: str
    params: dict
    sections: dict = field(default_factory=dict)  # kind -> Section
    # The group of a member tile (spec §10.4): its params and sections then
    # include the group's shared ones, so it computes as any tile of its
    # scheme; only its own are listed in its header entry.
    group: Optional[str] = None

    def section(self, kind: str, crc32c: CrcFunction) -> memoryview:
        return self.sections[kind].payload(crc32c)

    def own_kinds(self) -> tuple:
        """The kinds of the sections listed in the tile's own header entry."""
        return MEMBER_KINDS[self.scheme] if self.group is not None else tile_kinds(self.scheme, self.shape)


@dataclass
class GroupRecord:
    """A group of one-tile tensors sharing a right factor (spec §10.4)."""

    name: str
    scheme: str
    columns: int
    panel: int
    params: dict  # SHARED_PARAMS[scheme]
    members: list  # tensor names, in order
    sections: dict = field(default_factory=dict)  # SHARED_KINDS[scheme] -> Section


@dataclass
class TensorRecord:
    """One named tensor: what the header says about it, and its tiles."""

    name: str
    shape: tuple
    dtype: str
    tile_shape: tuple
    panel: int
    tiles: list
    rel_error: Optional[float] = None
    encoder: Optional[dict] = None
    privacy: Optional[dict] = None  # the differential-privacy record (spec §10.6)


@dataclass
class FileRecord:
    tensors: list
    metadata: dict
    required_features: int
    optional_features: int
    minor: int
    groups: list = field(default_factory=list)


def make_section(kind: str, data, crc32c: CrcFunction) -> Section:
    """A section built in memory (its offset is assigned when it is written)."""
    view = memoryview(data).cast("B")
    return Section(kind, -1, len(view), crc32c(view) if len(view) else 0, view, verified=True)


def output_dtype(dtype: str) -> np.dtype:
    """The numpy dtype a tensor decodes to: its own, or float32 for bfloat16."""
    if dtype == "bfloat16":
        return np.dtype(np.float32)
    if dtype == "bool":
        return np.dtype(np.bool_)
    return np.dtype(DTYPES[dtype][0]).newbyteorder("=")


# --------------------------------------------------------------------------
# Dense values [DN-1]-[DN-4]


def bfloat16_bits(values) -> np.ndarray:
    """Values rounded to the nearest bfloat16 (ties to even), as little-endian uint16 bits."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")


def bfloat16_to_float32(bits) -> np.ndarray:
    """bfloat16 bit patterns as the float32 values they stand for (exact)."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def dense_bytes(values, storage: str) -> bytes:
    """A dense tile's ``values`` section in ``storage`` type.

    For ``storage="bfloat16"`` a ``uint16`` array is taken as bit patterns
    (kept bit for bit); other values are rounded.  Bool values are written
    as bytes 0 and 1 whatever byte numpy holds [DN-4].  Float values that
    would not be finite in ``storage`` are refused [DN-3].
    """
    values = np.asarray(values)
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below, as an error
        if storage == "bfloat16":
            raw = values.astype("<u2") if values.dtype == np.uint16 else bfloat16_bits(values)
            decoded = bfloat16_to_float32(raw)
        elif storage == "bool":
            raw = decoded = (np.ascontiguousarray(values, dtype=np.bool_).view(np.uint8) != 0).astype(np.uint8)
        else:
            raw = decoded = np.ascontiguousarray(values).astype(DTYPES[storage][0])
    if storage in FLOAT_STORAGE and not np.isfinite(decoded).all():
        raise ArgumentError(f"values do not fit in {storage} (they would become infinite); choose a wider storage")
    return np.ascontiguousarray(raw).tobytes()


def _float32_round_to_odd(values: np.ndarray) -> np.ndarray:
    """float64 to float32 toward zero, the last bit set when inexact, so that a
    second rounding to bfloat16 is the one correct rounding of the float64."""
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    bits = nearest.view(np.uint32).copy()
    bits[np.abs(nearest.astype(np.float64)) > np.abs(values)] -= 1
    bits[bits.view(np.float32).astype(np.float64) != values] |= 1
    return bits.view(np.float32)


def rounded_to_dtype(values: np.ndarray, storage: str, dtype: str) -> np.ndarray:
    """Stored dense values as a ``dtype`` tensor decodes them [NUM-2]: a value
    stored wider than the dtype is rounded once to it (nearest, ties to even;
    an infinity past its range), bfloat16 delivered as float32; narrower
    storage widens exactly and integer or bool tensors are unchanged."""
    if storage == dtype or dtype not in FLOAT_STORAGE:
        return values
    if dtype == "bfloat16":
        wide = values.astype(np.float64)
        as32 = _float32_round_to_odd(wide) if values.dtype == np.float64 else wide.astype(np.float32)
        return bfloat16_to_float32(bfloat16_bits(as32)).reshape(values.shape)
    with np.errstate(over="ignore"):  # past the dtype's range the value is an infinity [NUM-2]
        return values.astype(DTYPES[dtype][0])


def dense_values(buf, storage: str, shape: tuple, *, widen: bool = True, dtype: Optional[str] = None) -> np.ndarray:
    """A dense tile's values from its ``values`` section (bfloat16 widened to float32 unless ``widen=False``);
    with ``dtype``, the tensor's, rounded as it decodes [NUM-2]."""
    if storage == "bfloat16":
        bits = np.frombuffer(buf, dtype="<u2")
        values = bfloat16_to_float32(bits) if widen else bits
    elif storage == "bool":
        raw = np.frombuffer(buf, dtype=np.uint8)
        if (raw > 1).any():
            raise FormatError("a bool value byte is neither 0 nor 1 [DN-4]")
        values = raw.view(np.bool_)
    else:
        values = np.frombuffer(buf, dtype=DTYPES[storage][0])
    values = values.reshape(shape)
    if dtype is None or storage == dtype or dtype not in FLOAT_STORAGE:  # the common case, without a call
        return values
    return rounded_to_dtype(values, storage, dtype)


# --------------------------------------------------------------------------
# Writing


def check_header(header: dict) -> None:
    """Refuse a header object the decoders would refuse, before it is written.

    Checks the structural limits of spec §13 on every map, array and string
    ([LIM-1], [LIM-2], [LIM-3], [LIM-6]), that every string is valid UTF-8
    (no lone surrogates, [HDR-3]) and the tensor count ([LIM-4]).
    """
    stack = [(header, 1, "the header")]
    while stack:
        obj, depth, where = stack.pop()
        if isinstance(obj, (dict, list)):
            if depth > MAX_DEPTH:
                raise ArgumentError(f"{where} nests deeper than {MAX_DEPTH} levels (spec [LIM-3])")
            if isinstance(obj, dict):
                if len(obj) > MAX_MAP_ENTRIES:
                    raise ArgumentError(f"{where} has {len(obj)} entries; a file allows at most {MAX_MAP_ENTRIES} "
                                        "per map (spec [LIM-1])")
                for key, value in obj.items():
                    _check_string(key, f"a key of {where}")
                    stack.append((value, depth + 1, f"'{key[:40]}'" if depth > 1 else f"header key '{key[:40]}'"))
            else:
                if len(obj) > MAX_ARRAY_ELEMENTS:
                    raise ArgumentError(f"{where} has {len(obj)} elements; a file allows at most "
                                        f"{MAX_ARRAY_ELEMENTS} per array (spec [LIM-2])")
                stack.extend((value, depth + 1, where) for value in obj)
        elif isinstance(obj, str):
            _check_string(obj, f"a value of {where}")
    if len(header.get("tensors", ())) > MAX_TENSORS:
        raise ArgumentError(f"a file holds at most {MAX_TENSORS} tensors (spec [LIM-4])")


def _check_string(text: str, where: str) -> None:
    try:
        length = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ArgumentError(f"{where} holds a lone surrogate, which is not UTF-8 (spec [HDR-3]): {text[:40]!r}") from None
    if length > MAX_STRING_BYTES:
        raise ArgumentError(f"{where} is a string of {length} bytes; a file allows at most {MAX_STRING_BYTES} "
                            "(spec [LIM-6])")


def check_metadata(metadata) -> Optional[dict]:
    """The file metadata as a dict, after the checks of [HDR-6] and the limits of spec §13."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) and not hasattr(metadata, "items"):
        raise ArgumentError("metadata must map strings to strings")
    metadata = dict(metadata)
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in metadata.items()):
        raise ArgumentError("metadata must map strings to strings")
    check_header({"metadata": metadata})
    return metadata


def header_object(tensors: list, metadata: Optional[dict], table: list, groups: list = ()) -> dict:
    """The header map, keys in writer order [HDR-13], section entries from ``table``
    in file order (every tensor's, then every group's shared sections, §10.4)."""
    entries = iter(table)
    out = []
    for t in tensors:
        tiles = []
        for tile in t.tiles:
            entry = {"scheme": tile.scheme}
            keys = MEMBER_PARAMS[tile.scheme] if tile.group is not None else PARAM_KEYS[tile.scheme]
            entry.update((key, tile.params[key]) for key in keys if key in tile.params)
            entry["sections"] = [list(next(entries)) for _ in tile.own_kinds()]
            tiles.append(entry)
        tmap = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "tile_shape": list(t.tile_shape),
                "panel": t.panel, "tiles": tiles}
        if t.rel_error is not None:
            tmap["rel_error"] = float(t.rel_error)
        if t.encoder is not None:
            tmap["encoder"] = t.encoder
        if t.privacy is not None:
            tmap["privacy"] = dict(t.privacy)
        out.append(tmap)
    header = {"tensors": out}
    if groups:
        header["groups"] = [_group_map(g, entries) for g in groups]
    if metadata:
        header["metadata"] = dict(metadata)
    return header


def _group_map(group: GroupRecord, entries) -> dict:
    out = {"name": group.name, "scheme": group.scheme, "columns": group.columns, "panel": group.panel}
    out.update((key, group.params[key]) for key in SHARED_PARAMS[group.scheme])
    out["members"] = list(group.members)
    out["sections"] = [list(next(entries)) for _ in SHARED_KINDS[group.scheme]]
    return out


def group_section_lengths(scheme: str, columns: int, params: dict) -> tuple:
    """The lengths of a group's shared sections: the right-factor sections of
    a tile of its scheme with no rows (spec §10.4)."""
    probe = dict(params, bits_l=1) if scheme == "lplr" else params
    return section_lengths(scheme, (0, columns), probe)[: len(SHARED_KINDS[scheme])]


def own_section_lengths(tile: TileRecord) -> tuple:
    """The lengths of the sections a tile lists itself (a member: its own only)."""
    lengths = section_lengths(tile.scheme, tile.shape, tile.params)
    return lengths[len(SHARED_KINDS[tile.scheme]):] if tile.group is not None else lengths


def _offsets(lengths: list, start: int) -> list:
    """Canonical section offsets [SEC-3]."""
    offsets, pos = [], start
    for length in lengths:
        pos = align(pos, section_alignment(length))
        offsets.append(pos)
        pos += length
    return offsets


def _section_kinds(tensors: list, groups: list = ()) -> list:
    return ([kind for t in tensors for tile in t.tiles for kind in tile.own_kinds()]
            + [kind for g in groups for kind in SHARED_KINDS[g.scheme]])


def _pack_header(tensors, metadata, lengths, crcs, groups=()) -> tuple:
    """(header bytes, section offsets, file length), header length and offsets agreeing.

    Offsets depend on the header's length and the header holds the offsets;
    both only grow as the other grows, so iterating from zero converges.
    """
    kinds = _section_kinds(tensors, groups)
    header_length = 0
    checked = False
    while True:
        offsets = _offsets(lengths, PREAMBLE_SIZE + header_length)
        header = header_object(tensors, metadata, list(zip(kinds, offsets, lengths, crcs)), groups)
        if not checked:
            check_header(header)  # the offsets do not change what it checks
            checked = True
        raw = msgpack.packb(header, use_single_float=True)  # shortest forms, float 32 [HDR-12]
        if len(raw) > MAX_HEADER_LENGTH:
            raise ArgumentError(f"the header would take {len(raw):,} bytes; a file allows at most "
                                f"{MAX_HEADER_LENGTH:,} (spec [PRE-6]): write fewer tensors, tiles or metadata")
        if len(raw) == header_length:
            end = offsets[-1] + lengths[-1] if offsets else PREAMBLE_SIZE + header_length
            return raw, offsets, end
        header_length = len(raw)


def content_version(tensors: list, groups: list = ()) -> tuple:
    """(minor, required_features, optional_features) of the lowest version that
    holds the tensors [VER-2]: 1.4 with private_release when a tensor has a
    privacy record (§10.6), 1.3 with signcut_tensor when a tensor of order 3
    or more has a signcut tile (§10.5), 1.2 with shared_factor when there are
    groups (§10.4), 1.1 with signcut_c16 when a signcut tile stores c as
    binary16 [SC-4], else 1.0; and 1.5 with quant whenever a tile has the
    scheme "quant" (§10.7), whatever else the file holds."""
    c16 = any(tile.scheme == "signcut" and "c_scale" in tile.params for t in tensors for tile in t.tiles)
    tensor = any(is_tensor_tile(tile.scheme, tile.shape) for t in tensors for tile in t.tiles)
    quant = any(tile.scheme == "quant" for t in tensors for tile in t.tiles)
    required = (SIGNCUT_C16 if c16 else 0) | (SHARED_FACTOR if groups else 0) | (SIGNCUT_TENSOR if tensor else 0) \
        | (QUANT if quant else 0)
    private = any(t.privacy is not None for t in tensors)
    minor = QUANT_MINOR if quant else PRIVATE_RELEASE_MINOR if private else 3 if tensor else 2 if groups else 1 if c16 else 0
    return minor, required, (PRIVATE_RELEASE if private else 0)


def _preamble(header: bytes, file_length: int, crc32c: CrcFunction, version: tuple) -> bytes:
    minor, required, optional = version
    head = _PREAMBLE.pack(MAGIC, FORMAT_MAJOR, minor, 0, required, optional, len(header), file_length, 0, bytes(12))
    crc = crc32c(header, crc32c(head[:48]))  # [PRE-9]: preamble bytes 0-47, then the header
    return head[:48] + struct.pack("<I", crc) + bytes(12)


def planned_size(tensors: list, metadata: Optional[dict] = None, groups: list = ()) -> int:
    """File size for tensors whose tiles have params but maybe no payload.

    CRCs are taken at their widest msgpack encoding, so the real file is never
    larger.  Encoders use it to meet a bits-per-entry budget.
    """
    lengths = [ln for t in tensors for tile in t.tiles for ln in own_section_lengths(tile)]
    lengths += [ln for g in groups for ln in group_section_lengths(g.scheme, g.columns, g.params)]
    return _pack_header(tensors, metadata, lengths, [0xFFFFFFFF] * len(lengths), groups)[2]


def serialize(tensors: list, metadata: Optional[dict], crc32c: CrcFunction, groups: list = ()) -> Iterator[bytes]:
    """The bytes of a whole `.lrq` file, in order, piece by piece.

    Everything a decoder checks about the header is checked before the first
    piece is produced, so a writer never starts a file it cannot finish.
    Section CRCs come from the Section objects.  ``groups`` (§10.4) follow
    the tensors; their members' tiles carry ``group``.
    """
    sections, lengths = [], []
    for t in tensors:
        for tile in t.tiles:
            for kind, want in zip(tile.own_kinds(), own_section_lengths(tile)):
                section = tile.sections[kind]
                if section.length != want:
                    raise ArgumentError(f"tensor '{t.name}': section '{kind}' has {section.length} bytes, "
                                        f"its parameters need {want}")
                sections.append(section)
                lengths.append(want)
    for g in groups:
        for kind, want in zip(SHARED_KINDS[g.scheme], group_section_lengths(g.scheme, g.columns, g.params)):
            if g.sections[kind].length != want:
                raise ArgumentError(f"group '{g.name}': section '{kind}' has {g.sections[kind].length} bytes, "
                                    f"its parameters need {want}")
            sections.append(g.sections[kind])
            lengths.append(want)
    header, offsets, end = _pack_header(tensors, metadata, lengths, [s.crc for s in sections], groups)
    return _pieces(header, offsets, end, sections, crc32c, content_version(tensors, groups))


def _pieces(header, offsets, end, sections, crc32c, version) -> Iterator[bytes]:
    yield _preamble(header, end, crc32c, version)
    yield header
    pos = PREAMBLE_SIZE + len(header)
    for offset, section in zip(offsets, sections):
        if offset > pos:
            yield bytes(offset - pos)  # zero padding [SEC-5]
        if section.length:
            yield section.data
        pos = offset + section.length

