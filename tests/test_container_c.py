"""The C container parser (``lrq_file_*``, used by ``lrq.loads`` and ``lrq.open``)
against the pure-Python reference parser (``lrq.reference``), and on hostile files.

The reference parser is the spec's executable twin, so the C parser must accept
exactly the files it accepts, deliver the same records, and reject every other
file with the same error class.  A file's verdict here is the verdict of a
decoder that reads the whole file: the C side opens with every checksum and
content rule verified; the reference side parses with every checksum verified
and then runs its scheme decoders' content checks on every tile.

Files come from three places: valid files built from random tiles of every
scheme; the same with one content defect planted before the checksums are
computed (so it reaches the content rules); and mutations of valid files --
blind ones (flips, insertions, deletions, truncations), header byte edits with
the header checksum repaired, and edits of the decoded header object, re-placed
canonically, so that they reach each header rule.  ``tests/c/test_container.c``
runs the same parser under ASan and UBSan.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrq
from c_harness import needs_gcc, run_sanitized
from lrq import _native, io
from lrq.errors import ChecksumError, FormatError, LrqError, UnsupportedError
from lrq.reference import container, dense, layout, lplr, signcut
from lrq.reference import crc32c as reference_crc32c

SETTINGS = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")
OTHER_DTYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")
KINDS = ("signcut", "lplr", "dense", "mixed", "nd", "integer", "scalar")


# ---------------------------------------------------------------------------
# Verdicts


def reference_check(data: bytes) -> container.FileRecord:
    """The reference decoder's checks of a whole file, without its products.

    ``reference.decode`` would build every tensor, which a valid file may make
    huge (a signcut tile of width 0 decodes to zeros of any size); the factor
    loaders run the same content rules on the sections alone.
    """
    record = container.parse(data, reference_crc32c, verify_sections=True)
    for t in record.tensors:
        for tile in t.tiles:
            if tile.scheme == "dense":
                dense.load(tile.section("values", reference_crc32c), tile.params["storage"], tile.shape)
            elif tile.scheme == "signcut":
                signcut.factors(tile, t.panel, reference_crc32c)
            else:
                lplr.factors(tile, t.panel, reference_crc32c)
    return record


def verdict(parse, data: bytes):
    """"ok" or the LrqError subclass raised; any other exception fails the test."""
    try:
        parse(data)
    except LrqError as exc:
        return type(exc)
    return "ok"


def c_parse(data: bytes) -> container.FileRecord:
    return io._parse(data, verify=True)


def assert_same_verdict(data: bytes):
    ours, theirs = verdict(c_parse, data), verdict(reference_check, data)
    assert ours == theirs, (ours, theirs, c_message(data))
    return ours


def c_message(data: bytes) -> str:
    try:
        c_parse(data)
    except LrqError as exc:
        return str(exc)
    return ""


def assert_same_records(ours: container.FileRecord, theirs: container.FileRecord) -> None:
    assert ours.metadata == theirs.metadata
    assert (ours.minor, ours.required_features, ours.optional_features) == (
        theirs.minor, theirs.required_features, theirs.optional_features)
    assert len(ours.tensors) == len(theirs.tensors)
    for a, b in zip(ours.tensors, theirs.tensors):
        assert (a.name, a.shape, a.dtype, a.tile_shape, a.panel, a.rel_error, a.encoder) == (
            b.name, b.shape, b.dtype, b.tile_shape, b.panel, b.rel_error, b.encoder)
        assert len(a.tiles) == len(b.tiles)
        for ta, tb in zip(a.tiles, b.tiles):
            assert (ta.origin, ta.shape, ta.scheme, ta.params) == (tb.origin, tb.shape, tb.scheme, tb.params)
            assert list(ta.sections) == list(tb.sections)
            for sa, sb in zip(ta.sections.values(), tb.sections.values()):
                assert (sa.kind, sa.offset, sa.length, sa.crc) == (sb.kind, sb.offset, sb.length, sb.crc)
                assert bytes(sa.payload()) == bytes(sb.data)


# ---------------------------------------------------------------------------
# Valid files, built from random tiles


def word_offset(rows: int, k: int, row: int, chunk: int, panel: int, wc: int, ws: int) -> int:
    """Spec §9.3: the byte offset of word(row, chunk) of an interleaved matrix."""
    kc = -(-k // 16) * (16 // wc)
    cpp = panel // wc
    p, t = chunk // cpp, row // 16
    c_p = min(kc, (p + 1) * cpp) - p * cpp
    h_t = min(rows, 16 * t + 16) - 16 * t
    return rows * (p * cpp) * ws + 16 * t * c_p * ws + (chunk - p * cpp) * h_t * ws + (row % 16) * ws


def set_padding(buf: bytearray, rows: int, k: int, panel: int, elem_bits: int, row: int) -> bool:
    """Set one padding element of an interleaved matrix; False if it has none."""
    if rows == 0 or k % 16 == 0:
        return False
    if elem_bits == 1:
        offset = word_offset(rows, k, row, k // 16, panel, 16, 2)
        bit = k % 16
        buf[offset + bit // 8] |= 1 << (bit % 8)
    else:
        # Byte 3 of a row's last 4-byte word is element 16 * ceil(k/16) - 1,
        # padding whenever k is not a multiple of 16.
        offset = word_offset(rows, k, row, -(-k // 16) * 4 - 1, panel, 4, 4)
        buf[offset + 3] = 1
    return True


def dense_values(rng: np.random.Generator, dtype: str, shape: tuple) -> np.ndarray:
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dtype in FLOAT_DTYPES:
        return rng.standard_normal(shape).astype(np.float64 if dtype == "float64" else np.float32)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, info.max, shape, dtype=np.dtype(dtype), endpoint=True)


def plant(rng, sections: dict, scheme: str, params: dict, shape: tuple, panel: int) -> None:
    """Break one content rule of a tile's sections, chosen among those its
    scheme and sizes can break (a tile with nothing to break stays valid)."""
    choices = []
    if scheme == "signcut":
        (m, n), w = shape, params["width"]
        if w:
            choices.append(lambda: sections["c"].__setitem__(slice(4 * (w - 1), 4 * w), struct.pack("<f", math.nan)))
        if w and n % 16:
            choices.append(lambda: set_padding(sections["tt"], w, n, panel, 1, w - 1))
        if m and w % 16:
            choices.append(lambda: set_padding(sections["s"], m, w, panel, 1, m - 1))
    elif scheme == "lplr":
        rows, k, bits = params["rank"], shape[1], params["bits_r"]  # the R factor's codes
        if sections["l_scales"]:
            choices.append(lambda: sections["l_scales"].__setitem__(slice(0, 2), b"\x00\x80"))  # -0.0
            choices.append(lambda: sections["l_scales"].__setitem__(slice(-2, None), b"\x00\x7c"))  # +inf
        if sections["r_scales"]:
            choices.append(lambda: sections["r_scales"].__setitem__(slice(0, 2), b"\x00\xbc"))  # -1.0
        if 5 <= bits < 8 and rows and k:
            choices.append(lambda: sections["r_codes"].__setitem__(0, 1 << bits))  # element (0, 0)
        if rows and k % 16:  # in plane 0 when the codes are bit-planes
            choices.append(lambda: set_padding(sections["r_codes"], rows, k, panel, 8 if bits >= 5 else 1, rows - 1))
    elif params["storage"] in FLOAT_DTYPES:
        nan = {"float64": b"\x00\x00\x00\x00\x00\x00\xf8\x7f", "float32": b"\x00\x00\x80\xff",
               "float16": b"\x00\x7e", "bfloat16": b"\x80\x7f"}[params["storage"]]
        choices.append(lambda: sections["values"].__setitem__(slice(-len(nan), None), nan))
    elif params["storage"] == "bool":
        choices.append(lambda: sections["values"].__setitem__(0, 2))
    if choices:
        choices[int(rng.integers(0, len(choices)))]()


def make_tile(rng, scheme: str, dtype: str, shape: tuple, panel: int, defective: bool) -> tuple:
    """(params, sections as bytearrays) of a random tile."""
    if scheme == "signcut":
        m, n = shape
        w = int(rng.integers(0, 40))
        params = {"width": w}
        sections = {
            "c": rng.standard_normal(w).astype("<f4").tobytes(),
            "tt": layout.pack_interleaved(rng.integers(0, 2, (w, n), dtype=np.uint8), 1, panel).tobytes(),
            "s": layout.pack_interleaved(rng.integers(0, 2, (m, w), dtype=np.uint8), 1, panel).tobytes(),
        }
    elif scheme == "lplr":
        m, n = shape
        r = int(rng.integers(0, 12))
        bits_l, bits_r = (int(b) for b in rng.integers(1, 9, 2))
        group = int(rng.choice([16, 32, 128]))
        left = (rng.integers(0, 2**bits_l, (m, r), dtype=np.uint8),
                rng.uniform(0, 2, (m, -(-r // group))).astype(np.float16), 0.5)
        right = (rng.integers(0, 2**bits_r, (r, n), dtype=np.uint8),
                 rng.uniform(0, 2, (r, -(-n // group))).astype(np.float16), 3.0)
        params, sections = lplr.params_and_sections(r, bits_l, bits_r, group, left, right, panel)
    else:
        storage = str(rng.choice(FLOAT_DTYPES)) if dtype in FLOAT_DTYPES else dtype
        params = {"storage": storage}
        sections = {"values": dense.store(dense_values(rng, dtype, shape), storage)}
    sections = {kind: bytearray(data) for kind, data in sections.items()}
    if defective:
        plant(rng, sections, scheme, params, shape, panel)
    return params, sections


def make_tensor(rng, name: str, kind: str, defects: float = 0.0) -> container.TensorRecord:
    """A random tensor of the given kind; each tile breaks a content rule
    with probability ``defects``."""
    panel = int(rng.choice([64, 128, 4096]))
    if kind in ("signcut", "lplr", "dense", "mixed"):
        dtype = str(rng.choice(FLOAT_DTYPES))
        shape = tuple(int(d) for d in rng.integers(1, 48, 2))
        tile_shape = tuple(int(rng.integers(1, d + 1)) if rng.random() < 0.5 else d for d in shape)
        if math.prod(-(-d // t) for d, t in zip(shape, tile_shape)) > 12:
            tile_shape = shape
    elif kind == "scalar":
        dtype, shape = str(rng.choice(FLOAT_DTYPES + OTHER_DTYPES)), ()
        tile_shape = shape
    else:
        dtype = str(rng.choice(OTHER_DTYPES)) if kind == "integer" else str(rng.choice(FLOAT_DTYPES))
        shape = tuple(int(d) for d in rng.integers(1, 6, int(rng.integers(1, 5))))
        tile_shape = shape
    tiles = []
    for origin, tshape in container.tile_grid(shape, tile_shape):
        scheme = kind if kind in ("signcut", "lplr") else "dense"
        if kind == "mixed":
            scheme = str(rng.choice(["signcut", "lplr", "dense"]))
        params, sections = make_tile(rng, scheme, dtype, tshape, panel, rng.random() < defects)
        made = {kind_: container.make_section(kind_, bytes(data), _native.crc32c) for kind_, data in sections.items()}
        tiles.append(container.TileRecord(origin, tshape, scheme, params, made))
    rel_error = float(np.float32(rng.uniform(0, 1))) if rng.random() < 0.5 else None
    encoder = {"seed": int(rng.integers(0, 100)), "note": "t", "nested": {"a": [1, 2.5, None, True]}} if rng.random() < 0.3 else None
    return container.TensorRecord(name, shape, dtype, tile_shape, panel, tiles, rel_error, encoder)


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)


@st.composite
def lrq_files(draw, defects: bool = False) -> bytes:
    """The bytes of a random valid file (or one with a planted content defect)."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1 if defects else 0, max_size=4))
    tensor_names = draw(st.lists(names, min_size=len(kinds), max_size=len(kinds), unique=True))
    metadata = draw(st.dictionaries(names, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                                    max_size=3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    tensors = [make_tensor(rng, name, kind, 0.5 if defects else 0.0) for name, kind in zip(tensor_names, kinds)]
    return b"".join(bytes(p) for p in container.serialize(tensors, metadata or None, _native.crc32c))


# ---------------------------------------------------------------------------
# File surgery


def preamble(header: bytes, file_length: int, *, major: int = 1, minor: int = 0, required: int = 0,
             optional: int = 0) -> bytes:
    head = struct.pack("<8sHHIQQQQ", container.MAGIC, major, minor, 0, required, optional, len(header), file_length)
    crc = reference_crc32c(header, reference_crc32c(head))
    return head + struct.pack("<I", crc) + bytes(12)


def with_header(raw: bytes, body: bytes = b"", **fields) -> bytes:
    """A file of the given header bytes and body, with a correct preamble."""
    return preamble(raw, 64 + len(raw) + len(body), **fields) + raw + body


def split(data: bytes) -> tuple:
    """(header object, [section payloads in file order]) of a valid file."""
    length = struct.unpack_from("<Q", data, 32)[0]
    header = container.load_header(data[64:64 + length])
    payloads = [bytes(data[e[1]:e[1] + e[2]]) for e in _entries(header)]
    return header, payloads


def _entries(header) -> list:
    """The section entries that a placement can be computed for."""
    out = []
    tensors = header.get("tensors") if isinstance(header, dict) else None
    for t in tensors if isinstance(tensors, list) else []:
        tiles = t.get("tiles") if isinstance(t, dict) else None
        for tile in tiles if isinstance(tiles, list) else []:
            table = tile.get("sections") if isinstance(tile, dict) else None
            for e in table if isinstance(table, list) else []:
                if isinstance(e, list) and len(e) == 4 and all(type(v) is int for v in e[1:3]) and 0 <= e[2] < 1 << 24:
                    out.append(e)
    return out


def assemble(header, payloads, *, single_float: bool = True, after=None) -> bytes:
    """Pack a header object and lay its sections out canonically.

    Every placeable entry's offset is set to its canonical value for the
    header's own length, iterated to a fixed point as an encoder does;
    ``after(header)`` then edits the header once more (to break an offset on
    purpose).  Payloads, in file order, are cut or zero-filled to the length
    their entry states.
    """
    entries = _entries(header)
    try:
        raw = msgpack.packb(header, use_single_float=single_float)
    except OverflowError:  # a float beyond binary32: keep float 64 encodings
        single_float = False
        raw = msgpack.packb(header, use_single_float=single_float)
    for _ in range(16):
        pos = 64 + len(raw)
        for e in entries:
            e[1] = container.align(pos, container.section_alignment(e[2]))
            pos = e[1] + e[2]
        new = msgpack.packb(header, use_single_float=single_float)
        settled, raw = len(new) == len(raw), new
        if settled:
            break
    if after is not None:
        after(header)
        raw = msgpack.packb(header, use_single_float=single_float)
    body, end = bytearray(), 64 + len(raw)
    for e, payload in zip(entries, payloads + [b""] * len(entries)):
        start = e[1] - end
        if start < len(body):
            continue
        body.extend(bytes(start - len(body)))
        body.extend(payload[: e[2]].ljust(e[2], b"\0"))
    return with_header(raw, bytes(body))


# ---------------------------------------------------------------------------
# Valid files: both parsers accept, with the same records


@SETTINGS
@given(lrq_files())
def test_valid_files_parse_to_the_same_records(data):
    ours = io._parse(data, verify=True)
    assert_same_records(ours, reference_check(data))
    assert_same_records(io._parse(data, verify=False), reference_check(data))


@SETTINGS
@given(lrq_files(defects=True))
def test_content_defects_get_the_same_verdict(data):
    # Every planted defect is a format error; tiles that cannot carry the
    # drawn defect leave the file valid.
    assert assert_same_verdict(data) in ("ok", FormatError)


def test_every_scheme_and_dtype_round_trips_through_dumps_and_loads():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((40, 70)).astype(np.float32)
    matrices = [
        lrq.encode(a, scheme="signcut", width=24, tile_shape=(16, 32)),
        lrq.encode(a, scheme="lplr", rank=6, bits_l=3, bits_r=6),
        lrq.encode(a, scheme="lplr", rank=3, bits_l=8, bits_r=2, tile_shape=(40, 33)),
        lrq.encode(a, scheme="dense", storage="bfloat16"),
    ]
    matrices += [io.dense_matrix("t", dense_values(rng, d, (3, 2, 5))) for d in OTHER_DTYPES + ("float64",)]
    for m in matrices:
        data = lrq.dumps(m)
        back = lrq.loads(data)
        assert lrq.dumps(back) == data
        np.testing.assert_array_equal(lrq.decode(back), lrq.decode(m))
        assert_same_records(io._parse(data, verify=True), reference_check(data))


# ---------------------------------------------------------------------------
# Damaged files: the same verdict


@st.composite
def mutations(draw):
    data = bytearray(draw(lrq_files()))
    # Positions come from a seeded generator: hypothesis favours small
    # integers, which would put nearly every edit into the magic.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    header_length = struct.unpack_from("<Q", data, 32)[0]
    op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "header", "header", "header_resize"]))
    if op == "flip":
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
    elif op == "insert":
        pos = int(rng.integers(0, len(data) + 1))
        data[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
    elif op == "delete":
        pos = int(rng.integers(0, len(data)))
        del data[pos:pos + int(rng.integers(1, 9))]
    elif op == "truncate":
        del data[int(rng.integers(0, len(data))):]
    else:
        # Edits inside the header with the checksum repaired, so that they
        # reach the msgpack reader and the header rules.
        for _ in range(int(rng.integers(1, 4))):
            pos = 64 + int(rng.integers(0, header_length))
            if op == "header":
                data[pos] = int(rng.integers(0, 256)) if rng.random() < 0.5 else data[pos] ^ (1 << int(rng.integers(0, 8)))
            else:
                extra, cut = rng.bytes(int(rng.integers(0, 4))), int(rng.integers(0, 3))
                data[pos:pos + cut] = extra
                header_length += len(extra) - min(cut, 64 + header_length - pos)
        struct.pack_into("<QQ", data, 32, header_length, len(data))
        struct.pack_into("<I", data, 48, reference_crc32c(data[64:64 + header_length], reference_crc32c(data[:48])))
    return bytes(data)


@SETTINGS
@given(mutations())
def test_damaged_files_get_the_same_verdict(data):
    assert_same_verdict(data)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: container.MAGIC + b"\x01\x00" + b)))
def test_arbitrary_bytes_get_the_same_verdict(data):
    assert assert_same_verdict(data) != "ok"


INTERESTING = (
    -1, 0, 1, 2, 15, 16, 63, 64, 65, 4096, 2**20, 2**20 + 1, 2**31 - 1, 2**31, 2**32, 2**48, 2**48 + 1, 2**64 - 1,
    -(2**63), True, False, None, 0.0, -0.0, 1.5, -1.0, math.nan, math.inf, 1e300, 1e-300, "", "x", "float32",
    "bool", "signcut", "lplr", "dense", "values", "x" * 1025, [], [1], [0], [2**31 - 1, 2**31 - 1], [3, 3],
    [[]], {}, {"a": 1}, b"bin", msgpack.ExtType(1, b"e"),
)
KEYS = (
    "tensors", "metadata", "name", "shape", "dtype", "tile_shape", "panel", "tiles", "rel_error", "encoder",
    "scheme", "storage", "width", "rank", "bits_l", "bits_r", "group", "scale_l", "scale_r", "sections", "x-vendor",
)


def _maps(obj, out: list) -> list:
    """Every map (and list) of a header object, outermost first."""
    if isinstance(obj, (dict, list)):
        out.append(obj)
        for value in obj.values() if isinstance(obj, dict) else obj:
            _maps(value, out)
    return out


@st.composite
def header_edits(draw):
    """A valid file whose decoded header got one edit, laid out again."""
    header, payloads = split(draw(lrq_files()))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # uniform choices, see mutations()
    targets = _maps(header, [])
    target = targets[int(rng.integers(0, len(targets)))]
    value = INTERESTING[int(rng.integers(0, len(INTERESTING)))]
    if isinstance(target, dict):
        keys = list(target) + [KEYS[int(rng.integers(0, len(KEYS)))]]
        key = keys[int(rng.integers(0, len(keys)))]
        if rng.random() < 0.3 and key in target:
            del target[key]
        else:
            target[key] = value
    elif target and rng.random() < 0.8:
        index = int(rng.integers(0, len(target)))
        if rng.random() < 0.7:
            target[index] = value
        else:
            del target[index]
    else:
        target.append(value)
    return assemble(header, payloads, single_float=bool(rng.random() < 0.7))


@SETTINGS
@given(header_edits())
def test_header_edits_get_the_same_verdict(data):
    assert_same_verdict(data)


# ---------------------------------------------------------------------------
# Targeted violations: the same class, and the C message names the rule


def _base() -> bytes:
    rng = np.random.default_rng(3)
    tensors = [make_tensor(rng, name, kind) for name, kind in
               (("W", "signcut"), ("L", "lplr"), ("mask", "integer"), ("b", "nd"))]
    return b"".join(bytes(p) for p in container.serialize(tensors, {"k": "v"}, _native.crc32c))


def _set(path, value):
    def edit(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return edit


def _edited(edit, *, single_float=True):
    header, payloads = split(_base())
    edit(header)
    return assemble(header, payloads, single_float=single_float)


def _raw_header(pairs: list) -> bytes:
    """msgpack of a map given as (key bytes, value bytes) pairs, verbatim."""
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def _packed(obj) -> bytes:
    return msgpack.packb(obj, use_single_float=True)


TENSORS_EMPTY = (_packed("tensors"), _packed([]))


def _placed(after):
    header, payloads = split(_base())
    return assemble(header, payloads, after=after)


def _bump_offset(h):
    h["tensors"][0]["tiles"][0]["sections"][1][1] += 64


def _overlap(h):
    table = h["tensors"][0]["tiles"][0]["sections"]
    table[1][1] = table[0][1]


def _padding(data: bytes) -> bytes:
    """Set the first padding byte (a byte of no section after the header)."""
    out = bytearray(data)
    pos = 64 + struct.unpack_from("<Q", out, 32)[0]
    for entry in _entries(split(data)[0]):
        if entry[1] > pos:
            break
        pos = entry[1] + entry[2]
    out[pos] = 1
    return bytes(out)


def _resized(data: bytes, delta: int) -> bytes:
    out = bytearray(data + bytes(max(delta, 0)))
    if delta < 0:
        del out[delta:]
    struct.pack_into("<Q", out, 40, len(out))
    length = struct.unpack_from("<Q", out, 32)[0]
    struct.pack_into("<I", out, 48, reference_crc32c(out[64:64 + length], reference_crc32c(out[:48])))
    return bytes(out)


def _signcut_tensor(c_values, name="W"):
    c = np.asarray(c_values, dtype="<f4")
    sections = {"c": c.tobytes(),
                "tt": layout.pack_interleaved(np.zeros((len(c), 3), np.uint8), 1, 64).tobytes(),
                "s": layout.pack_interleaved(np.zeros((2, len(c)), np.uint8), 1, 64).tobytes()}
    tile = container.TileRecord((0, 0), (2, 3), "signcut", {"width": len(c)},
                                {k: container.make_section(k, v, _native.crc32c) for k, v in sections.items()})
    record = container.TensorRecord(name, (2, 3), "float32", (2, 3), 64, [tile])
    return b"".join(bytes(p) for p in container.serialize([record], None, _native.crc32c))


TARGETED = {
    "offset moved": (lambda: _placed(_bump_offset), FormatError, "SEC-3"),
    "sections overlap": (lambda: _placed(_overlap), FormatError, "SEC-3"),
    "length wrong": (lambda: _edited(lambda h: h["tensors"][0]["tiles"][0]["sections"][0].__setitem__(2, 4 * 41 + 4)),
                     FormatError, "SEC-2"),
    "non-zero padding": (lambda: _padding(_base()), FormatError, "SEC-5"),
    "trailing byte": (lambda: _resized(_base(), 1), FormatError, "SEC-4"),
    "last section cut": (lambda: _resized(_base(), -1), FormatError, "SEC-4"),
    "section CRC": (lambda: _edited(lambda h: h["tensors"][0]["tiles"][0]["sections"][0].__setitem__(3, 12345)),
                    ChecksumError, "SEC-6"),
    "NaN c": (lambda: _signcut_tensor([1.0, math.nan]), FormatError, "SC-2"),
    "infinite c": (lambda: _signcut_tensor([math.inf]), FormatError, "SC-2"),
    "huge shape": (lambda: _edited(_set(["tensors", 0, "shape"], [2**31 - 1, 2**31 - 1])), FormatError, "TEN-3"),
    "dim too large": (lambda: _edited(_set(["tensors", 0, "shape"], [2**31, 1])), FormatError, "TEN-3"),
    "huge grid": (lambda: _edited(lambda h: h["tensors"][0].update(shape=[2**24, 2**24], tile_shape=[1, 1])),
                  FormatError, "TIL-3"),
    "tile larger than shape": (lambda: _edited(_set(["tensors", 0, "tile_shape"], [100, 100])), FormatError, "TIL-1"),
    "bad panel": (lambda: _edited(_set(["tensors", 0, "panel"], 100)), FormatError, "TEN-5"),
    "bool width": (lambda: _edited(_set(["tensors", 0, "tiles", 0, "width"], True)), FormatError, "SC-1"),
    "unknown scheme": (lambda: _edited(_set(["tensors", 0, "tiles", 0, "scheme"], "zip")), FormatError, "TIL-4"),
    "signcut on int": (lambda: _edited(_set(["tensors", 0, "dtype"], "int32")), FormatError, "TEN-6"),
    "unknown dtype": (lambda: _edited(_set(["tensors", 0, "dtype"], "complex64")), FormatError, "TEN-4"),
    "float64 scale overflows binary32": (lambda: _edited(_set(["tensors", 1, "tiles", 0, "scale_l"], 1e300),
                                                         single_float=False), FormatError, "LP-2"),
    "group not a power of two": (lambda: _edited(_set(["tensors", 1, "tiles", 0, "group"], 48)), FormatError, "LP-1"),
    "negative rel_error": (lambda: _edited(_set(["tensors", 0, "rel_error"], -1.0)), FormatError, "TEN-7"),
    "integer rel_error": (lambda: _edited(_set(["tensors", 0, "rel_error"], 0)), FormatError, "TEN-7"),
    "encoder not a map": (lambda: _edited(_set(["tensors", 0, "encoder"], [])), FormatError, "TEN-8"),
    "duplicate name": (lambda: _edited(_set(["tensors", 1, "name"], "W")), FormatError, "TEN-2"),
    "empty name": (lambda: _edited(_set(["tensors", 1, "name"], "")), FormatError, "TEN-2"),
    "metadata not str": (lambda: _edited(_set(["metadata", "k"], 1)), FormatError, "HDR-6"),
    "no tensors": (lambda: _edited(lambda h: h.pop("tensors")), FormatError, "HDR-5"),
    "storage of another dtype": (lambda: _edited(_set(["tensors", 2, "tiles", 0, "storage"], "float32")),
                                 FormatError, "DN-2"),
    "too many tensors": (lambda: with_header(_packed({"tensors": [{}] * 65537})), FormatError, "LIM-4"),
    "deep nesting": (lambda: with_header(_packed({"tensors": [], "x-deep": [[[[[[[[]]]]]]]]})), FormatError, "LIM-3"),
    "depth 8 is fine": (lambda: with_header(_packed({"tensors": [], "x-deep": [[[[[[[]]]]]]]})), "ok", None),
    "duplicate keys": (lambda: with_header(_raw_header([TENSORS_EMPTY, TENSORS_EMPTY])), FormatError, "HDR-4"),
    "bin value": (lambda: with_header(_packed({"tensors": [], "x-b": b"\x00"})), FormatError, "HDR-2"),
    "bin key": (lambda: with_header(_raw_header([TENSORS_EMPTY, (_packed(b"k"), b"\xc0")])), FormatError, "HDR-2"),
    "ext value": (lambda: with_header(_packed({"tensors": [], "x-e": msgpack.ExtType(5, b"ab")})), FormatError,
                  "HDR-2"),
    "timestamp ext": (lambda: with_header(_raw_header([TENSORS_EMPTY, (_packed("t"), b"\xd6\xff\0\0\0\1")])),
                      FormatError, "HDR-2"),
    "unused type byte": (lambda: with_header(_raw_header([TENSORS_EMPTY, (_packed("t"), b"\xc1")])), FormatError,
                         "HDR-2"),
    "int key": (lambda: with_header(_raw_header([TENSORS_EMPTY, (b"\x01", b"\xc0")])), FormatError, "HDR-2"),
    "surrogate": (lambda: with_header(_raw_header([TENSORS_EMPTY, (_packed("t"), b"\xa3\xed\xa0\x80")])),
                  FormatError, "HDR-3"),
    "overlong": (lambda: with_header(_raw_header([TENSORS_EMPTY, (b"\xa2\xc0\xaf", b"\xc0")])), FormatError,
                 "HDR-3"),
    "string of 65536 bytes": (lambda: with_header(_packed({"tensors": [], "x": "a" * 65536})), FormatError, "LIM-6"),
    "string of 65535 bytes": (lambda: with_header(_packed({"tensors": [], "x": "a" * 65535})), "ok", None),
    "map of 65 entries": (lambda: with_header(_packed({"tensors": [], "x": {str(i): i for i in range(65)}})),
                          FormatError, "LIM-1"),
    "array of 2^20+1": (lambda: with_header(_packed({"tensors": [], "x": [0] * (2**20 + 1)})), FormatError, "LIM-2"),
    "array of 2^20": (lambda: with_header(_packed({"tensors": [], "x": [0] * 2**20})), "ok", None),
    "bytes after the map": (lambda: with_header(_packed({"tensors": []}) + b"\xc0"), FormatError, "HDR-1"),
    "header not a map": (lambda: with_header(_packed([])), FormatError, "HDR-1"),
    "required feature": (lambda: with_header(_packed({"tensors": []}), required=1 << 5), UnsupportedError, "PRE-4"),
    "optional feature": (lambda: with_header(_packed({"tensors": []}), optional=1 << 63), "ok", None),
    "later minor": (lambda: with_header(_packed({"tensors": []}), minor=9), "ok", None),
    "major 2": (lambda: with_header(_packed({"tensors": []}), major=2), UnsupportedError, "PRE-2"),
    "16 bytes": (lambda: _base()[:16], FormatError, "PRE-8"),
    "reserved byte": (lambda: _base()[:60] + b"\x01" + _base()[61:], FormatError, "PRE-3"),
    "header CRC": (lambda: _base()[:50] + bytes([_base()[50] ^ 4]) + _base()[51:], ChecksumError, "PRE-9"),
}


@pytest.mark.parametrize("case", sorted(TARGETED))
def test_targeted_violation(case):
    make, want, rule = TARGETED[case]
    data = make()
    assert assert_same_verdict(data) == want
    if rule is not None:
        assert c_message(data).startswith(f"[{rule}]"), c_message(data)


def test_messages_name_the_rule_through_the_public_api(tmp_path):
    bad = bytearray(_signcut_tensor([1.0, 2.0]))
    offset = io._parse(bytes(bad), verify=False).tensors[0].tiles[0].sections["c"].offset
    bad[offset] ^= 1
    with pytest.raises(ChecksumError, match=r"^\[SEC-6\] tensor 'W' tile #0 section 'c'"):
        lrq.loads(bytes(bad))
    with pytest.raises(FormatError, match=r"^\[SC-2\]"):
        lrq.loads(_signcut_tensor([math.nan]))
    with pytest.raises(FormatError, match=r"^\[SEC-3\] tensor 'W': tile #0 section 'tt' is at offset \d+; "
                                          r"the canonical offset is \d+"):
        lrq.loads(_placed(_bump_offset))


# ---------------------------------------------------------------------------
# Lazy verification through lrq.open and the C handle


def test_open_checks_each_section_on_first_use(tmp_path):
    good = io.dense_matrix("ok", np.arange(6.0).reshape(2, 3))
    path = tmp_path / "f.lrq"
    lrq.save(path, {"W": lrq.encode(np.eye(20, dtype=np.float32), scheme="signcut", width=3), "ok": good})
    data = bytearray(path.read_bytes())
    c = io._parse(bytes(data), verify=False).tensors[0].tiles[0].sections["c"]
    data[c.offset] ^= 0x40
    path.write_bytes(bytes(data))
    with lrq.open(path) as f:  # the header and placement are fine: opening works
        np.testing.assert_array_equal(f["ok"].decode(), np.arange(6.0).reshape(2, 3))
        assert 0 < f["W"].nbytes < len(data)  # sizes need no section bytes
        with pytest.raises(ChecksumError, match=r"\[SEC-6\]"):
            f["W"].decode()
        with pytest.raises(ChecksumError):
            f["W"] @ np.ones(20, np.float32)
        with pytest.raises(ChecksumError):  # nor is the damage copied into a new file
            lrq.save(tmp_path / "copy.lrq", {"W": f["W"]})
        with pytest.raises(ChecksumError):
            lrq.dumps(f["W"])
        lrq.save(tmp_path / "copy.lrq", {"ok": f["ok"]})
    with pytest.raises(ChecksumError):
        lrq.loads(bytes(data))


def test_a_section_is_verified_once():
    data = bytearray(_signcut_tensor([1.0, 2.0]))
    parsed = _native.ContainerFile(data)
    first = bytes(parsed.section(0, 0, 0))
    offset = parsed.tile(0, 0)["sections"][0][1]
    data[offset] ^= 1  # the buffer changes behind the handle's back (the API forbids it)
    assert bytes(parsed.section(0, 0, 0)) != first  # the same view, not re-verified
    with pytest.raises(ChecksumError):
        _native.ContainerFile(data, verify="checksums")
    with pytest.raises(ChecksumError):
        _native.ContainerFile(data).verify(content=False)
    with pytest.raises(lrq.ArgumentError):
        _native.ContainerFile(data, verify="sometimes")


# ---------------------------------------------------------------------------
# Hostile sizes: refused quickly, with no allocation to match the claim


def _tensor_header(shape, tile_shape, tiles: bytes, count: int) -> bytes:
    head = _packed({"name": "W", "shape": shape, "dtype": "float32", "tile_shape": tile_shape, "panel": 4096})
    tensor = bytes([head[0] + 1]) + head[1:] + _packed("tiles") + b"\xdd" + struct.pack(">I", count) + tiles
    return b"\x81" + _packed("tensors") + b"\x91" + tensor


HOSTILE = {
    "16-byte file": (lambda: _base()[:16], "PRE-8"),
    "2^31 x 2^31 of 1x1 tiles": (lambda: with_header(_tensor_header([2**31 - 1] * 2, [1, 1], b"", 0)), "TEN-3"),
    "2^48 tiles claimed": (lambda: with_header(_tensor_header([2**24] * 2, [1, 1], b"", 0)), "TIL-3"),
    "2^20 tiny tiles": (lambda: with_header(_tensor_header([1024] * 2, [1, 1], b"\x80" * 2**20, 2**20)), "TIL-4"),
    "2^20 tiles claimed, none given": (lambda: with_header(_tensor_header([1024] * 2, [1, 1], b"", 2**20)),
                                       "HDR-1"),
}

_LIMITED = r"""
import resource, sys, time
from lrq import io
from lrq.errors import FormatError
# Allow this process 256 MiB more address space than it has now: a parser
# that allocated for what these files claim would fail with ResourceError.
with open("/proc/self/status") as fh:
    vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), vm + (256 << 20)))
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    start = time.perf_counter()
    try:
        io._parse(data, verify=True)
        print(path, "accepted")
    except FormatError as exc:
        print(path, f"{time.perf_counter() - start:.3f}", str(exc)[:40])
"""


def test_hostile_sizes_are_refused_quickly_without_allocation(tmp_path):
    paths = []
    for k, (make, _) in enumerate(HOSTILE.values()):
        data = make()
        assert assert_same_verdict(data) == FormatError
        path = tmp_path / f"{k}.lrq"
        path.write_bytes(data)
        paths.append(str(path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-c", _LIMITED, *paths], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(HOSTILE), run.stdout
    for line, rule in zip(lines, (rule for _, rule in HOSTILE.values())):
        _, seconds, message = line.split(" ", 2)
        assert message.startswith(f"[{rule}]"), line
        assert float(seconds) < 1.0, line


# ---------------------------------------------------------------------------
# The C parser alone, under the sanitizers


@needs_gcc
def test_c_container_under_sanitizers(tmp_path):
    run_sanitized(tmp_path, "test_container", isas=(None, "scalar"))
