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
FORMAT_MINOR = 1
# Bits of required_features this implementation knows (spec §4): bit 0,
# signcut_c16 (since 1.1), signcut weights c stored as binary16 × "c_scale".
SIGNCUT_C16 = 1 << 0
KNOWN_REQUIRED_FEATURES = SIGNCUT_C16
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
SCHEMES = ("signcut", "lplr", "dense")
SECTION_KINDS = {
    "dense": ("values",),
    "signcut": ("c", "tt", "s"),
    "lplr": ("r_codes", "r_scales", "l_codes", "l_scales"),
}
# Scheme parameters in the order writers emit them (optional ones only when
# present: "c_scale" marks a signcut tile with binary16 weights).
PARAM_KEYS = {
    "dense": ("storage",),
    "signcut": ("width", "c_scale"),
    "lplr": ("rank", "bits_l", "bits_r", "group", "scale_l", "scale_r"),
}

CrcFunction = Callable[..., int]


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
    m, n = shape
    if scheme == "signcut":
        w = params["width"]
        c_bytes = 2 if "c_scale" in params else 4
        return (c_bytes * w, layout_size(w, n, 1), layout_size(m, w, 1))
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

    def section(self, kind: str, crc32c: CrcFunction) -> memoryview:
        return self.sections[kind].payload(crc32c)


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


def header_object(tensors: list, metadata: Optional[dict], table: list) -> dict:
    """The header map with section entries taken from ``table`` in file order."""
    entries = iter(table)
    out_tensors = []
    for t in tensors:
        tiles = []
        for tile in t.tiles:
            entry = {"scheme": tile.scheme}
            for key in PARAM_KEYS[tile.scheme]:
                if key in tile.params:
                    entry[key] = tile.params[key]
            entry["sections"] = [list(next(entries)) for _ in SECTION_KINDS[tile.scheme]]
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
        out_tensors.append(tmap)
    header = {"tensors": out_tensors}
    if metadata:
        header["metadata"] = dict(metadata)
    return header


def _place(lengths: list, start: int) -> list:
    """Canonical offsets for sections of the given lengths [SEC-3]."""
    offsets, pos = [], start
    for length in lengths:
        pos = align(pos, section_alignment(length))
        offsets.append(pos)
        pos += length
    return offsets


def _layout(tensors, metadata, lengths, crcs):
    """Pack the header, iterating until section offsets and header length agree.

    Offsets depend on the header's length and the header holds the offsets;
    both only grow as the other grows, so the iteration from zero converges.
    """
    header_length = 0
    for _ in range(64):
        offsets = _place(lengths, PREAMBLE_SIZE + header_length)
        table = [
            (kind, off, ln, crc) for kind, off, ln, crc in zip(_kinds(tensors), offsets, lengths, crcs)
        ]
        raw = msgpack.packb(header_object(tensors, metadata, table), use_single_float=True)
        if len(raw) == header_length:
            end = offsets[-1] + lengths[-1] if offsets else PREAMBLE_SIZE + header_length
            return raw, offsets, end
        header_length = len(raw)
    raise AssertionError("header layout did not converge")  # pragma: no cover


def _kinds(tensors) -> list:
    return [kind for t in tensors for tile in t.tiles for kind in SECTION_KINDS[tile.scheme]]


def content_version(tensors: list) -> tuple:
    """(minor, required_features) of the lowest version that holds the tensors [VER-2].

    1.1 with signcut_c16 when a signcut tile stores c as binary16 (the only
    files in which "c_scale" means something, [SC-4], [SC-5]); 1.0
    with no flags otherwise [PRE-10].
    """
    c16 = any(tile.scheme == "signcut" and "c_scale" in tile.params for t in tensors for tile in t.tiles)
    return (1, SIGNCUT_C16) if c16 else (0, 0)


def _preamble(header: bytes, file_length: int, crc32c: CrcFunction, version: tuple = (0, 0)) -> bytes:
    minor, required = version
    head = _PREAMBLE.pack(MAGIC, FORMAT_MAJOR, minor, 0, required, 0, len(header), file_length, 0, bytes(12))
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


def serialize(tensors: list, metadata: Optional[dict], crc32c: CrcFunction) -> Iterator[bytes]:
    """Yield the bytes of a whole `.lrq` file, in order, piece by piece.

    Section CRCs come from the Section objects (computed when the encoder made
    them, or read and verified from the file they came from).
    """
    sections, lengths = [], []
    for t in tensors:
        for tile in t.tiles:
            expected = section_lengths(tile.scheme, tile.shape, tile.params)
            for kind, want in zip(SECTION_KINDS[tile.scheme], expected):
                section = tile.sections[kind]
                if section.length != want:
                    raise ArgumentError(
                        f"tensor '{t.name}': section '{kind}' has {section.length} bytes, its parameters need {want}"
                    )
                sections.append(section)
                lengths.append(want)
    header, offsets, end = _layout(tensors, metadata, lengths, [s.crc for s in sections])
    yield _preamble(header, end, crc32c, content_version(tensors))
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
        value = _f32(f.get(key, float, "LP-2"))
        if not (math.isfinite(value) and value > 0):
            f.fail(f"'{key}' must be a finite binary32 value > 0", "LP-2")
        params[key] = value
    return params


def _parse_tensor(obj, index: int, seen: set, required: int = 0) -> TensorRecord:
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
    tiles = []
    for k, (tile_obj, (origin, tshape)) in enumerate(zip(tiles_raw, grid)):
        if not isinstance(tile_obj, dict):
            f.fail(f"tile #{k} is not a map", "TIL-4")
        tf = _Field(tile_obj, f"tensor '{name}' tile #{k}")
        scheme = tf.get("scheme", str, "TIL-4")
        if scheme not in SCHEMES:
            tf.fail(f"unknown scheme '{scheme}'", "TIL-4")
        if scheme != "dense" and len(shape) != 2:
            tf.fail(f"scheme '{scheme}' needs a 2-D tensor", "TEN-6")
        params = _scheme_params(tf, scheme, dtype, required)
        table = tf.get("sections", list, "SEC-1")
        kinds = SECTION_KINDS[scheme]
        if len(table) != len(kinds):
            tf.fail(f"section table has {len(table)} entries, scheme '{scheme}' has {len(kinds)}", "SEC-1")
        try:
            lengths = section_lengths(scheme, tshape, params)
        except OverflowError:  # pragma: no cover - Python ints do not overflow
            tf.fail("section sizes overflow", "LIM-5")
        sections = {}
        for entry, kind, want in zip(table, kinds, lengths):
            if (
                not isinstance(entry, list)
                or len(entry) != 4
                or type(entry[0]) is not str
                or any(type(v) is not int for v in entry[1:])
            ):
                tf.fail("a section entry must be [kind, offset, length, crc32c]", "SEC-1")
            kind_found, offset, length, crc = entry
            if kind_found != kind:
                tf.fail(f"section '{kind_found}' where '{kind}' belongs", "SEC-1")
            if length != want:
                tf.fail(f"section '{kind}' is {length} bytes, its parameters need {want}", "SEC-2")
            if not 0 <= crc <= 0xFFFFFFFF or offset < 0:
                tf.fail(f"section '{kind}' has an out-of-range offset or CRC", "SEC-1")
            sections[kind] = Section(kind, offset, length, crc)
        tiles.append(TileRecord(origin, tshape, scheme, params, sections))
    return TensorRecord(name, shape, dtype, tile_shape, panel, tiles, rel_error, encoder)


@dataclass
class FileRecord:
    tensors: list
    metadata: dict
    required_features: int
    optional_features: int
    minor: int


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
    seen: set = set()
    tensors = [_parse_tensor(obj, i, seen, required) for i, obj in enumerate(tensors_raw)]
    if required & SIGNCUT_C16 and not content_version(tensors)[1]:
        raise FormatError("required_features set signcut_c16 (bit 0) but no signcut tile has 'c_scale' [SC-5]")
    _check_placement(mv, tensors, header_end, size)
    if verify_sections:
        for t in tensors:
            for tile in t.tiles:
                for section in tile.sections.values():
                    section.payload(crc32c)
    return FileRecord(tensors, metadata, required, optional, minor)


def _check_placement(mv: memoryview, tensors: list, header_end: int, size: int) -> None:
    """Sections sit at their canonical offsets, padding is zero, no trailing bytes."""
    pos = header_end
    for t in tensors:
        for tile in t.tiles:
            for section in tile.sections.values():
                want = align(pos, section_alignment(section.length))
                if section.offset != want:
                    raise FormatError(
                        f"tensor '{t.name}': section '{section.kind}' is at offset {section.offset}; "
                        f"the canonical offset is {want} [SEC-3]"
                    )
                end = want + section.length
                if end > size:
                    raise FormatError(f"tensor '{t.name}': section '{section.kind}' runs past the end of the file [SEC-4]")
                if any(mv[pos:want]):
                    raise FormatError(f"non-zero padding bytes before offset {want} [SEC-5]")
                section.data = mv[want:end]
                pos = end
    if pos != size:
        raise FormatError(f"{size - pos} bytes follow the last section [SEC-4]")
