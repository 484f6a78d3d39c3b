"""Groups of matrices that share a right factor (spec §10.4, format 1.2).

Matrices that read the same input -- a transformer's query, key and value --
are compressed together: the encoder runs once on the rows stacked
(``np.vstack``), so every member gets the same right factor (signcut: the
signs T and the weights c; lplr: R) and its own rows of the left factor.  The
shared factor is stored once in a file, and ``G @ x`` computes it once: the
product runs on the stacked matrix as one tile in the C kernels (Tᵀx or R·x
once, then every member's rows) and is split by member.

Members are ordinary :class:`lrq.Matrix` objects: in memory each one holds
the shared sections as its own (the same bytes, not copies), so ``G["q"] @ x``,
``lrq.dumps(G["q"])`` and ``lrq.save(path, {"q": G["q"]})`` work as for any
matrix; only saving the group itself writes a 1.2 file with the factor once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Iterator, Optional

import numpy as np
import msgpack

from . import _native, lplr
from . import format as container
from .errors import ArgumentError, ChecksumError, FormatError, UnsupportedError
from .format import make_section
from .matrix import Matrix, _StoredSize

_ROW_TILE = 16  # rows per row tile of an interleaved matrix and of a scale section (spec §9.1, §10.3)


# ----------------------------------------------------------- row surgery
def _sign_rows(buf, rows: int, k: int, panel: int, bounds: list) -> list:
    """An interleaved sign (or byte) matrix cut into the row ranges ``bounds``."""
    elements = _native.unpack_interleaved(buf, rows, k, 1, panel)
    return [_native.pack_interleaved(np.ascontiguousarray(elements[r0:r1]), 1, panel).tobytes() for r0, r1 in bounds]


def _code_rows(buf, rows: int, k: int, bits: int, panel: int, bounds: list) -> list:
    """lplr codes (bit-planes up to 4 bits, else a byte matrix, spec §10.3) cut by rows."""
    if bits >= 5:
        codes = _native.unpack_interleaved(buf, rows, k, 8, panel)
        return [_native.pack_interleaved(np.ascontiguousarray(codes[r0:r1]), 8, panel).tobytes() for r0, r1 in bounds]
    view = memoryview(buf).cast("B")
    plane = len(view) // bits
    parts = [[] for _ in bounds]
    for p in range(bits):
        for part, piece in zip(parts, _sign_rows(view[p * plane:(p + 1) * plane], rows, k, panel, bounds)):
            part.append(piece)
    return [b"".join(part) for part in parts]


def _unpack_scales(buf, rows: int, groups: int) -> np.ndarray:
    """rows × groups binary16 scales from their [row tile][group][row] order (spec §10.3)."""
    data = np.frombuffer(buf, dtype="<f2")
    out = np.empty((rows, groups), dtype="<f2")
    pos = 0
    for r0 in range(0, rows, _ROW_TILE):
        h = min(_ROW_TILE, rows - r0)
        out[r0:r0 + h] = data[pos:pos + h * groups].reshape(groups, h).T
        pos += h * groups
    return out


def _split_tile(tile: container.TileRecord, panel: int, bounds: list) -> list:
    """The per-member sections of a stacked tile's left factor, by row range."""
    crc = _native.crc32c
    m, _ = tile.shape
    p = tile.params
    if tile.scheme == "signcut":
        return [{"s": s} for s in _sign_rows(tile.section("s", crc), m, p["width"], panel, bounds)]
    r, g = p["rank"], p["group"]
    codes = _code_rows(tile.section("l_codes", crc), m, r, p["bits_l"], panel, bounds)
    scales = _unpack_scales(tile.section("l_scales", crc), m, -(-r // g)) if r else np.zeros((m, 0), "<f2")
    return [{"l_codes": c, "l_scales": lplr.pack_scales(scales[r0:r1])} for c, (r0, r1) in zip(codes, bounds)]


def _joined_tile(tiles: list, panel: int) -> container.TileRecord:
    """One tile of the members stacked by rows: the shared sections and the
    left factors concatenated (the inverse of :func:`_split_tile`)."""
    crc = _native.crc32c
    first = tiles[0]
    p = first.params
    rows = sum(t.shape[0] for t in tiles)
    shape = (rows, first.shape[1])
    sections = {kind: first.sections[kind] for kind in container.SHARED_KINDS[first.scheme]}
    if first.scheme == "signcut":
        w = p["width"]
        signs = np.concatenate([_native.unpack_interleaved(t.section("s", crc), t.shape[0], w, 1, panel) for t in tiles])
        raw = {"s": _native.pack_interleaved(signs, 1, panel).tobytes()}
    else:
        r, g, bits = p["rank"], p["group"], p["bits_l"]
        if bits >= 5:
            codes = np.concatenate([_native.unpack_interleaved(t.section("l_codes", crc), t.shape[0], r, 8, panel)
                                    for t in tiles])
            code_bytes = _native.pack_interleaved(codes, 8, panel).tobytes()
        else:
            planes = []
            for plane in range(bits):
                parts = []
                for t in tiles:
                    view = memoryview(t.section("l_codes", crc)).cast("B")
                    size = len(view) // bits
                    parts.append(_native.unpack_interleaved(view[plane * size:(plane + 1) * size], t.shape[0], r, 1, panel))
                planes.append(_native.pack_interleaved(np.concatenate(parts), 1, panel).tobytes())
            code_bytes = b"".join(planes)
        groups = -(-r // g)
        scales = np.concatenate([_unpack_scales(t.section("l_scales", crc), t.shape[0], groups) for t in tiles])
        raw = {"l_codes": code_bytes, "l_scales": lplr.pack_scales(scales)}
    sections.update((kind, make_section(kind, data, crc)) for kind, data in raw.items())
    ordered = {kind: sections[kind] for kind in container.SECTION_KINDS[first.scheme]}
    return container.TileRecord((0, 0), shape, first.scheme, dict(p), ordered)


def _shares_factor(tiles: list, stacked: bool = False) -> bool:
    """Whether tiles share one right factor: one scheme, equal shared
    parameters and sections (what a group needs, spec §10.4).  With
    ``stacked``, whether they can also be stacked exactly into one tile: for
    lplr also one b_L and σ_L (members written by another encoder may have
    their own, which stacking would have to round)."""
    first = tiles[0]
    if first.scheme not in container.GROUP_SCHEMES or "c_scale" in first.params:
        return False
    keys = container.SHARED_PARAMS[first.scheme] + (container.MEMBER_PARAMS[first.scheme] if stacked else ())
    return all(
        t.scheme == first.scheme and t.shape[1] == first.shape[1] and "c_scale" not in t.params
        and all(t.params[k] == first.params[k] for k in keys)
        and all(t.sections[k] is first.sections[k] or bytes(t.sections[k].data) == bytes(first.sections[k].data)
                for k in container.SHARED_KINDS[first.scheme])
        for t in tiles
    )


# ----------------------------------------------------------------- Group
class Group(_StoredSize, Mapping):
    """Named matrices sharing one right factor: a read-only mapping name → ``lrq.Matrix``.

    Made by :func:`encode_group`, :func:`lrq.loads` of a file holding one
    group, or read from a file (``lrq.open(path).groups[name]``).

    - ``G["q"]`` is an ordinary :class:`lrq.Matrix` (``@``, ``.T @``, decode);
    - ``G @ x`` (or :meth:`matvec`) returns ``{name: A_name @ x}``, computing
      the shared part (Tᵀx or R·x) once: one product of the stacked matrix in
      the C kernels, split by rows;
    - :meth:`decode` returns ``{name: ndarray}``;
    - ``lrq.save(path, {"attn": G})`` writes the group (format 1.2, the shared
      factor once), its members named as in ``G``; ``lrq.dumps(G)`` the bytes.

    Attributes: ``scheme`` ("signcut" or "lplr"), ``columns``, ``nbytes``
    (the size of a file holding the group alone), ``bits_per_entry`` (of all
    members together) and ``rel_error`` (of the stacked matrix, measured at
    encode time; each member has its own ``rel_error``).
    """

    def __init__(self, members: dict, *, name: Optional[str] = None, stacked: Optional[Matrix] = None,
                 rel_error: Optional[float] = None, owner=None):
        self._members = dict(members)
        self.name = name
        self._stacked = stacked
        self._owner = owner
        self.rel_error = rel_error
        self._nbytes: Optional[int] = None
        first = next(iter(self._members.values()))._record
        self.scheme = first.tiles[0].scheme
        self.columns = first.shape[1]
        self._panel = first.panel
        self._bounds = []
        row = 0
        for m in self._members.values():
            self._bounds.append((row, row + m.shape[0]))
            row += m.shape[0]
        # How many products of the shared factor this group computed (one
        # per G @ x); tests read it to see that members share the work.
        self.shared_products = 0

    # Whether the members share one right factor, and whether they also
    # stack exactly into one tile: found on first use, so that opening a
    # file of many groups builds no member's tile record.
    @functools.cached_property
    def _shared(self) -> bool:
        return _shares_factor([m._record.tiles[0] for m in self._members.values()])

    @functools.cached_property
    def _stackable(self) -> bool:
        return _shares_factor([m._record.tiles[0] for m in self._members.values()], stacked=True)

    def __getitem__(self, name: str) -> Matrix:
        return self._members[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        rows = sum(m.shape[0] for m in self._members.values())
        name = f" '{self.name}'" if self.name else ""
        return (f"<lrq.Group{name} {self.scheme}, {len(self)} members, {rows}x{self.columns} stacked, "
                f"{self.bits_per_entry:.3g} bits/entry>")

    def __reduce__(self):
        # Through the bytes of a file holding the group, as for lrq.Matrix
        # (a group read from a file then travels without its mapping).
        return (_group_from_bytes, (b"".join(bytes(p) for p in self._serialize()),))

    @property
    def size(self) -> int:
        return sum(m.size for m in self._members.values())


    @property
    def shared_nbytes(self) -> int:
        """Bytes the shared factor takes in a file, once: its sections, each
        padded to its alignment ([SEC-3]).  A member's ``nbytes`` (the size
        of a file holding it alone) includes them; ``member_nbytes`` does not."""
        tile = next(iter(self._members.values()))._record.tiles[0]
        return sum(container.align(tile.sections[kind].length, container.section_alignment(tile.sections[kind].length))
                   for kind in container.SHARED_KINDS[self.scheme])

    def member_nbytes(self, name: str) -> int:
        """Bytes of member ``name`` without the shared factor: its own sections
        and header entries, as a file holding it alone measures them."""
        return self._members[name].nbytes - self.shared_nbytes

    def _stacked_matrix(self) -> Optional[Matrix]:
        """The members stacked by rows as one in-memory tile (their left
        factors copied, about the size of those sections; the shared ones are
        the members' own views), made on first use."""
        if self._stacked is None and self._stackable:
            members = list(self._members.values())

            def join() -> Matrix:
                # Each member's sections pass its own checks first (CRC and
                # content, [SEC-7]): joining drops padding bits, so a member
                # whose padding breaks [LAY-1] must fail here, not vanish.
                for m in members:
                    m._kernel(0, m._record.tiles[0])
                tile = _joined_tile([m._record.tiles[0] for m in members], self._panel)
                record = container.TensorRecord(self.name or "group", tile.shape, members[0]._record.dtype,
                                                tile.shape, self._panel, [tile])
                return Matrix(record)

            self._stacked = members[0]._reading_source(join)
        return self._stacked

    def matvec(self, x) -> dict:
        """``{name: A_name @ x}`` for a vector x (or a matrix of column vectors)."""
        stacked = self._stacked_matrix()
        if stacked is None:  # members that cannot be stacked exactly: one product each
            return {name: m @ x for name, m in self._members.items()}
        y = stacked @ x
        self.shared_products += 1
        rows = (lambda r0, r1: y[r0:r1]) if y.ndim <= 2 else (lambda r0, r1: y[..., r0:r1, :])  # a stack (..., n, k)
        return {name: rows(r0, r1) for name, (r0, r1) in zip(self._members, self._bounds)}

    def __matmul__(self, x) -> dict:
        return self.matvec(x)

    def decode(self) -> dict:
        return {name: m.decode() for name, m in self._members.items()}

    def records(self, name: str) -> tuple:
        """(member TensorRecords marked as members, GroupRecord) for writing group ``name``."""
        if not self._shared:
            raise ArgumentError(f"group '{name}': its members do not share one right factor exactly")
        tensors = []
        for member, m in self._members.items():
            rec = m._record
            tile = dataclasses.replace(rec.tiles[0], group=name)
            tensors.append(container.TensorRecord(member, rec.shape, rec.dtype, rec.tile_shape, rec.panel, [tile],
                                                  rec.rel_error, rec.encoder))
        first = tensors[0].tiles[0]
        shared = {k: first.params[k] for k in container.SHARED_PARAMS[self.scheme]}
        group = container.GroupRecord(name, self.scheme, self.columns, self._panel, shared,
                                      list(self._members),
                                      {k: first.sections[k] for k in container.SHARED_KINDS[self.scheme]})
        return tensors, group

    def _serialize(self):
        tensors, group = self.records(self.name or "group")
        return container.serialize(tensors, None, _native.crc32c, [group])


# --------------------------------------------------------------- encoder
def encode_group(
    members: Mapping,
    *,
    scheme: str = "signcut",
    bits: Optional[float] = None,
    width: Optional[int] = None,
    rel_error: Optional[float] = None,
    seed: int = 0,
    panel: int = container.DEFAULT_PANEL,
    name: Optional[str] = None,
    threads: Optional[int] = None,
    **options,
) -> Group:
    """Compress matrices that read the same input with one shared right factor.

    ``members`` maps names to 2-D float arrays with the same number of
    columns (at least two of them).  The encoder of ``scheme`` ("signcut" or
    "lplr") runs once on the stacked rows, as one tile, so

    - signcut: A_i ≈ S_i·diag(c)·Tᵀ with one T and c (the greedy on the stack);
    - lplr:    A_i ≈ L_i·R with one R (LPLR of the stack; ``variant="svd"``
      for LPLR-SVD, the seed's joint rank-k).

    ``bits`` is the budget of the whole group (bits per entry over all
    members, the shared factor counted once); ``rel_error`` bounds the error
    of the stack, ‖[A_i] − [Â_i]‖_F / ‖[A_i]‖_F; ``width`` fixes signcut's
    cut count.  Each member's own error is in ``G[name].rel_error``.  Other
    options are those of :func:`lrq.encode` for the scheme.
    """
    from .encoder import encode

    if not isinstance(members, Mapping) or len(members) < 2:
        raise ArgumentError("encode_group takes a mapping of at least two names to matrices "
                            "(a group of one is an ordinary matrix, spec [GRP-10])")
    if scheme not in container.GROUP_SCHEMES:
        raise ArgumentError(f"a group shares a signcut or lplr factor; scheme must be 'signcut' or 'lplr', not {scheme!r}")
    arrays = {}
    for key, value in members.items():
        if not isinstance(key, str) or not key:
            raise ArgumentError(f"member names are non-empty strings, not {key!r}")
        a = np.asarray(value)
        if a.ndim != 2 or a.dtype.kind != "f" or a.size == 0:
            raise ArgumentError(f"member '{key}' must be a non-empty 2-D float array, not {a.dtype} of shape {a.shape}")
        arrays[key] = a
    columns = {a.shape[1] for a in arrays.values()}
    if len(columns) != 1:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise ArgumentError(f"group members read the same input, so they need the same number of columns: {shapes}")
    dtype = np.result_type(*arrays.values())
    stacked_array = np.vstack([a.astype(dtype, copy=False) for a in arrays.values()])
    if scheme == "signcut":
        if options.get("c_storage", "float32") != "float32":
            raise ArgumentError("a group stores its shared weights c as float32 (spec §10.4)")
        options["c_storage"] = "float32"
    def run(budget):
        return _split(encode(stacked_array, scheme, bits=budget, width=width, rel_error=rel_error, seed=seed,
                             tile_shape=stacked_array.shape, panel=panel, name=name, threads=threads, **options),
                      arrays, scheme, name)

    group = run(bits)
    if bits is not None:
        # The stacked matrix was sized as one tensor; the group's file has a
        # tensor map per member and a group map.  Charge that difference to
        # the budget once, so the group's bits per entry stay within it.
        overhead = group.nbytes - group._stacked.nbytes
        if 8.0 * group.nbytes / group.size > bits and overhead > 0:
            group = run(bits - 8.0 * overhead / group.size)
    return group


def _split(stacked: Matrix, arrays: dict, scheme: str, name: Optional[str]) -> Group:
    """The members of a stacked encoding, each its rows of the left factor."""
    tile = stacked._record.tiles[0]
    if tile.scheme != scheme:  # pragma: no cover - an explicit scheme is kept
        raise ArgumentError(f"the stacked matrix was encoded as {tile.scheme}, not {scheme}")
    bounds, row = [], 0
    for a in arrays.values():
        bounds.append((row, row + a.shape[0]))
        row += a.shape[0]
    crc = _native.crc32c
    shared = {kind: tile.sections[kind] for kind in container.SHARED_KINDS[scheme]}
    record = stacked._record
    out = {}
    for (key, a), own in zip(arrays.items(), _split_tile(tile, record.panel, bounds)):
        sections = dict(shared)
        sections.update((kind, make_section(kind, data, crc)) for kind, data in own.items())
        sections = {kind: sections[kind] for kind in container.SECTION_KINDS[scheme]}
        member_tile = container.TileRecord((0, 0), a.shape, scheme, dict(tile.params), sections)
        member = Matrix(container.TensorRecord(key, a.shape, record.dtype, a.shape, record.panel, [member_tile],
                                               None, record.encoder))
        member._record.rel_error = _relative_error(a, member.decode())
        out[key] = member
    return Group(out, name=name, stacked=stacked, rel_error=stacked.rel_error)


def _relative_error(a: np.ndarray, approx: np.ndarray) -> float:
    norm = float(np.linalg.norm(a.astype(np.float64)))
    diff = float(np.linalg.norm(a.astype(np.float64) - approx.astype(np.float64)))
    return diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf)


# ---------------------------------------------------------------- reader
# The C file parser implements format 1.2 (groups included): it refuses a
# file that sets signcut_tensor as unsupported [PRE-4].  Until it learns
# tensor tiles (§10.5), a 1.3 file is parsed here, rule for rule as the C
# parser and the spec's order of checks (§15), into the records the C parser
# builds; member tiles are
# resolved into ordinary tiles whose shared sections are the group's (views
# of the same bytes), so every product still runs in the C kernels, and every
# section is checked by C on first use ([SEC-6] here, content rules when the
# C tile is made).

def _fail(where: str, message: str, rule: str):
    raise FormatError(f"[{rule}] {where}: {message}")


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if type(key) is not str:
            raise FormatError("[HDR-2] header map key is not a string")
        if key in out:
            raise FormatError(f"[HDR-4] header map has the key '{key}' twice")
        out[key] = value
    return out


def _reject_ext(code, data):
    raise FormatError(f"[HDR-2] header uses msgpack ext type {code}")


def _check_tree(obj, depth: int) -> None:
    if isinstance(obj, (dict, list)):
        if depth > container.MAX_DEPTH:
            raise FormatError(f"[LIM-3] header nesting is deeper than {container.MAX_DEPTH}")
        for value in (obj.values() if isinstance(obj, dict) else obj):
            _check_tree(value, depth + 1)
    elif not (obj is None or type(obj) in (bool, int, float, str)):
        raise FormatError(f"[HDR-2] header holds a {type(obj).__name__}")


_LIMIT_RULES = (("max_map_len", "LIM-1"), ("max_array_len", "LIM-2"), ("max_str_len", "LIM-6"),
                ("max_bin_len", "HDR-2"), ("max_ext_len", "HDR-2"), ("not allowed for map key", "HDR-2"))


def _load_header(raw: bytes) -> dict:
    try:
        obj = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True, object_pairs_hook=_pairs,
                              ext_hook=_reject_ext, max_str_len=container.MAX_STRING_BYTES,
                              max_bin_len=container.MAX_STRING_BYTES, max_array_len=container.MAX_ARRAY_ELEMENTS,
                              max_map_len=container.MAX_MAP_ENTRIES, max_ext_len=container.MAX_STRING_BYTES)
    except FormatError:
        raise
    except UnicodeDecodeError:
        raise FormatError("[HDR-3] header holds a string that is not valid UTF-8") from None
    except Exception as exc:  # msgpack raises many types for bad input
        rule = next((r for key, r in _LIMIT_RULES if key in str(exc)), "HDR-1")
        raise FormatError(f"[{rule}] header is not one well-formed msgpack object within the limits: {exc}") from None
    if not isinstance(obj, dict):
        raise FormatError("[HDR-1] header is not a msgpack map")
    _check_tree(obj, 1)
    return obj


class _Map:
    """Typed, range-checked reads from a header map, failures naming the rule."""

    def __init__(self, mapping: dict, where: str):
        self.map, self.where = mapping, where

    def get(self, key: str, kind, rule: str, required: bool = True):
        if key not in self.map:
            if required:
                _fail(self.where, f"required key '{key}' is missing", rule)
            return None
        value = self.map[key]
        if type(value) is not kind:
            _fail(self.where, f"'{key}' must be of type {kind.__name__}", rule)
        return value

    def int_in(self, key: str, lo: int, hi: int, rule: str) -> int:
        value = self.get(key, int, rule)
        if not lo <= value <= hi:
            _fail(self.where, f"'{key}' = {value} is outside [{lo}, {hi}]", rule)
        return value

    def ints(self, key: str, rule: str) -> tuple:
        value = self.get(key, list, rule)
        if any(type(v) is not int for v in value):
            _fail(self.where, f"'{key}' must be a list of integers", rule)
        return tuple(value)

    def positive_f32(self, key: str, rule: str) -> float:
        with np.errstate(over="ignore"):
            value = float(np.float32(self.get(key, float, rule)))  # [HDR-8]
        if not (math.isfinite(value) and value > 0):
            _fail(self.where, f"'{key}' must be a finite binary32 value > 0", rule)
        return value

    def power_of_two(self, key: str, lo: int, hi: int, rule: str) -> int:
        value = self.int_in(key, lo, hi, rule)
        if value & (value - 1):
            _fail(self.where, f"'{key}' = {value} is not a power of two", rule)
        return value

    def panel(self, rule: str) -> int:
        value = self.int_in("panel", container.MIN_PANEL, container.MAX_PANEL, rule)
        if value % 64:
            _fail(self.where, f"panel {value} is not a multiple of 64", rule)
        return value


def _entry(f: _Map, entry, kind: str, want: int, rule: str, length_rule: str) -> container.Section:
    if not (isinstance(entry, list) and len(entry) == 4 and type(entry[0]) is str
            and all(type(v) is int for v in entry[1:])):
        _fail(f.where, "a section entry must be [kind, offset, length, crc32c]", rule)
    found, offset, length, crc = entry
    if found != kind:
        _fail(f.where, f"section '{found}' where '{kind}' belongs", rule)
    if length != want:
        _fail(f.where, f"section '{kind}' is {length} bytes, its parameters need {want}", length_rule)
    if not (0 <= crc <= 0xFFFFFFFF and 0 <= offset < 1 << 64):
        _fail(f.where, f"section '{kind}' has an out-of-range offset or CRC", rule)
    return container.Section(kind, offset, length, crc)


def _entries(f: _Map, kinds: tuple, lengths: tuple, rule: str, length_rule: str) -> dict:
    table = f.get("sections", list, rule)
    if len(table) != len(kinds):
        _fail(f.where, f"has {len(table)} section entries where {list(kinds)} belong", rule)
    return {kind: _entry(f, e, kind, want, rule, length_rule) for e, kind, want in zip(table, kinds, lengths)}


def _tile_params(f: _Map, scheme: str, dtype: str, required: int) -> dict:
    if scheme == "dense":
        storage = f.get("storage", str, "DN-1")
        if storage not in container.DTYPES:
            _fail(f.where, f"unknown storage type '{storage}'", "DN-1")
        if container.DTYPES[dtype][2] and storage not in container.FLOAT_STORAGE or (
                not container.DTYPES[dtype][2] and storage != dtype):
            _fail(f.where, f"a {dtype} tensor cannot be stored as '{storage}'", "DN-2")
        return {"storage": storage}
    if not container.DTYPES[dtype][2]:
        _fail(f.where, f"scheme '{scheme}' needs a floating-point tensor, not {dtype}", "TEN-6")
    if scheme == "signcut":
        params = {"width": f.int_in("width", 0, container.MAX_PARAM, "SC-1")}
        if "c_scale" in f.map and required & container.SIGNCUT_C16:  # [SC-4]: otherwise an unknown key
            value = float(np.float32(f.get("c_scale", float, "SC-3")))
            mantissa, exponent = math.frexp(value) if math.isfinite(value) else (0, 0)
            lo, hi = container.C_SCALE_EXPONENTS
            if mantissa != 0.5 or not lo <= exponent - 1 <= hi:
                _fail(f.where, f"'c_scale' = {value} is not a power of two in [2^{lo}, 2^{hi}]", "SC-3")
            params["c_scale"] = value
        return params
    if scheme == "quant":  # §10.7
        if not required & container.QUANT:
            _fail(f.where, "a quant tile in a file whose required_features does not set quant (bit 3)", "QT-6")
        return {"bits": f.int_in("bits", 1, 8, "QT-1"),
                "group": f.power_of_two("group", container.MIN_GROUP, container.MAX_GROUP, "QT-1"),
                "scale_bits": f.int_in("scale_bits", 1, 8, "QT-1"), "scale": f.positive_f32("scale", "QT-2")}
    return {"rank": f.int_in("rank", 0, container.MAX_PARAM, "LP-1"), "bits_l": f.int_in("bits_l", 1, 8, "LP-1"),
            "bits_r": f.int_in("bits_r", 1, 8, "LP-1"),
            "group": f.power_of_two("group", container.MIN_GROUP, container.MAX_GROUP, "LP-1"),
            "scale_l": f.positive_f32("scale_l", "LP-2"), "scale_r": f.positive_f32("scale_r", "LP-2")}


class _FloatValues(container.Section):
    """A dense tile's float values, checked finite [DN-3] once their CRC is [SEC-7]."""

    def __init__(self, section: container.Section, storage: str):
        super().__init__(section.kind, section.offset, section.length, section.crc)
        self._storage = storage
        self._checked = False

    def payload(self, crc32c) -> memoryview:
        data = super().payload(crc32c)
        if not self._checked:
            values = container.dense_values(data, self._storage, (self.length // container.DTYPES[self._storage][1],))
            if not np.isfinite(values).all():
                raise FormatError(f"[DN-3] section 'values' at offset {self.offset} holds a NaN or infinity")
            self._checked = True
        return data


def _unique_name(f: _Map, seen: set, what: str, rule: str) -> str:
    """A map's "name": 1 to 1024 bytes, not in ``seen`` ([TEN-2], [GRP-1]); it then names the map in messages."""
    name = f.get("name", str, rule)
    if not 1 <= len(name.encode("utf-8")) <= container.MAX_NAME_BYTES or name in seen:
        _fail(f.where, f"{what} name '{name[:40]}' is empty, longer than {container.MAX_NAME_BYTES} bytes "
              "or used twice", rule)
    seen.add(name)
    f.where = f"{what} '{name}'"
    return name


def _groups(top: _Map) -> list:
    raw = top.get("groups", list, "GRP-8")
    if not raw:
        _fail("header", "required_features set shared_factor (bit 1) but 'groups' is empty", "GRP-8")
    if len(raw) > container.MAX_TENSORS:
        _fail("header", f"more than {container.MAX_TENSORS} groups", "GRP-1")
    groups, names, members = [], set(), set()
    for k, obj in enumerate(raw):
        if not isinstance(obj, dict):
            _fail("header", f"group #{k} is not a map", "GRP-1")
        f = _Map(obj, f"group #{k}")
        name = _unique_name(f, names, "group", "GRP-1")
        scheme = f.get("scheme", str, "GRP-2")
        if scheme not in container.GROUP_SCHEMES:
            _fail(f.where, f"scheme '{scheme}' cannot be shared (signcut or lplr)", "GRP-2")
        columns = f.int_in("columns", 1, container.MAX_DIM, "GRP-3")
        panel = f.panel("GRP-3")
        if scheme == "signcut":
            params = {"width": f.int_in("width", 0, container.MAX_PARAM, "GRP-2")}
        else:
            params = {"rank": f.int_in("rank", 0, container.MAX_PARAM, "GRP-2"),
                      "bits_r": f.int_in("bits_r", 1, 8, "GRP-2"),
                      "group": f.power_of_two("group", container.MIN_GROUP, container.MAX_GROUP, "GRP-2"),
                      "scale_r": f.positive_f32("scale_r", "GRP-2")}
        listed = f.get("members", list, "GRP-4")
        if not 1 <= len(listed) <= container.MAX_TENSORS or any(type(m) is not str for m in listed):
            _fail(f.where, "'members' must list 1 to 65536 tensor names", "GRP-4")
        for member in listed:
            if member in members:
                _fail(f.where, f"tensor '{member}' is a member twice", "GRP-4")
            members.add(member)
        lengths = container.group_section_lengths(scheme, columns, params)
        sections = _entries(f, container.SHARED_KINDS[scheme], lengths, "GRP-5", "GRP-5")
        groups.append(container.GroupRecord(name, scheme, columns, panel, params, list(listed), sections))
    return groups


def _tensor(obj, index: int, seen: set, required: int, member_of: dict) -> tuple:
    """(TensorRecord with resolved tiles, [the sections it lists itself, in order])."""
    if not isinstance(obj, dict):
        _fail("header", f"tensor #{index} is not a map", "TEN-1")
    f = _Map(obj, f"tensor #{index}")
    name = _unique_name(f, seen, "tensor", "TEN-2")
    shape = f.ints("shape", "TEN-3")
    if len(shape) > container.MAX_NDIM or any(not 1 <= d <= container.MAX_DIM for d in shape) \
            or math.prod(shape) > container.MAX_ELEMENTS:
        _fail(f.where, f"shape {list(shape)} is out of range", "TEN-3")
    dtype = f.get("dtype", str, "TEN-4")
    if dtype not in container.DTYPES:
        _fail(f.where, f"unknown dtype '{dtype}'", "TEN-4")
    tile_shape = f.ints("tile_shape", "TIL-1")
    if len(tile_shape) != len(shape) or any(not 1 <= t <= d for t, d in zip(tile_shape, shape)):
        _fail(f.where, f"tile_shape {list(tile_shape)} does not fit shape {list(shape)}", "TIL-1")
    if len(shape) != 2 and tile_shape != shape:
        _fail(f.where, "a tensor that is not 2-D has one tile", "TIL-2")
    panel = f.panel("TEN-5")
    tiles_raw = f.get("tiles", list, "TIL-3")
    grid_size = math.prod(-(-d // t) for d, t in zip(shape, tile_shape))
    if len(tiles_raw) != grid_size:
        _fail(f.where, f"has {len(tiles_raw)} tiles, its grid needs {grid_size}", "TIL-3")
    rel_error = f.get("rel_error", float, "TEN-7", required=False)
    if rel_error is not None:
        rel_error = float(np.float32(rel_error))
        if not (math.isfinite(rel_error) and rel_error >= 0):
            _fail(f.where, "rel_error must be finite and >= 0", "TEN-7")
    encoder = f.get("encoder", dict, "TEN-8", required=False)
    group = member_of.get(name)
    tiles, own = [], []
    if group is not None:
        if len(shape) != 2 or shape[1] != group.columns or not container.DTYPES[dtype][2] \
                or tile_shape != shape or panel != group.panel:
            _fail(f.where, f"a member of group '{group.name}' is a 2-D float tensor of {group.columns} columns, "
                  f"one tile and panel {group.panel}", "GRP-6")
        if not isinstance(tiles_raw[0], dict):
            _fail(f.where, "tile #0 is not a map", "TIL-4")
        tf = _Map(tiles_raw[0], f"tensor '{name}' tile #0")
        scheme = tf.get("scheme", str, "GRP-7")
        if scheme != group.scheme:
            _fail(tf.where, f"scheme '{scheme}' in a member of the {group.scheme} group '{group.name}'", "GRP-7")
        params = dict(group.params)
        if scheme == "lplr":
            params["bits_l"] = tf.int_in("bits_l", 1, 8, "LP-1")
            params["scale_l"] = tf.positive_f32("scale_l", "LP-2")
        lengths = container.section_lengths(scheme, shape, params)[len(container.SHARED_KINDS[scheme]):]
        mine = _entries(tf, container.MEMBER_KINDS[scheme], lengths, "SEC-1", "SEC-2")
        own.extend(mine.values())
        sections = {**group.sections, **mine}
        tiles.append(container.TileRecord((0, 0), shape, scheme, params,
                                          {k: sections[k] for k in container.SECTION_KINDS[scheme]}))
    else:
        for k, (tile_obj, (origin, tshape)) in enumerate(zip(tiles_raw, container.tile_grid(shape, tile_shape))):
            if not isinstance(tile_obj, dict):
                _fail(f.where, f"tile #{k} is not a map", "TIL-4")
            tf = _Map(tile_obj, f"tensor '{name}' tile #{k}")
            scheme = tf.get("scheme", str, "TIL-4")
            if scheme not in container.SCHEMES:
                _fail(tf.where, f"unknown scheme '{scheme}'", "TIL-4")
            tensor_tile = container.is_tensor_tile(scheme, shape) and required & container.SIGNCUT_TENSOR
            if scheme != "dense" and len(shape) != 2 and not tensor_tile:  # [TNS-1]
                _fail(tf.where, f"scheme '{scheme}' needs a 2-D tensor", "TEN-6")
            params = _tile_params(tf, scheme, dtype, required)
            if tensor_tile:
                params.pop("c_scale", None)  # [TNS-2]: c is binary32 in a tensor tile, the key unknown
            sections = _entries(tf, container.tile_kinds(scheme, shape), container.section_lengths(scheme, tshape, params),
                                "SEC-1", "SEC-2")
            if scheme == "dense" and params["storage"] in container.FLOAT_STORAGE:
                sections["values"] = _FloatValues(sections["values"], params["storage"])
            own.extend(sections.values())
            tiles.append(container.TileRecord(origin, tshape, scheme, params, sections))
    return container.TensorRecord(name, shape, dtype, tile_shape, panel, tiles, rel_error, encoder), own


def parse_grouped(buf) -> container.FileRecord:
    """Parse and check a file that sets shared_factor (format 1.2, groups,
    spec §10.4) or signcut_tensor (1.3, order-d signcut tiles, §10.5), which
    the C core's parser does not read yet; sections are checked on first
    use, as for files the C core parses."""
    mv = memoryview(buf).cast("B")
    size = len(mv)
    if size < container.PREAMBLE_SIZE:  # pragma: no cover - the C preamble check runs first
        raise FormatError("[PRE-8] file is shorter than the 64-byte preamble")
    (magic, major, minor, reserved_a, required, optional, header_length, file_length, header_crc,
     reserved_b) = container._PREAMBLE.unpack_from(mv, 0)
    if magic != container.MAGIC:
        raise FormatError("[PRE-1] not an .lrq file: bad magic")
    if major != container.FORMAT_MAJOR:
        raise UnsupportedError(f"[PRE-2] file is format major version {major}")
    if reserved_a or any(reserved_b):
        raise FormatError("[PRE-3] reserved preamble bytes are not zero")
    if required & ~container.KNOWN_REQUIRED_FEATURES:
        raise UnsupportedError(f"[PRE-4] the file needs required features "
                               f"{required & ~container.KNOWN_REQUIRED_FEATURES:#x} that this library does not implement")
    if not 1 <= header_length <= container.MAX_HEADER_LENGTH:
        raise FormatError(f"[PRE-6] header length {header_length} is out of range")
    header_end = container.PREAMBLE_SIZE + header_length
    if file_length != size or header_end > size:
        raise FormatError(f"[PRE-7] the preamble says the file is {file_length} bytes but it is {size}")
    actual = _native.crc32c(mv[container.PREAMBLE_SIZE:header_end], _native.crc32c(mv[:48]))
    if actual != header_crc:
        raise ChecksumError(f"[PRE-9] header CRC-32C is {actual:#010x}, the preamble says {header_crc:#010x}")
    top = _Map(_load_header(bytes(mv[container.PREAMBLE_SIZE:header_end])), "header")
    tensors_raw = top.get("tensors", list, "HDR-5")
    if len(tensors_raw) > container.MAX_TENSORS:
        _fail("header", f"more than {container.MAX_TENSORS} tensors", "LIM-4")
    metadata = top.get("metadata", dict, "HDR-6", required=False) or {}
    if any(type(v) is not str for v in metadata.values()):
        _fail("header", "metadata values must be strings", "HDR-6")
    groups = _groups(top) if required & container.SHARED_FACTOR else []  # [GRP-9]
    member_of = {name: g for g in groups for name in g.members}
    seen: set = set()
    parsed = [_tensor(obj, i, seen, required, member_of) for i, obj in enumerate(tensors_raw)]
    for name, g in member_of.items():
        if name not in seen:
            _fail(f"group '{g.name}'", f"member '{name}' is not a tensor of the file", "GRP-4")
    tensors = [t for t, _ in parsed]
    if required & container.SIGNCUT_C16 and not any("c_scale" in tile.params for t in tensors for tile in t.tiles):
        raise FormatError("[SC-5] required_features set signcut_c16 (bit 0) but no signcut tile has 'c_scale'")
    if required & container.QUANT and not any(tile.scheme == "quant" for t in tensors for tile in t.tiles):
        raise FormatError("[QT-6] required_features set quant (bit 3) but no tile has the scheme 'quant'")
    if required & container.SIGNCUT_TENSOR and not any(container.is_tensor_tile(tile.scheme, tile.shape)
                                                       for t in tensors for tile in t.tiles):
        raise FormatError("[TNS-3] required_features set signcut_tensor (bit 2) but no tensor of order 3 or more "
                          "has a signcut tile")
    sequence = [s for _, own in parsed for s in own] + [s for g in groups for s in g.sections.values()]
    pos = header_end
    for section in sequence:  # canonical placement over the extended sequence [SEC-3]-[SEC-5]
        want = container.align(pos, container.section_alignment(section.length))
        if section.offset != want:
            raise FormatError(f"[SEC-3] section '{section.kind}' is at offset {section.offset}; the canonical offset is {want}")
        if want + section.length > size:
            raise FormatError(f"[SEC-4] section '{section.kind}' runs past the end of the file")
        if any(mv[pos:want]):
            raise FormatError(f"[SEC-5] non-zero padding bytes before offset {want}")
        section.data = mv[want:want + section.length]
        pos = want + section.length
    if pos != size:
        raise FormatError(f"[SEC-4] {size - pos} bytes follow the last section")
    return container.FileRecord(tensors, metadata, required, optional, minor, groups)


def _group_from_bytes(data: bytes) -> Group:
    from .io import loads

    return loads(data)
