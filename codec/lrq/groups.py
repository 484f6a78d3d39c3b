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

from . import _native
from . import format as container
from .errors import ArgumentError
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


def _pack_scales(scales: np.ndarray) -> bytes:
    parts = [scales[r0:r0 + _ROW_TILE].T.reshape(-1) for r0 in range(0, scales.shape[0], _ROW_TILE)]
    return np.concatenate(parts).astype("<f2").tobytes() if parts else b""


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
    return [{"l_codes": c, "l_scales": _pack_scales(scales[r0:r1])} for c, (r0, r1) in zip(codes, bounds)]


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
        raw = {"l_codes": code_bytes, "l_scales": _pack_scales(scales)}
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


def _group_from_bytes(data: bytes) -> Group:
    from .io import loads

    return loads(data)
