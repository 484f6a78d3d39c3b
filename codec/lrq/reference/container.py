"""The `.lrq` v1 container: preamble, msgpack header, section table.

This module reads and writes the container exactly as ``spec/lrq-format.md``
describes it and checks every rule a decoder must check.  It knows which
sections each scheme has and how long they are, but not what the numbers in
them mean; that is the business of the scheme modules.

Rule IDs in error messages (``[PRE-3]`` …) refer to the spec.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import msgpack
import numpy as np

from ..errors import ArgumentError, ChecksumError, FormatError, UnsupportedError
from .layout import layout_size

MAGIC = b"\x89LRQ\r\n\x1a\n"
PREAMBLE_SIZE = 64
FORMAT_MAJOR = 1
# The newest minor this implementation reads and writes; a writer emits the
# lowest minor its content needs [VER-2] (see content_version).
FORMAT_MINOR = 5
# Bits of required_features this implementation knows (spec §4): bit 0,
# signcut_c16 (since 1.1), signcut weights c stored as binary16 × "c_scale";
# bit 1, shared_factor (since 1.2), groups of tensors sharing a right factor;
# bit 2, signcut_tensor (since 1.3), signcut tiles of tensors of order 3 to 8;
# bit 3, quant (since 1.5), tiles of the scheme "quant".
SIGNCUT_C16 = 1 << 0
SHARED_FACTOR = 1 << 1
SIGNCUT_TENSOR = 1 << 2
QUANT = 1 << 3
KNOWN_REQUIRED_FEATURES = SIGNCUT_C16 | SHARED_FACTOR | SIGNCUT_TENSOR | QUANT
# Bits of optional_features this implementation reads (spec §4): bit 0,
# private_release (since 1.4), tensors with a differential-privacy record
# (§10.6).  A decoder that does not know it ignores it [PRE-5].
PRIVATE_RELEASE = 1 << 0
KNOWN_OPTIONAL_FEATURES = PRIVATE_RELEASE
PRIVACY_MECHANISMS = ("complex-gaussian", "real-gaussian")
PRIVACY_KEYS = ("mechanism", "epsilon", "delta", "rank", "clip", "sensitivity", "noise_scale", "library")
PRIVACY_TOLERANCE = 2.0**-20  # [PRV-5], [PRV-6]
# [SC-3]: "c_scale" is 2^e with e in this range, so c_scale × binary16 is
# exact in binary32.
C_SCALE_EXPONENTS = (-125, 112)

MAX_HEADER_LENGTH = 16 * 1024 * 1024
MAX_DEPTH = 8
MAX_MAP_ENTRIES = 64
MAX_ARRAY_ELEMENTS = 1 << 20
MAX_STRING_BYTES = 65535
MAX_TENSORS = 65536
MAX_NAME_BYTES = 1024
MAX_NDIM = 8
MAX_DIM = (1 << 31) - 1
MAX_ELEMENTS = 1 << 48
MAX_PARAM = (1 << 31) - 1
MIN_PANEL, MAX_PANEL = 64, 1 << 20
MIN_GROUP, MAX_GROUP = 16, 1 << 20
DEFAULT_PANEL = 4096

SMALL_ALIGNMENT = 64
PAGE_ALIGNMENT = 4096
PAGE_ALIGNED_FROM = 1 << 20  # sections this long or longer start on a page

_PREAMBLE = struct.Struct("<8sHHIQQQQI12s")

# name -> (numpy dtype or None, itemsize, is floating point)
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
# Scheme parameters in the order writers emit them (optional ones only when
# present: "c_scale" marks a signcut tile with binary16 weights).
PARAM_KEYS = {
    "dense": ("storage",),
    "signcut": ("width", "c_scale"),
    "lplr": ("rank", "bits_l", "bits_r", "group", "scale_l", "scale_r"),
    "quant": ("bits", "group", "scale_bits", "scale"),
}

# Groups (spec §10.4): which sections and parameters the group holds once,
# and which each member tile holds, per scheme, in writer order.
GROUP_SCHEMES = ("signcut", "lplr")
SHARED_KINDS = {"signcut": ("c", "tt"), "lplr": ("r_codes", "r_scales")}
MEMBER_KINDS = {"signcut": ("s",), "lplr": ("l_codes", "l_scales")}
SHARED_PARAMS = {"signcut": ("width",), "lplr": ("rank", "bits_r", "group", "scale_r")}
MEMBER_PARAMS = {"signcut": (), "lplr": ("bits_l", "scale_l")}

CrcFunction = Callable[..., int]


def is_tensor_tile(scheme: str, shape: tuple) -> bool:
    """A signcut tile of a tensor of order 3 or more, a *tensor tile* (spec §10.5)."""
    return scheme == "signcut" and len(shape) >= 3


def tile_kinds(scheme: str, shape: tuple) -> tuple:
    """A tile's section kinds in table order; a tensor tile has "c" and
    "s0" … "s{d-1}", one sign matrix per mode [TNS-2]."""
    if is_tensor_tile(scheme, shape):
        return ("c",) + tuple(f"s{a}" for a in range(len(shape)))
    return SECTION_KINDS[scheme]


def align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def section_alignment(length: int) -> int:
    return PAGE_ALIGNMENT if length >= PAGE_ALIGNED_FROM else SMALL_ALIGNMENT


def factor_code_bytes(rows: int, k: int, bits: int) -> int:
    """Bytes of an LPLR code section: bit-planes up to 4 bits, else u8 codes."""
    if bits <= 4:
        return bits * layout_size(rows, k, 1)
    return layout_size(rows, k, 8)


def section_lengths(scheme: str, shape: tuple, params: dict) -> tuple:
    """The exact byte length of every section of a tile, in table order."""
    if scheme == "dense":
        return (math.prod(shape) * DTYPES[params["storage"]][1],)
    if is_tensor_tile(scheme, shape):  # [TNS-2]: c as binary32, then n_a x w sign matrices
        w = params["width"]
        return (4 * w,) + tuple(layout_size(n, w, 1) for n in shape)
    m, n = shape
    if scheme == "signcut":
        w = params["width"]
        c_bytes = 2 if "c_scale" in params else 4
        return (c_bytes * w, layout_size(w, n, 1), layout_size(m, w, 1))
    if scheme == "quant":  # §10.7: codes of m x n, packed scale codes, one exponent per row
        scale_code_bits = m * -(-n // params["group"]) * params["scale_bits"]
        return (factor_code_bytes(m, n, params["bits"]), -(-scale_code_bits // 8), m)
    r, g = params["rank"], params["group"]
    return (
        factor_code_bytes(r, n, params["bits_r"]),
        2 * r * (-(-n // g)),
        factor_code_bytes(m, r, params["bits_l"]),
        2 * m * (-(-r // g)),
    )


@dataclass
class Section:
    """One payload section: where it is, and its bytes (a view of the file)."""

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
                raise ChecksumError(
                    f"section '{self.kind}' at offset {self.offset}: CRC-32C is "
                    f"{actual:#010x}, the table says {self.crc:#010x} [SEC-6]"
                )
            self.verified = True
        return self.data


@dataclass
class TileRecord:
    """One tile of a tensor: its position, scheme, parameters and sections."""

    origin: tuple  # index of the tile's first element in the tensor
    shape: tuple  # the tile's own shape
    scheme: str
    params: dict
    sections: dict = field(default_factory=dict)  # kind -> Section
    # The name of the group a member tile belongs to (spec §10.4).  Its
    # ``params`` and ``sections`` then hold the group's shared ones too, so
    # it decodes as any tile of its scheme; only its own are in its entry.
    group: Optional[str] = None

    def section(self, kind: str, crc32c: CrcFunction) -> memoryview:
        return self.sections[kind].payload(crc32c)

    def own_kinds(self) -> tuple:
        """The kinds of the sections listed in the tile's own entry, in order."""
        return MEMBER_KINDS[self.scheme] if self.group is not None else tile_kinds(self.scheme, self.shape)


@dataclass
class GroupRecord:
    """A group of tensors sharing a right factor (spec §10.4)."""

    name: str
    scheme: str
    columns: int
    panel: int
    params: dict  # the shared parameters, SHARED_PARAMS[scheme]
    members: list  # tensor names
    sections: dict = field(default_factory=dict)  # kind -> Section, SHARED_KINDS[scheme]


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
    privacy: Optional[dict] = None  # §10.6


def tile_grid(shape: tuple, tile_shape: tuple) -> Iterator[tuple]:
    """(origin, shape) of every tile, in row-major grid order."""
    if len(shape) != 2:
        yield (0,) * len(shape), tuple(shape)
        return
    m, n = shape
    tm, tn = tile_shape
    for r0 in range(0, m, tm):
        for c0 in range(0, n, tn):
            yield (r0, c0), (min(tm, m - r0), min(tn, n - c0))


# --------------------------------------------------------------------------
# Writing


def header_object(tensors: list, metadata: Optional[dict], table: list, groups: list = ()) -> dict:
    """The header map with section entries taken from ``table`` in file order
    (every tensor's, then every group's shared sections, spec §10.4)."""
    entries = iter(table)
    out_tensors = []
    for t in tensors:
        tiles = []
        for tile in t.tiles:
            entry = {"scheme": tile.scheme}
            keys = MEMBER_PARAMS[tile.scheme] if tile.group is not None else PARAM_KEYS[tile.scheme]
            for key in keys:
                if key in tile.params:
                    entry[key] = tile.params[key]
            entry["sections"] = [list(next(entries)) for _ in tile.own_kinds()]
            tiles.append(entry)
        tmap = {
            "name": t.name,
            "shape": list(t.shape),
            "dtype": t.dtype,
            "tile_shape": list(t.tile_shape),
            "panel": t.panel,
            "tiles": tiles,
        }
        if t.rel_error is not None:
            tmap["rel_error"] = float(t.rel_error)
        if t.encoder is not None:
            tmap["encoder"] = t.encoder
        if t.privacy is not None:
            tmap["privacy"] = dict(t.privacy)
        out_tensors.append(tmap)
    header = {"tensors": out_tensors}
    if groups:
        header["groups"] = [_group_object(g, entries) for g in groups]
    if metadata:
        header["metadata"] = dict(metadata)
    return header


def _group_object(group: GroupRecord, entries) -> dict:
    out = {"name": group.name, "scheme": group.scheme, "columns": group.columns, "panel": group.panel}
    out.update((key, group.params[key]) for key in SHARED_PARAMS[group.scheme])
    out["members"] = list(group.members)
    out["sections"] = [list(next(entries)) for _ in SHARED_KINDS[group.scheme]]
    return out


def group_section_lengths(group: GroupRecord) -> tuple:
    """The lengths of a group's shared sections (spec §10.4): those of a tile
    of its scheme with no rows, which has exactly the right-factor sections."""
    probe = dict(group.params, bits_l=1) if group.scheme == "lplr" else group.params
    return section_lengths(group.scheme, (0, group.columns), probe)[: len(SHARED_KINDS[group.scheme])]


def _own_lengths(tile: TileRecord) -> tuple:
    lengths = section_lengths(tile.scheme, tile.shape, tile.params)
    return lengths[len(SHARED_KINDS[tile.scheme]):] if tile.group is not None else lengths


def _place(lengths: list, start: int) -> list:
    """Canonical offsets for sections of the given lengths [SEC-3]."""
    offsets, pos = [], start
    for length in lengths:
        pos = align(pos, section_alignment(length))
        offsets.append(pos)
        pos += length
    return offsets


def _layout(tensors, metadata, lengths, crcs, groups=()):
    """Pack the header, iterating until section offsets and header length agree.

    Offsets depend on the header's length and the header holds the offsets;
    both only grow as the other grows, so the iteration from zero converges.
    """
    header_length = 0
    for _ in range(64):
        offsets = _place(lengths, PREAMBLE_SIZE + header_length)
        table = [
            (kind, off, ln, crc) for kind, off, ln, crc in zip(_kinds(tensors, groups), offsets, lengths, crcs)
        ]
        raw = msgpack.packb(header_object(tensors, metadata, table, groups), use_single_float=True)
        if len(raw) == header_length:
            end = offsets[-1] + lengths[-1] if offsets else PREAMBLE_SIZE + header_length
            return raw, offsets, end
        header_length = len(raw)
    raise AssertionError("header layout did not converge")  # pragma: no cover


def _kinds(tensors, groups=()) -> list:
    return ([kind for t in tensors for tile in t.tiles for kind in tile.own_kinds()]
            + [kind for g in groups for kind in SHARED_KINDS[g.scheme]])


def content_version(tensors: list, groups: list = ()) -> tuple:
    """(minor, required_features, optional_features) of the lowest version that
    holds the tensors [VER-2].

    1.4 with the optional private_release when a tensor has a privacy record
    (§10.6); 1.3 with signcut_tensor when a tensor of order 3 or more has a signcut
    tile (§10.5); 1.2 with shared_factor when the file has groups (§10.4);
    1.1 with signcut_c16 when a signcut tile stores c as binary16 (the only
    files in which "c_scale" means something, [SC-4], [SC-5]); 1.0
    with no flags otherwise [PRE-10].  A tile of the scheme "quant" makes it
    1.5 with quant (§10.7, [QT-6]), whatever else the file holds.
    """
    c16 = any(tile.scheme == "signcut" and "c_scale" in tile.params for t in tensors for tile in t.tiles)
    tensor = any(is_tensor_tile(tile.scheme, tile.shape) for t in tensors for tile in t.tiles)
    required = (SIGNCUT_C16 if c16 else 0) | (SHARED_FACTOR if groups else 0) | (SIGNCUT_TENSOR if tensor else 0)
    quant = any(tile.scheme == "quant" for t in tensors for tile in t.tiles)
    required |= QUANT if quant else 0
    private = any(t.privacy is not None for t in tensors)  # 1.4, optional private_release [PRV-10]
    minor = 5 if quant else 4 if private else 3 if tensor else 2 if groups else 1 if c16 else 0
    return minor, required, (PRIVATE_RELEASE if private else 0)


def _preamble(header: bytes, file_length: int, crc32c: CrcFunction, version: tuple = (0, 0, 0)) -> bytes:
    minor, required, optional = version
    head = _PREAMBLE.pack(MAGIC, FORMAT_MAJOR, minor, 0, required, optional, len(header), file_length, 0, bytes(12))
    crc = crc32c(header, crc32c(head[:48]))
    return head[:48] + struct.pack("<I", crc) + bytes(12)


def planned_size(tensors: list, metadata: Optional[dict] = None) -> int:
    """File size for tensors whose tiles have params but maybe no payload.

    CRCs are taken at their widest msgpack encoding, so the real file is never
    larger than this.  Encoders use it to meet a bits-per-entry budget.
    """
    lengths = [ln for t in tensors for tile in t.tiles for ln in section_lengths(tile.scheme, tile.shape, tile.params)]
    _, _, end = _layout(tensors, metadata, lengths, [0xFFFFFFFF] * len(lengths))
    return end


def make_section(kind: str, data, crc32c: CrcFunction) -> Section:
    """A section built in memory by an encoder (offset assigned when written)."""
    view = memoryview(data).cast("B")
    return Section(kind, -1, len(view), crc32c(view) if len(view) else 0, view, verified=True)


def serialize(tensors: list, metadata: Optional[dict], crc32c: CrcFunction, groups: list = ()) -> Iterator[bytes]:
    """Yield the bytes of a whole `.lrq` file, in order, piece by piece.

    Section CRCs come from the Section objects (computed when the encoder made
    them, or read and verified from the file they came from).  ``groups``
    (spec §10.4) are written after the tensors; their members' tiles carry
    ``group`` and only their own sections are listed in their entries.
    """
    sections, lengths = [], []
    for t in tensors:
        for tile in t.tiles:
            for kind, want in zip(tile.own_kinds(), _own_lengths(tile)):
                section = tile.sections[kind]
                if section.length != want:
                    raise ArgumentError(
                        f"tensor '{t.name}': section '{kind}' has {section.length} bytes, its parameters need {want}"
                    )
                sections.append(section)
                lengths.append(want)
    for g in groups:
        for kind in SHARED_KINDS[g.scheme]:
            sections.append(g.sections[kind])
            lengths.append(g.sections[kind].length)
    header, offsets, end = _layout(tensors, metadata, lengths, [s.crc for s in sections], groups)
    yield _preamble(header, end, crc32c, content_version(tensors, groups))
    yield header
    pos = PREAMBLE_SIZE + len(header)
    for off, section in zip(offsets, sections):
        if off > pos:
            yield bytes(off - pos)
        if section.length:
            yield section.data
        pos = off + section.length


# --------------------------------------------------------------------------
# Reading


def _reject_ext(code, data):
    raise FormatError(f"header uses msgpack ext type {code}, which the format does not allow [HDR-2]")


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if type(key) is not str:
            raise FormatError("header map key is not a string [HDR-2]")
        if key in out:
            raise FormatError(f"header map has the key '{key}' twice [HDR-4]")
        out[key] = value
    return out


def _check_tree(obj, depth: int) -> None:
    """Types and nesting; ``depth`` is the depth obj has if it is a container."""
    if isinstance(obj, (dict, list)) and depth > MAX_DEPTH:
        raise FormatError(f"header nesting is deeper than {MAX_DEPTH} [LIM-3]")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_tree(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _check_tree(value, depth + 1)
    elif obj is None or type(obj) in (bool, int, float, str):
        if type(obj) is int and not -(1 << 63) <= obj < (1 << 64):
            raise FormatError("header integer out of range [HDR-2]")  # pragma: no cover
    else:
        raise FormatError(f"header holds a value of a type the format does not allow ({type(obj).__name__}) [HDR-2]")


# msgpack names the limit it enforced in its message; map it to the rule.
_MSGPACK_LIMIT_RULES = (
    ("max_map_len", "LIM-1"),
    ("max_array_len", "LIM-2"),
    ("max_str_len", "LIM-6"),
    ("max_bin_len", "HDR-2"),
    ("max_ext_len", "HDR-2"),
    ("not allowed for map key", "HDR-2"),
)


def load_header(raw: bytes) -> dict:
    """Decode and check the msgpack header: types, limits, no duplicate keys."""
    try:
        obj = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            object_pairs_hook=_pairs,
            ext_hook=_reject_ext,
            max_str_len=MAX_STRING_BYTES,
            max_bin_len=MAX_STRING_BYTES,
            max_array_len=MAX_ARRAY_ELEMENTS,
            max_map_len=MAX_MAP_ENTRIES,
            max_ext_len=MAX_STRING_BYTES,
        )
    except FormatError:
        raise
    except UnicodeDecodeError:
        raise FormatError("header holds a string that is not valid UTF-8 [HDR-3]") from None
    except Exception as exc:  # msgpack raises many types for bad input
        text = str(exc)
        rule = next((r for key, r in _MSGPACK_LIMIT_RULES if key in text), "HDR-1")
        raise FormatError(f"header is not one well-formed msgpack object within the limits: {text} [{rule}]") from None
    if not isinstance(obj, dict):
        raise FormatError("header is not a msgpack map [HDR-1]")
    _check_tree(obj, 1)
    return obj


class _Field:
    """Reads typed, range-checked values out of a header map."""

    def __init__(self, mapping: dict, where: str):
        self.map = mapping
        self.where = where

    def fail(self, message: str, rule: str):
        raise FormatError(f"{self.where}: {message} [{rule}]")

    def get(self, key: str, kind, rule: str, required: bool = True):
        if key not in self.map:
            if required:
                self.fail(f"required key '{key}' is missing", rule)
            return None
        value = self.map[key]
        if kind is float:
            ok = type(value) is float
        else:
            ok = type(value) is kind
        if not ok:
            self.fail(f"'{key}' must be of type {kind.__name__}", rule)
        return value

    def int_in(self, key: str, lo: int, hi: int, rule: str) -> int:
        value = self.get(key, int, rule)
        if not lo <= value <= hi:
            self.fail(f"'{key}' = {value} is outside [{lo}, {hi}]", rule)
        return value

    def int_list(self, key: str, rule: str) -> list:
        value = self.get(key, list, rule)
        if any(type(v) is not int for v in value):
            self.fail(f"'{key}' must be a list of integers", rule)
        return value


def _f32(value: float) -> float:
    # A float 64 beyond binary32's range rounds to an infinity [HDR-8], which
    # the key's range check then refuses; that is not worth a RuntimeWarning.
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def _positive_f32(f: "_Field", key: str, rule: str) -> float:
    """A float key whose binary32 value ([HDR-8]) is finite and > 0 (a super-scale)."""
    value = _f32(f.get(key, float, rule))
    if not (math.isfinite(value) and value > 0):
        f.fail(f"'{key}' must be a finite binary32 value > 0", rule)
    return value


def _c_scale(f: _Field, required: int) -> Optional[float]:
    """A signcut tile's optional "c_scale" [SC-3], [SC-4]."""
    # [SC-4]: the key means something only in a file that sets signcut_c16;
    # elsewhere it is an unknown key, ignored [HDR-9], and c is binary32.
    if "c_scale" not in f.map or not required & SIGNCUT_C16:
        return None
    value = _f32(f.get("c_scale", float, "SC-3"))
    lo, hi = C_SCALE_EXPONENTS
    if not math.isfinite(value) or value <= 0:
        f.fail(f"'c_scale' = {value} is not a power of two in [2^{lo}, 2^{hi}]", "SC-3")
    mantissa, exponent = math.frexp(value)
    if mantissa != 0.5 or not lo <= exponent - 1 <= hi:
        f.fail(f"'c_scale' = {value} is not a power of two in [2^{lo}, 2^{hi}]", "SC-3")
    return value


def _scheme_params(f: _Field, scheme: str, tensor_dtype: str, required: int = 0) -> dict:
    if scheme == "dense":
        storage = f.get("storage", str, "DN-1")
        if storage not in DTYPES:
            f.fail(f"unknown storage type '{storage}'", "DN-1")
        if DTYPES[tensor_dtype][2]:
            if storage not in FLOAT_STORAGE:
                f.fail(f"a {tensor_dtype} tensor needs float storage, not '{storage}'", "DN-2")
        elif storage != tensor_dtype:
            f.fail(f"a {tensor_dtype} tensor must be stored as {tensor_dtype}, not '{storage}'", "DN-2")
        return {"storage": storage}
    if not DTYPES[tensor_dtype][2]:
        f.fail(f"scheme '{scheme}' needs a floating-point tensor, not {tensor_dtype}", "TEN-6")
    if scheme == "quant":
        if not required & QUANT:
            f.fail("a quant tile in a file whose required_features does not set quant (bit 3)", "QT-6")
        params = {
            "bits": f.int_in("bits", 1, 8, "QT-1"),
            "group": f.int_in("group", MIN_GROUP, MAX_GROUP, "QT-1"),
            "scale_bits": f.int_in("scale_bits", 1, 8, "QT-1"),
        }
        if params["group"] & (params["group"] - 1):
            f.fail(f"'group' = {params['group']} is not a power of two", "QT-1")
        params["scale"] = _positive_f32(f, "scale", "QT-2")
        return params
    if scheme == "signcut":
        params = {"width": f.int_in("width", 0, MAX_PARAM, "SC-1")}
        c_scale = _c_scale(f, required)
        if c_scale is not None:
            params["c_scale"] = c_scale
        return params
    params = {
        "rank": f.int_in("rank", 0, MAX_PARAM, "LP-1"),
        "bits_l": f.int_in("bits_l", 1, 8, "LP-1"),
        "bits_r": f.int_in("bits_r", 1, 8, "LP-1"),
        "group": f.int_in("group", MIN_GROUP, MAX_GROUP, "LP-1"),
    }
    if params["group"] & (params["group"] - 1):
        f.fail(f"'group' = {params['group']} is not a power of two", "LP-1")
    for key in ("scale_l", "scale_r"):
        params[key] = _positive_f32(f, key, "LP-2")
    return params


def _parse_groups(top: _Field, required: int) -> list:
    """The groups of a file that sets shared_factor [GRP-1]-[GRP-5], [GRP-8];
    member names are matched to tensors later [GRP-4]."""
    if not required & SHARED_FACTOR:
        return []  # "groups" is an unknown key then [GRP-9]
    raw = top.get("groups", list, "GRP-8")
    if not raw:
        top.fail("required_features set shared_factor (bit 1) but 'groups' is empty", "GRP-8")
    if len(raw) > MAX_TENSORS:
        top.fail(f"more than {MAX_TENSORS} groups", "GRP-1")
    groups, names, members = [], set(), set()
    for k, obj in enumerate(raw):
        if not isinstance(obj, dict):
            top.fail(f"group #{k} is not a map", "GRP-1")
        f = _Field(obj, f"group #{k}")
        name = f.get("name", str, "GRP-1")
        if not 1 <= len(name.encode("utf-8")) <= MAX_NAME_BYTES or name in names:
            f.fail(f"group name '{name[:40]}' is empty, longer than {MAX_NAME_BYTES} bytes or used twice", "GRP-1")
        names.add(name)
        f.where = f"group '{name}'"
        scheme = f.get("scheme", str, "GRP-2")
        if scheme not in GROUP_SCHEMES:
            f.fail(f"scheme '{scheme}' cannot be shared (signcut or lplr)", "GRP-2")
        columns = f.int_in("columns", 1, MAX_DIM, "GRP-3")
        panel = f.int_in("panel", MIN_PANEL, MAX_PANEL, "GRP-3")
        if panel % 64:
            f.fail(f"panel {panel} is not a multiple of 64", "GRP-3")
        if scheme == "signcut":
            params = {"width": f.int_in("width", 0, MAX_PARAM, "GRP-2")}
        else:
            params = {"rank": f.int_in("rank", 0, MAX_PARAM, "GRP-2"), "bits_r": f.int_in("bits_r", 1, 8, "GRP-2"),
                      "group": f.int_in("group", MIN_GROUP, MAX_GROUP, "GRP-2")}
            if params["group"] & (params["group"] - 1):
                f.fail(f"'group' = {params['group']} is not a power of two", "GRP-2")
            params["scale_r"] = _positive_f32(f, "scale_r", "GRP-2")
        names_raw = f.get("members", list, "GRP-4")
        if not 1 <= len(names_raw) <= MAX_TENSORS or any(type(m) is not str for m in names_raw):
            f.fail("'members' must list 1 to 65536 tensor names", "GRP-4")
        for member in names_raw:
            if member in members:
                f.fail(f"tensor '{member}' is a member twice", "GRP-4")
            members.add(member)
        group = GroupRecord(name, scheme, columns, panel, params, list(names_raw))
        table = f.get("sections", list, "GRP-5")
        kinds = SHARED_KINDS[scheme]
        if len(table) != len(kinds):
            f.fail(f"has {len(table)} shared sections, scheme '{scheme}' needs {list(kinds)}", "GRP-5")
        for entry, kind, want in zip(table, kinds, group_section_lengths(group)):
            group.sections[kind] = _section_entry(f, entry, kind, want, "GRP-5", "GRP-5")
        groups.append(group)
    return groups


def _section_entry(f: _Field, entry, kind: str, want: int, rule: str, length_rule: str) -> Section:
    """One section entry [kind, offset, length, crc32c] [SEC-1], [SEC-2]."""
    if (
        not isinstance(entry, list)
        or len(entry) != 4
        or type(entry[0]) is not str
        or any(type(v) is not int for v in entry[1:])
    ):
        f.fail("a section entry must be [kind, offset, length, crc32c]", rule)
    kind_found, offset, length, crc = entry
    if kind_found != kind:
        f.fail(f"section '{kind_found}' where '{kind}' belongs", rule)
    if length != want:
        f.fail(f"section '{kind}' is {length} bytes, its parameters need {want}", length_rule)
    if not 0 <= crc <= 0xFFFFFFFF or offset < 0:
        f.fail(f"section '{kind}' has an out-of-range offset or CRC", rule)
    return Section(kind, offset, length, crc)


def _member_tile(tf: _Field, group: GroupRecord, tshape: tuple) -> TileRecord:
    """A member tile [GRP-7], resolved: the group's shared parameters and
    sections join its own, so it decodes as a tile of its scheme."""
    scheme = tf.get("scheme", str, "GRP-7")
    if scheme != group.scheme:
        tf.fail(f"scheme '{scheme}' in a member of the {group.scheme} group '{group.name}'", "GRP-7")
    params = dict(group.params)
    if scheme == "lplr":
        params["bits_l"] = tf.int_in("bits_l", 1, 8, "LP-1")
        params["scale_l"] = _positive_f32(tf, "scale_l", "LP-2")
    table = tf.get("sections", list, "SEC-1")
    kinds = MEMBER_KINDS[scheme]
    if len(table) != len(kinds):
        tf.fail(f"section table has {len(table)} entries, a {scheme} member tile has {len(kinds)}", "SEC-1")
    lengths = section_lengths(scheme, tshape, params)[len(SHARED_KINDS[scheme]):]
    sections = dict(group.sections)
    for entry, kind, want in zip(table, kinds, lengths):
        sections[kind] = _section_entry(tf, entry, kind, want, "SEC-1", "SEC-2")
    return TileRecord((0, 0), tshape, scheme, params, sections, group=group.name)


def _privacy(f: "_Field", obj: dict, shape: tuple, dtype: str) -> Optional[dict]:
    """A tensor's privacy record (§10.6) [PRV-1]-[PRV-7], its floats as binary32 values."""
    if "privacy" not in obj:
        return None
    record = obj["privacy"]
    if not isinstance(record, dict):
        f.fail("'privacy' is not a map", "PRV-1")
    extra = [key for key in record if key not in PRIVACY_KEYS]
    if extra:
        f.fail(f"the privacy record has keys the format does not define there: {extra[:4]}", "PRV-1")
    p = _Field(record, f.where + " privacy")
    mechanism = p.get("mechanism", str, "PRV-2")
    if mechanism not in PRIVACY_MECHANISMS:
        p.fail(f"mechanism '{mechanism[:40]}' is not one of {PRIVACY_MECHANISMS}", "PRV-2")
    epsilon = _f32(p.get("epsilon", float, "PRV-3"))
    delta = _f32(p.get("delta", float, "PRV-3"))
    if not 0 < epsilon < 1 or not 0 < delta < 1:
        p.fail(f"epsilon {epsilon} and delta {delta} must lie in (0, 1)", "PRV-3")
    if len(shape) != 2 or shape[0] != shape[1] or not DTYPES[dtype][2]:
        p.fail(f"a private release must be a square 2-D float tensor, not {list(shape)} {dtype}", "PRV-4")
    rank = p.int_in("rank", 1, shape[0], "PRV-4")
    clip = _f32(p.get("clip", float, "PRV-5"))
    sensitivity = _f32(p.get("sensitivity", float, "PRV-5"))
    if not (math.isfinite(clip) and clip > 0 and abs(sensitivity - clip * clip) <= PRIVACY_TOLERANCE * clip * clip):
        p.fail(f"sensitivity {sensitivity} is not clip^2 for clip {clip}", "PRV-5")
    noise_scale = _f32(p.get("noise_scale", float, "PRV-6"))
    calibrated = sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    if not abs(noise_scale - calibrated) <= PRIVACY_TOLERANCE * calibrated:
        p.fail(f"noise_scale {noise_scale} differs from sensitivity*sqrt(2 ln(1.25/delta))/epsilon = {calibrated}", "PRV-6")
    library = p.get("library", str, "PRV-7")
    if not 1 <= len(library.encode("utf-8")) <= 256:
        p.fail("library must be 1 to 256 bytes", "PRV-7")
    return {"mechanism": mechanism, "epsilon": epsilon, "delta": delta, "rank": rank, "clip": clip,
            "sensitivity": sensitivity, "noise_scale": noise_scale, "library": library}


def _parse_tensor(obj, index: int, seen: set, required: int = 0, member_of: Optional[dict] = None,
                  optional: int = 0) -> TensorRecord:
    if not isinstance(obj, dict):
        raise FormatError(f"tensor #{index} is not a map [TEN-1]")
    f = _Field(obj, f"tensor #{index}")
    name = f.get("name", str, "TEN-2")
    if not 1 <= len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        f.fail(f"name must be 1 to {MAX_NAME_BYTES} bytes of UTF-8", "TEN-2")
    if name in seen:
        f.fail(f"tensor name '{name}' appears twice", "TEN-2")
    seen.add(name)
    f.where = f"tensor '{name}'"
    shape = tuple(f.int_list("shape", "TEN-3"))
    if len(shape) > MAX_NDIM or any(not 1 <= d <= MAX_DIM for d in shape):
        f.fail(f"shape {list(shape)} needs 0 to {MAX_NDIM} dims, each in [1, 2^31-1]", "TEN-3")
    if math.prod(shape) > MAX_ELEMENTS:
        f.fail("shape has more than 2^48 elements", "TEN-3")
    dtype = f.get("dtype", str, "TEN-4")
    if dtype not in DTYPES:
        f.fail(f"unknown dtype '{dtype}'", "TEN-4")
    tile_shape = tuple(f.int_list("tile_shape", "TIL-1"))
    if len(tile_shape) != len(shape) or any(not 1 <= t <= d for t, d in zip(tile_shape, shape)):
        f.fail(f"tile_shape {list(tile_shape)} does not fit shape {list(shape)}", "TIL-1")
    if len(shape) != 2 and tile_shape != shape:
        f.fail("a tensor that is not 2-D has exactly one tile (tile_shape = shape)", "TIL-2")
    panel = f.int_in("panel", MIN_PANEL, MAX_PANEL, "TEN-5")
    if panel % 64:
        f.fail(f"panel {panel} is not a multiple of 64", "TEN-5")
    tiles_raw = f.get("tiles", list, "TIL-3")
    # Compare counts arithmetically before building anything per tile [LIM-7]:
    # a tiny header can describe a grid of 2^48 tiles.
    grid_size = math.prod(-(-d // t) for d, t in zip(shape, tile_shape))
    if len(tiles_raw) != grid_size:
        f.fail(f"has {len(tiles_raw)} tiles, its grid needs {grid_size}", "TIL-3")
    grid = list(tile_grid(shape, tile_shape))
    rel_error = f.get("rel_error", float, "TEN-7", required=False)
    if rel_error is not None:
        rel_error = _f32(rel_error)  # [HDR-8]: float keys mean binary32 values
    if rel_error is not None and not (math.isfinite(rel_error) and rel_error >= 0):
        f.fail("rel_error must be finite and >= 0", "TEN-7")
    encoder = f.get("encoder", dict, "TEN-8", required=False)
    group = (member_of or {}).get(name)
    if group is not None:
        if len(shape) != 2 or shape[1] != group.columns or not DTYPES[dtype][2] or tile_shape != shape or panel != group.panel:
            f.fail(f"a member of group '{group.name}' is a 2-D float tensor of {group.columns} columns, one tile "
                   f"and panel {group.panel}, not shape {list(shape)}, {dtype}, tile_shape {list(tile_shape)}, "
                   f"panel {panel}", "GRP-6")
        if not isinstance(tiles_raw[0], dict):
            f.fail("tile #0 is not a map", "TIL-4")
        tile = _member_tile(_Field(tiles_raw[0], f"tensor '{name}' tile #0"), group, shape)
        privacy = _privacy(f, obj, shape, dtype) if optional & KNOWN_OPTIONAL_FEATURES & PRIVATE_RELEASE else None
        return TensorRecord(name, shape, dtype, tile_shape, panel, [tile], rel_error, encoder, privacy)
    tiles = []
    for k, (tile_obj, (origin, tshape)) in enumerate(zip(tiles_raw, grid)):
        if not isinstance(tile_obj, dict):
            f.fail(f"tile #{k} is not a map", "TIL-4")
        tf = _Field(tile_obj, f"tensor '{name}' tile #{k}")
        scheme = tf.get("scheme", str, "TIL-4")
        if scheme not in SCHEMES:
            tf.fail(f"unknown scheme '{scheme}'", "TIL-4")
        # [TNS-1]: a signcut tile of a tensor of order 3 to 8 only in a file
        # that sets signcut_tensor; elsewhere [TEN-6] as in 1.0.
        tensor_tile = is_tensor_tile(scheme, shape) and bool(required & SIGNCUT_TENSOR)
        if scheme != "dense" and len(shape) != 2 and not tensor_tile:
            tf.fail(f"scheme '{scheme}' needs a 2-D tensor", "TEN-6")
        params = _scheme_params(tf, scheme, dtype, required)
        if tensor_tile:
            params.pop("c_scale", None)  # [TNS-2]: an unknown key in a tensor tile, c is binary32
        table = tf.get("sections", list, "SEC-1")
        kinds = tile_kinds(scheme, shape)
        if len(table) != len(kinds):
            tf.fail(f"section table has {len(table)} entries, scheme '{scheme}' has {len(kinds)}", "SEC-1")
        try:
            lengths = section_lengths(scheme, tshape, params)
        except OverflowError:  # pragma: no cover - Python ints do not overflow
            tf.fail("section sizes overflow", "LIM-5")
        sections = {kind: _section_entry(tf, entry, kind, want, "SEC-1", "SEC-2")
                    for entry, kind, want in zip(table, kinds, lengths)}
        tiles.append(TileRecord(origin, tshape, scheme, params, sections))
    # Without private_release, "privacy" is an unknown key [PRV-9].
    privacy = _privacy(f, obj, shape, dtype) if optional & KNOWN_OPTIONAL_FEATURES & PRIVATE_RELEASE else None
    return TensorRecord(name, shape, dtype, tile_shape, panel, tiles, rel_error, encoder, privacy)


@dataclass
class FileRecord:
    tensors: list
    metadata: dict
    required_features: int
    optional_features: int
    minor: int
    groups: list = field(default_factory=list)


def parse(buf, crc32c: CrcFunction, *, verify_sections: bool = True) -> FileRecord:
    """Parse and check a whole `.lrq` file held in ``buf`` (bytes or a mapping).

    With ``verify_sections`` every section CRC is checked now; otherwise each
    is checked on first use.  The section views point into ``buf``.
    """
    try:
        mv = memoryview(buf).cast("B")
    except TypeError:
        raise ArgumentError(f"a .lrq file is read from bytes-like data, not {type(buf).__name__}") from None
    size = len(mv)
    if size < PREAMBLE_SIZE:
        if bytes(mv[: min(size, 8)]) != MAGIC[: min(size, 8)]:
            raise FormatError("not an .lrq file: bad magic [PRE-1]")
        if size >= 10 and struct.unpack_from("<H", mv, 8)[0] != FORMAT_MAJOR:
            raise UnsupportedError(f"file is format major version {struct.unpack_from('<H', mv, 8)[0]}; "
                                   f"this library reads major version {FORMAT_MAJOR} [PRE-2]")
        raise FormatError(f"file is {size} bytes, shorter than the 64-byte preamble [PRE-8]")
    magic, major, minor, reserved_a, required, optional, header_length, file_length, header_crc, reserved_b = (
        _PREAMBLE.unpack_from(mv, 0)
    )
    if magic != MAGIC:
        raise FormatError("not an .lrq file: bad magic [PRE-1]")
    if major != FORMAT_MAJOR:
        raise UnsupportedError(
            f"file is format version {major}.{minor}; this library reads major version {FORMAT_MAJOR} [PRE-2]"
        )
    if reserved_a or any(reserved_b):
        raise FormatError("reserved preamble bytes are not zero [PRE-3]")
    unknown = required & ~KNOWN_REQUIRED_FEATURES
    if unknown:
        raise UnsupportedError(f"file needs required features {unknown:#x} that this library does not implement [PRE-4]")
    if not 1 <= header_length <= MAX_HEADER_LENGTH:
        raise FormatError(f"header length {header_length} is outside [1, {MAX_HEADER_LENGTH}] [PRE-6]")
    if file_length != size:
        raise FormatError(f"preamble says the file is {file_length} bytes but it is {size} (truncated or extended) [PRE-7]")
    header_end = PREAMBLE_SIZE + header_length
    if header_end > size:
        raise FormatError("header runs past the end of the file [PRE-7]")
    actual = crc32c(mv[PREAMBLE_SIZE:header_end], crc32c(mv[:48]))
    if actual != header_crc:
        raise ChecksumError(f"header CRC-32C is {actual:#010x}, the preamble says {header_crc:#010x} [PRE-9]")
    header = load_header(bytes(mv[PREAMBLE_SIZE:header_end]))
    top = _Field(header, "header")
    tensors_raw = top.get("tensors", list, "HDR-5")
    if len(tensors_raw) > MAX_TENSORS:
        top.fail(f"more than {MAX_TENSORS} tensors", "LIM-4")
    metadata = top.get("metadata", dict, "HDR-6", required=False) or {}
    if any(type(v) is not str for v in metadata.values()):
        top.fail("metadata values must be strings", "HDR-6")
    groups = _parse_groups(top, required)
    member_of = {name: g for g in groups for name in g.members}
    seen: set = set()
    tensors = [_parse_tensor(obj, i, seen, required, member_of, optional) for i, obj in enumerate(tensors_raw)]
    for name, g in member_of.items():
        if name not in seen:
            raise FormatError(f"group '{g.name}': member '{name}' is not a tensor of the file [GRP-4]")
    if required & SIGNCUT_C16 and not content_version(tensors)[1] & SIGNCUT_C16:
        raise FormatError("required_features set signcut_c16 (bit 0) but no signcut tile has 'c_scale' [SC-5]")
    if optional & KNOWN_OPTIONAL_FEATURES & PRIVATE_RELEASE and not any(t.privacy for t in tensors):
        raise FormatError("optional_features set private_release (bit 0) but no tensor has a 'privacy' record [PRV-8]")
    if required & QUANT and not content_version(tensors)[1] & QUANT:
        raise FormatError("required_features set quant (bit 3) but no tile has the scheme 'quant' [QT-6]")
    if required & SIGNCUT_TENSOR and not content_version(tensors)[1] & SIGNCUT_TENSOR:
        raise FormatError("required_features set signcut_tensor (bit 2) but no tensor of order 3 or more has a "
                          "signcut tile [TNS-3]")
    _check_placement(mv, tensors, header_end, size, groups)
    if verify_sections:
        for t in tensors:
            for tile in t.tiles:
                for section in tile.sections.values():
                    section.payload(crc32c)
    return FileRecord(tensors, metadata, required, optional, minor, groups)


def _check_placement(mv: memoryview, tensors: list, header_end: int, size: int, groups: list = ()) -> None:
    """Sections sit at their canonical offsets, padding is zero, no trailing bytes
    (tensors' own sections, then the groups' shared ones, spec §10.4)."""
    pos = header_end
    sequence = [(f"tensor '{t.name}'", tile.sections[kind]) for t in tensors for tile in t.tiles for kind in tile.own_kinds()]
    sequence += [(f"group '{g.name}'", g.sections[kind]) for g in groups for kind in SHARED_KINDS[g.scheme]]
    for owner, section in sequence:
        want = align(pos, section_alignment(section.length))
        if section.offset != want:
            raise FormatError(
                f"{owner}: section '{section.kind}' is at offset {section.offset}; "
                f"the canonical offset is {want} [SEC-3]"
            )
        end = want + section.length
        if end > size:
            raise FormatError(f"{owner}: section '{section.kind}' runs past the end of the file [SEC-4]")
        if any(mv[pos:want]):
            raise FormatError(f"non-zero padding bytes before offset {want} [SEC-5]")
        section.data = mv[want:end]
        pos = end
    if pos != size:
        raise FormatError(f"{size - pos} bytes follow the last section [SEC-4]")


def group_of(name: str, tensors: list) -> GroupRecord:
    """Make the one-tile tensors ``tensors`` the members of a group (spec §10.4).

    Their tiles must have one scheme, equal shared parameters and byte-equal
    shared sections (an encoder that fits one right factor gives them that);
    the tiles are marked as members, and the group holds the shared part.
    """
    first = tensors[0].tiles[0]
    scheme = first.scheme
    if scheme not in GROUP_SCHEMES or "c_scale" in first.params:
        raise ArgumentError(f"group '{name}': a group shares a signcut (f32 c) or lplr right factor, not '{scheme}'")
    shared = {key: first.params[key] for key in SHARED_PARAMS[scheme]}
    for t in tensors:
        tile = t.tiles[0]
        if (len(t.tiles) != 1 or len(t.shape) != 2 or tile.scheme != scheme or t.shape[1] != tensors[0].shape[1]
                or t.panel != tensors[0].panel or any(tile.params.get(k) != v for k, v in shared.items())
                or "c_scale" in tile.params
                or any(bytes(tile.sections[k].data) != bytes(first.sections[k].data) for k in SHARED_KINDS[scheme])):
            raise ArgumentError(f"group '{name}': tensor '{t.name}' does not share the right factor of '{tensors[0].name}'")
        tile.group = name
    return GroupRecord(name, scheme, tensors[0].shape[1], tensors[0].panel, shared, [t.name for t in tensors],
                       {k: first.sections[k] for k in SHARED_KINDS[scheme]})
