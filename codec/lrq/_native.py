"""The thin Python face of the C core (``lrq._lrq_cffi``): numpy in, numpy out.

Every function here checks its Python-side arguments (types, dtypes, shapes,
contiguity), borrows input buffers with ``ffi.from_buffer`` (never a copy),
allocates the result, makes one C call and turns a non-zero return code into
the matching :mod:`lrq.errors` exception.  Rules about *values* (which panel
sizes are valid, when a size overflows) live in C alone; Python asks C
instead of repeating them.  cffi releases the GIL around each call.
"""

from __future__ import annotations

import operator
import os
import re
import warnings

import numpy as np

from lrq._lrq_cffi import ffi, lib

from .errors import ArgumentError, ChecksumError, FormatError, LrqError, LrqWarning, ResourceError, UnsupportedError

# The extension is compiled from the same tree as its header, so this can
# only fail when a stale build is mixed with new sources; refuse to run then
# rather than call functions whose meaning may have changed.
if lib.lrq_version_number() != lib.LRQ_VERSION_NUMBER:
    raise ImportError(
        f"lrq: the C library reports version {lib.lrq_version_number()} but the "
        f"binding was built against header version {lib.LRQ_VERSION_NUMBER}; "
        "rebuild the package (pip install --force-reinstall lrq)"
    )

_EXCEPTIONS = {
    lib.LRQ_ERR_FORMAT: FormatError,
    lib.LRQ_ERR_PADDING: FormatError,
    lib.LRQ_ERR_CHECKSUM: ChecksumError,
    lib.LRQ_ERR_UNSUPPORTED: UnsupportedError,
    lib.LRQ_ERR_ARGUMENT: ArgumentError,
    lib.LRQ_ERR_BUFFER_SIZE: ArgumentError,
    lib.LRQ_ERR_MEMORY: ResourceError,
    lib.LRQ_ERR_INTERNAL: LrqError,
}

_U64_MAX = (1 << 64) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


_ISA_NAMES = ("scalar", "sse4.2", "avx2", "avx512", "neon")


def _warn_about_environment() -> None:
    """Say once, at import, when LRQ_NUM_THREADS or LRQ_FORCE_ISA is ignored.

    The C core reads both variables once per process and silently falls
    back to its default for a value it cannot use (lrq.h, "Threads" and
    lrq_isa_name).  This repeats C's acceptance rules -- an integer strtol
    reads whole (optional leading blanks and sign) in [1, LRQ_THREADS_MAX];
    a path name, capped at what the CPU supports -- and compares with what C
    then reports, so the warning names the value actually in use.
    """
    threads_env = os.environ.get("LRQ_NUM_THREADS")
    if threads_env:  # C ignores an empty value as unset
        accepted = re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+", threads_env) is not None
        if not accepted or not 1 <= int(threads_env) <= lib.LRQ_THREADS_MAX:
            warnings.warn(f"LRQ_NUM_THREADS={threads_env!r} is not a whole number in [1, {lib.LRQ_THREADS_MAX}]; "
                          f"ignored, lrq uses {threads()} threads", LrqWarning, stacklevel=3)
    forced = os.environ.get("LRQ_FORCE_ISA")
    if forced is not None:
        active = isa_name()
        if forced not in _ISA_NAMES:
            warnings.warn(f"LRQ_FORCE_ISA={forced!r} names no kernel path (one of {', '.join(_ISA_NAMES)}); "
                          f"ignored, lrq uses {active}", LrqWarning, stacklevel=3)
        elif active != forced:
            warnings.warn(f"LRQ_FORCE_ISA={forced!r}: this CPU cannot run the {forced} kernels; lrq uses {active}",
                          LrqWarning, stacklevel=3)


def version_number() -> int:
    """The C library version as major*10000 + minor*100 + patch."""
    return int(lib.lrq_version_number())


def isa_name() -> str:
    """The instruction-set path in use: "scalar", "sse4.2", "avx2", "avx512" or "neon".

    Chosen once per process from the CPU and the ``LRQ_FORCE_ISA`` environment
    variable (or later by :func:`set_isa`); it never changes results, only speed.
    """
    return ffi.string(lib.lrq_isa_name()).decode("ascii")


def set_isa(name) -> str:
    """Use the path ``name`` from now on (capped at what the CPU supports).

    ``None`` goes back to the path chosen at start-up.  Returns the path now
    active.  Every path computes the same bits, so this is for tests and
    benchmarks.
    """
    if name is not None and not isinstance(name, str):
        raise ArgumentError(f"name must be a string or None, not {type(name).__name__}")
    _check(lib.lrq_isa_set(ffi.NULL if name is None else name.encode("ascii")), "lrq_isa_set",
           f"{name!r} is not one of {', '.join(_ISA_NAMES)}")
    return isa_name()


def threads() -> int:
    """The number of threads products, decoding and (by default) encoding use."""
    return int(lib.lrq_threads_get())


def threads_max() -> int:
    """The most threads any call may use (LRQ_THREADS_MAX)."""
    return int(lib.LRQ_THREADS_MAX)


def set_threads(n: int) -> None:
    """Use ``n`` threads (1 .. LRQ_THREADS_MAX) from now on; results do not change."""
    n = _integer(n, "n", 1, int(lib.LRQ_THREADS_MAX))
    _check(lib.lrq_threads_set(n), "lrq_threads_set")


def error_name(code: int) -> str:
    """The ``LRQ_*`` name of a C return code, or "unknown error"."""
    code = operator.index(code)
    if not _INT_MIN <= code <= _INT_MAX:
        return "unknown error"
    return ffi.string(lib.lrq_error_name(code)).decode("ascii")


def _check(rc: int, func: str, detail: str = "") -> None:
    if rc == lib.LRQ_OK:
        return
    exc = _EXCEPTIONS.get(rc, LrqError)
    raise exc(f"{func}: {error_name(rc)}" + (f": {detail}" if detail else ""))


def _check_file(rc: int, func: str, detail) -> None:
    """Raise for a container call; the C message (it leads with the spec rule
    that failed, "[SEC-3] ...") is the whole text when there is one."""
    if rc == lib.LRQ_OK:
        return
    text = ffi.string(detail).decode("utf-8", "replace")
    raise _EXCEPTIONS.get(rc, LrqError)(text or f"{func}: {error_name(rc)}")


def _integer(value, name: str, low: int, high: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise ArgumentError(f"{name} must be an integer, not {type(value).__name__}") from None
    if not low <= value <= high:
        raise ArgumentError(f"{name} = {value} is outside [{low}, {high}]")
    return value


def _borrow(data, name: str):
    """A uint8_t[] view of any C-contiguous buffer, without copying it."""
    try:
        return ffi.from_buffer("uint8_t[]", data)
    except (TypeError, ValueError, BufferError) as exc:
        raise ArgumentError(f"{name} must be a C-contiguous bytes-like object ({exc})") from None


def _allocate(shape, dtype) -> np.ndarray:
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as exc:
        raise ResourceError(f"cannot allocate a {dtype} array of shape {shape}: {exc}") from None


def crc32c(data, value: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``value``.

    The convention of :func:`zlib.crc32`: start from 0 and pass the previous
    result to continue, so ``crc32c(b, crc32c(a)) == crc32c(a + b)``.
    ``data`` is any C-contiguous bytes-like object (bytes, bytearray,
    memoryview, numpy array).
    """
    value = _integer(value, "value", 0, 0xFFFFFFFF)
    buf = _borrow(data, "data")
    return int(lib.lrq_crc32c(value, buf, len(buf)))


def _layout_args(rows, k, elem_bits, panel) -> tuple[int, int, int, int]:
    """Python ints of C's parameter types; the value rules are C's."""
    return (
        _integer(rows, "rows", 0, _U64_MAX),
        _integer(k, "k", 0, _U64_MAX),
        _integer(elem_bits, "elem_bits", _INT_MIN, _INT_MAX),
        _integer(panel, "panel", 0, _U64_MAX),
    )


def layout_size(rows: int, k: int, elem_bits: int, panel: int) -> int:
    """Bytes of a rows × k interleaved matrix of ``elem_bits``-bit elements."""
    rows, k, elem_bits, panel = _layout_args(rows, k, elem_bits, panel)
    out = ffi.new("uint64_t *")
    _check(
        lib.lrq_layout_size(rows, k, elem_bits, panel, out),
        "lrq_layout_size",
        f"rows={rows}, k={k}, elem_bits={elem_bits}, panel={panel}: elem_bits must be "
        "1 or 8, panel a multiple of 64 in [64, 2^20], and the size must fit in 64 bits",
    )
    return int(out[0])


def pack_interleaved(elements: np.ndarray, elem_bits: int, panel: int) -> np.ndarray:
    """Pack a (rows, k) uint8 array into the interleaved layout; returns 1-D uint8.

    For ``elem_bits == 1`` each element is a sign bit, 0 (+1) or 1 (−1); a
    bool array is accepted too.  For ``elem_bits == 8`` each element is a
    byte code.  ``elements`` must be C-contiguous; it is read in place.
    """
    if not isinstance(elements, np.ndarray):
        raise ArgumentError(f"elements must be a numpy array, not {type(elements).__name__}")
    if elements.dtype == np.bool_:
        elements = elements.view(np.uint8)
    if elements.dtype != np.uint8:
        raise ArgumentError(f"elements must have dtype uint8, not {elements.dtype}")
    if elements.ndim != 2:
        raise ArgumentError(f"elements must be 2-D (rows, k), not {elements.ndim}-D")
    if not elements.flags.c_contiguous:
        raise ArgumentError("elements must be C-contiguous (use np.ascontiguousarray)")
    rows, k = elements.shape
    nbytes = layout_size(rows, k, elem_bits, panel)
    out = _allocate(nbytes, np.uint8)
    rc = lib.lrq_layout_pack(
        _borrow(elements, "elements"), rows, k, elem_bits, panel,
        ffi.from_buffer("uint8_t[]", out, require_writable=True), nbytes,
    )
    _check(rc, "lrq_layout_pack", "sign elements must be 0 or 1" if rc == lib.LRQ_ERR_ARGUMENT else "")
    return out


def _unpack_into(buf, rows: int, k: int, elem_bits: int, panel: int, dtype, ctype: str, func: str):
    """Borrow the packed input and allocate the output of an unpack call."""
    nbytes = layout_size(rows, k, elem_bits, panel)
    packed = _borrow(buf, "buf")
    # Checked before allocating, so the output is bounded by the input size.
    if len(packed) != nbytes:
        raise ArgumentError(
            f"{func}: LRQ_ERR_BUFFER_SIZE: {len(packed)} bytes given, the layout of a "
            f"{rows} x {k} matrix of {elem_bits}-bit elements takes {nbytes}"
        )
    out = _allocate((rows, k), dtype)
    return packed, out, ffi.from_buffer(ctype, out, require_writable=True)


def _check_unpack(rc: int, func: str) -> None:
    _check(rc, func, "a padding bit or byte is not zero" if rc == lib.LRQ_ERR_PADDING else "")


def unpack_interleaved(buf, rows: int, k: int, elem_bits: int, panel: int) -> np.ndarray:
    """Read an interleaved matrix back to a (rows, k) uint8 array.

    ``buf`` (any C-contiguous bytes-like object) must be exactly
    :func:`layout_size` bytes, else :class:`ArgumentError`; non-zero padding
    raises :class:`FormatError`.
    """
    func = "lrq_layout_unpack"
    rows, k, elem_bits, panel = _layout_args(rows, k, elem_bits, panel)
    packed, out, dest = _unpack_into(buf, rows, k, elem_bits, panel, np.uint8, "uint8_t[]", func)
    _check_unpack(lib.lrq_layout_unpack(packed, len(packed), rows, k, elem_bits, panel, dest), func)
    return out


def unpack_signs_f32(buf, rows: int, k: int, panel: int) -> np.ndarray:
    """Read an interleaved sign matrix as (rows, k) float32 of ±1.0 (bit 1 → −1).

    Equal to ``1 - 2 * unpack_interleaved(buf, rows, k, 1, panel)``, in one
    pass; the same errors.
    """
    func = "lrq_layout_unpack_signs_f32"
    rows, k, _, panel = _layout_args(rows, k, 1, panel)
    packed, out, dest = _unpack_into(buf, rows, k, 1, panel, np.float32, "float[]", func)
    _check_unpack(lib.lrq_layout_unpack_signs_f32(packed, len(packed), rows, k, panel, dest), func)
    return out


_NAMES: dict = {}


def _name(table, code: int) -> str:
    """The C name of an enum ``code`` (a dtype, scheme or section kind), looked up once."""
    key = (table, code)
    name = _NAMES.get(key)
    if name is None:
        name = _NAMES[key] = ffi.string(table(code)).decode("ascii")
    return name


class ContainerFile:
    """A `.lrq` file parsed and validated by the C core (``lrq_file``).

    ``data`` is any C-contiguous bytes-like object holding the whole file (a
    ``bytes`` or a read-only ``mmap``); it is borrowed, never copied, and kept
    alive by this object.  Opening checks the preamble, the header and the
    placement of every section; with ``verify="checksums"`` or
    ``verify="content"`` every section's CRC (and content rules) too, all
    checksums before any content.  Otherwise :meth:`section` checks each
    section the first time it is asked for, once.

    Everything returned is plain Python data; errors are the
    :mod:`lrq.errors` classes with the C message, which names the rule.
    """

    _FLAGS = {"none": 0, "checksums": lib.LRQ_FILE_VERIFY_CHECKSUMS, "content": lib.LRQ_FILE_VERIFY_CONTENT}

    def __init__(self, data, verify: str = "none"):
        if verify not in self._FLAGS:
            raise ArgumentError(f"verify must be one of {', '.join(self._FLAGS)}, not {verify!r}")
        self._buf = _borrow(data, "data")
        self._view = memoryview(data).cast("B")
        out = ffi.new("lrq_file **")
        detail = ffi.new("char[]", lib.LRQ_DETAIL_SIZE)
        rc = lib.lrq_file_open_buffer(self._buf, len(self._buf), self._FLAGS[verify], out, detail, len(detail))
        _check_file(rc, "lrq_file_open_buffer", detail)
        self._handle = ffi.gc(out[0], lib.lrq_file_free)
        self._info = ffi.new("lrq_file_info *")
        _check(lib.lrq_file_get_info(self._handle, self._info), "lrq_file_get_info")
        self._tensor = ffi.new("lrq_tensor_info *")
        self._tile = ffi.new("lrq_tile_info *")

    @property
    def minor(self) -> int:
        return int(self._info.format_minor)

    @property
    def features(self) -> tuple[int, int]:
        """(required, optional) feature flags of the preamble."""
        return int(self._info.required_features), int(self._info.optional_features)

    def __len__(self) -> int:
        return int(self._info.tensor_count)

    def metadata(self) -> dict:
        """The "metadata" map, str -> str, in file order."""
        key, key_len = ffi.new("const char **"), ffi.new("size_t *")
        value, value_len = ffi.new("const char **"), ffi.new("size_t *")
        out = {}
        for i in range(int(self._info.metadata_count)):
            _check(lib.lrq_file_metadata(self._handle, i, key, key_len, value, value_len), "lrq_file_metadata")
            out[ffi.unpack(key[0], key_len[0]).decode("utf-8")] = ffi.unpack(value[0], value_len[0]).decode("utf-8")
        return out

    def tensor(self, index: int) -> dict:
        """What the header says about tensor ``index``.

        Keys: name, shape, tile_shape, dtype (its name), panel, tile_count,
        rel_error (float or None), encoder (the msgpack bytes of the
        "encoder" map, or None).
        """
        t = self._tensor
        _check(lib.lrq_file_tensor(self._handle, index, t), "lrq_file_tensor")
        ndim = t.ndim
        return {
            "name": ffi.unpack(t.name, t.name_len).decode("utf-8"),
            "shape": tuple(t.shape[0:ndim]),
            "tile_shape": tuple(t.tile_shape[0:ndim]),
            "dtype": _name(lib.lrq_dtype_name, t.dtype),
            "panel": int(t.panel),
            "tile_count": int(t.tile_count),
            "rel_error": float(t.rel_error) if t.has_rel_error else None,
            "encoder": ffi.unpack(ffi.cast("char *", t.encoder), t.encoder_len) if t.encoder_len else None,
        }

    def tile(self, tensor: int, index: int) -> dict:
        """Tile ``index`` of ``tensor``: scheme, origin, shape, params (the
        header keys of its scheme) and sections [(kind, offset, length, crc)]."""
        t = self._tile
        _check(lib.lrq_file_tile(self._handle, tensor, index, t), "lrq_file_tile")
        scheme = _name(lib.lrq_scheme_name, t.scheme)
        if scheme == "dense":
            params = {"storage": _name(lib.lrq_dtype_name, t.storage)}
        elif scheme == "signcut":
            params = {"width": int(t.width)}
            if t.c_scale != 0:
                params["c_scale"] = float(t.c_scale)
        elif scheme == "quant":
            params = {"bits": int(t.bits), "group": int(t.group), "scale_bits": int(t.scale_bits),
                      "scale": float(t.scale)}
        else:
            params = {"rank": int(t.rank), "bits_l": int(t.bits_l), "bits_r": int(t.bits_r),
                      "group": int(t.group), "scale_l": float(t.scale_l), "scale_r": float(t.scale_r)}
        sections = [
            (_name(lib.lrq_section_kind_name, t.section_kind[s]), int(t.section_offset[s]),
             int(t.section_length[s]), int(t.section_crc32c[s]))
            for s in range(t.section_count)
        ]
        ndim = t.ndim
        return {"scheme": scheme, "origin": tuple(t.origin[0:ndim]), "shape": tuple(t.shape[0:ndim]),
                "params": params, "sections": sections}

    def groups(self) -> list:
        """The groups of a 1.2 file (spec §10.4), in header order: dicts with
        name, scheme, columns, panel, params (the shared ones: width; or
        rank, bits_r, group, scale_r), members (tensor indices, in the
        group's order) and sections [(kind, offset, length, crc)] (the shared
        ones).  A member's tile (:meth:`tile`) is a whole tile of its scheme
        whose first sections are these; check their bytes through it."""
        info = ffi.new("lrq_group_info *")
        tensor = ffi.new("uint64_t *")
        out = []
        for g in range(int(self._info.group_count)):
            _check(lib.lrq_file_group(self._handle, g, info), "lrq_file_group")
            scheme = _name(lib.lrq_scheme_name, info.scheme)
            if scheme == "signcut":
                params = {"width": int(info.width)}
            else:
                params = {"rank": int(info.rank), "bits_r": int(info.bits_r), "group": int(info.group),
                          "scale_r": float(info.scale_r)}
            members = []
            for k in range(int(info.member_count)):
                _check(lib.lrq_file_group_member(self._handle, g, k, tensor), "lrq_file_group_member")
                members.append(int(tensor[0]))
            sections = [
                (_name(lib.lrq_section_kind_name, info.section_kind[s]), int(info.section_offset[s]),
                 int(info.section_length[s]), int(info.section_crc32c[s]))
                for s in range(info.section_count)
            ]
            out.append({"name": ffi.unpack(info.name, info.name_len).decode("utf-8"), "scheme": scheme,
                        "columns": int(info.columns), "panel": int(info.panel), "params": params,
                        "members": members, "sections": sections})
        return out

    def dense_layout(self, tensor: int, count: int):
        """(tile, origin, shape, storage, offset, length) of every tile of ``tensor``, in grid order.

        For a dense tile, ``storage`` names its values' type and its values
        section (``offset``, ``length`` in the file) is checked first, as by
        :meth:`section`; for a factorized tile ``storage`` is None.  One pass
        with two C calls a tile and no record objects: the whole-tensor
        decode of a file of many small tiles costs a few microseconds a tile.
        """
        handle, t = self._handle, self._tile
        data, length = ffi.new("const void **"), ffi.new("uint64_t *")
        detail = ffi.new("char[]", lib.LRQ_DETAIL_SIZE)
        file_tile, file_section, dtype_name = lib.lrq_file_tile, lib.lrq_file_section, lib.lrq_dtype_name
        for index in range(count):
            _check(file_tile(handle, tensor, index, t), "lrq_file_tile")
            ndim = t.ndim
            origin, shape = tuple(t.origin[0:ndim]), tuple(t.shape[0:ndim])
            if _name(lib.lrq_scheme_name, t.scheme) != "dense":
                yield index, origin, shape, None, 0, 0
                continue
            rc = file_section(handle, tensor, index, 0, data, length, detail, lib.LRQ_DETAIL_SIZE)
            if rc != lib.LRQ_OK:
                _check_file(rc, "lrq_file_section", detail)
            yield index, origin, shape, _name(dtype_name, t.storage), int(t.section_offset[0]), int(length[0])

    def view(self, offset: int, length: int) -> memoryview:
        """Bytes [offset, offset + length) of the file, unchecked (for copying)."""
        return self._view[offset : offset + length]

    def section(self, tensor: int, tile: int, index: int) -> memoryview:
        """A section's bytes, its CRC-32C and content rules verified first
        (once per section; later calls return at once)."""
        data, length = ffi.new("const void **"), ffi.new("uint64_t *")
        detail = ffi.new("char[]", lib.LRQ_DETAIL_SIZE)
        rc = lib.lrq_file_section(self._handle, tensor, tile, index, data, length, detail, len(detail))
        _check_file(rc, "lrq_file_section", detail)
        offset = int(ffi.cast("uintptr_t", data[0])) - int(ffi.cast("uintptr_t", self._buf))
        return self._view[offset : offset + int(length[0])]

    def verify(self, content: bool = True) -> None:
        """Check every section now (checksums, then content rules)."""
        detail = ffi.new("char[]", lib.LRQ_DETAIL_SIZE)
        flags = lib.LRQ_FILE_VERIFY_CONTENT if content else lib.LRQ_FILE_VERIFY_CHECKSUMS
        _check_file(lib.lrq_file_verify(self._handle, flags, detail, len(detail)), "lrq_file_verify", detail)

class MappingGuard:
    """Guards a read-only file mapping against SIGBUS (``lrq_mapping_guard``).

    When the file is truncated while mapped, an access past its new end no
    longer kills the process: the rest of the mapping reads as zeros from the
    faulting page on and :attr:`damaged` becomes true, so the caller can
    discard what it computed.  Holds ``mapping`` so the mapping outlives the
    guard; :meth:`release` (or the guard's end) stops guarding before the
    mapping is closed.  Without a free slot (``LRQ_MAPPING_GUARD_MAX``
    mappings already guarded) the mapping is unguarded and :attr:`guarded`
    is false.
    """

    def __init__(self, mapping):
        self._mapping = mapping
        self._slot = None
        with ffi.from_buffer(mapping) as buf:  # released at once: close() stays possible
            address, size = ffi.cast("void *", buf), len(buf)
        slot = ffi.new("int *")
        rc = lib.lrq_mapping_guard(address, size, slot)
        if rc == lib.LRQ_OK:
            self._slot = slot[0]
        elif rc != lib.LRQ_ERR_MEMORY:
            _check(rc, "lrq_mapping_guard")

    @property
    def guarded(self) -> bool:
        return self._slot is not None

    @property
    def mapping(self):
        """The guarded mapping, or None once released."""
        return self._mapping

    @property
    def damaged(self) -> bool:
        return self._slot is not None and bool(lib.lrq_mapping_damaged(self._slot))

    def release(self) -> None:
        if self._slot is not None:
            lib.lrq_mapping_unguard(self._slot)
            self._slot = None
        self._mapping = None

    def __del__(self):
        self.release()


# ----------------------------------------------------------------- tiles

_F32 = np.dtype(np.float32)
_PRECISIONS = {"float32": 0, "int16": lib.LRQ_PRODUCT_INT16, "int8": lib.LRQ_PRODUCT_INT8}


def kernel_readable(a: np.ndarray) -> np.ndarray:
    """``a`` itself when the kernels can read it in place, else a float32 copy.

    The kernels take strides in whole floats, so they read an array in place
    only when it holds native-order binary32, starts on a 4-byte boundary and
    every stride is a non-negative multiple of 4 bytes (numpy's "aligned"
    flag covers the address and the strides).  Anything else -- a field of a
    packed record array, a big-endian or float16/float64/integer array, a
    reversed view -- is copied; checks kept cheap, since on a small tile this
    wrapper, not the product, is most of the time of ``M @ x``.
    """
    if a.dtype == _F32 and a.flags.aligned and (a.ndim == 0 or min(a.strides) >= 0):
        return a
    return np.ascontiguousarray(a, dtype=_F32)


def _float_view(a: np.ndarray, writable: bool):
    """A cffi float pointer to a float32 array with non-negative strides, no copy.

    The C call takes the strides separately, so the buffer handed to
    ``ffi.from_buffer`` only has to start at the first element and cover the
    memory the array touches: the array itself when it is contiguous (its
    transpose when Fortran-ordered), else that span viewed as 1-D.
    """
    flags = a.flags
    if flags.c_contiguous and a.size:
        return ffi.from_buffer("float[]", a, require_writable=writable)
    if a.size == 0:
        return ffi.NULL
    if flags.f_contiguous:
        return ffi.from_buffer("float[]", a.T, require_writable=writable)
    span = sum((n - 1) * st for n, st in zip(a.shape, a.strides)) // 4 + 1
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(4,), writeable=writable)
    return ffi.from_buffer("float[]", flat, require_writable=writable)


class Tile:
    """A signcut, lplr or quant tile on the C core (``lrq_tile``), over borrowed bytes.

    The handle reads the section buffers in place -- bytes, or memoryviews of
    a memory-mapped file -- and this object keeps them alive.  Creation checks
    the value rules of the format (padding, coefficients, scales, codes); the
    section CRCs are the caller's to check first.
    """

    __slots__ = ("_handle", "_keep", "shape", "scheme")

    def __init__(self, handle, keep, shape, scheme):
        self._handle = handle
        self._keep = keep
        self.shape = shape
        self.scheme = scheme

    def product(self, x: np.ndarray, *, transpose: bool = False, precision: str = "float32",
                out: np.ndarray = None) -> np.ndarray:
        """A @ x (or A.T @ x) for x of shape (k,) or (k, nvec), any layout.

        x is read in place when it is float32 the kernels can address (see
        :func:`kernel_readable`), else converted to float32 first; float32
        out; ``out`` (same shape rules) is written in
        place when given.  ``precision`` "int16" / "int8" selects the fast
        paths of lrq.h (A @ x only).
        """
        m, n = self.shape
        k_in, k_out = (m, n) if transpose else (n, m)
        flags = _PRECISIONS.get(precision)
        if flags is None:
            raise ArgumentError(f"precision must be one of {', '.join(_PRECISIONS)}, not {precision!r}")
        if transpose:
            if flags:
                raise ArgumentError("the int16 / int8 fast paths compute A @ x only, not A.T @ x")
            flags = lib.LRQ_PRODUCT_TRANSPOSE
        if x.ndim not in (1, 2) or x.shape[0] != k_in:
            raise ArgumentError(f"internal: input of {k_in} rows expected, got shape {x.shape}")
        x = kernel_readable(x)
        shape = (k_out,) if x.ndim == 1 else (k_out, x.shape[1])
        if out is None:
            out = _allocate(shape, _F32)
        elif out.shape != shape or min(out.strides) < 0:
            raise ArgumentError("internal: output array of the wrong shape or strides")
        xv, xe = (0, x.strides[0] // 4) if x.ndim == 1 else (x.strides[1] // 4, x.strides[0] // 4)
        yv, ye = (0, out.strides[0] // 4) if out.ndim == 1 else (out.strides[1] // 4, out.strides[0] // 4)
        _check(lib.lrq_tile_product(self._handle, flags, 1 if x.ndim == 1 else x.shape[1],
                                    _float_view(x, False), xv, xe, _float_view(out, True), yv, ye),
               "lrq_tile_product")
        return out

    def decode(self, out: np.ndarray = None, threads: int = 0) -> np.ndarray:
        """The dense tile as float32; ``out`` may be a row-major view with unit column stride.

        ``threads``: 0 for lrq's thread count, 1 for the calling thread alone.
        """
        m, n = self.shape
        if out is None:
            out = _allocate((m, n), np.float32)
        if out.dtype != np.float32 or out.shape != (m, n) or (m and n and (out.strides[1] != 4 or out.strides[0] % 4 or out.strides[0] < 0)):
            raise ArgumentError("internal: decode needs a float32 (m, n) array with unit column stride")
        ld = out.strides[0] // 4 if m > 1 else n
        _check(lib.lrq_tile_decode_threads(self._handle, _float_view(out, True), ld, threads), "lrq_tile_decode")
        return out


def _tile(create, args, bufs, sources, shape, scheme, what):
    """A Tile over the borrowed ``bufs`` of the section buffers ``sources``.

    The tile keeps a memoryview of each source, which pins its memory (an
    mmap cannot close, a bytearray cannot resize while a view exports it),
    and the cffi buffers are released at once: a cffi buffer over a
    memoryview that outlives it in a reference cycle (a tile of a matrix of
    an unclosed ``lrq.File``) can be freed by the garbage collector after
    the view it exports, which crashes CPython 3.11.
    """
    out = ffi.new("lrq_tile **")
    detail = ffi.new("char[]", lib.LRQ_DETAIL_SIZE)
    keep = [memoryview(source) for source in sources]
    try:
        # The C message leads with the spec rule and names the section.
        _check_file(create(out, *args, detail, lib.LRQ_DETAIL_SIZE), what, detail)
    finally:
        for buf in bufs:
            ffi.release(buf)
    return Tile(ffi.gc(out[0], lib.lrq_tile_free), keep, shape, scheme)


def signcut_tile(m: int, n: int, w: int, panel: int, c, tt, s, c_scale=None) -> Tile:
    """A signcut tile from its three sections (any C-contiguous buffers).

    With ``c_scale`` (format 1.1), section c holds w binary16 values and
    c[k] = c_scale * c16[k]; the tile then keeps its own float32 copy of c.
    """
    bufs = [_borrow(b, name) for b, name in ((c, "c"), (tt, "tt"), (s, "s"))]
    args = (_integer(m, "m", 0, _U64_MAX), _integer(n, "n", 0, _U64_MAX), _integer(w, "w", 0, _U64_MAX),
            _integer(panel, "panel", 0, _U64_MAX))
    flat = [x for b in bufs for x in (b, len(b))]
    if c_scale is None:
        return _tile(lib.lrq_tile_create_signcut_detail, (*args, *flat), bufs, (c, tt, s), (m, n), "signcut",
                     "lrq_tile_create_signcut")
    return _tile(lib.lrq_tile_create_signcut_c16_detail, (*args, float(c_scale), *flat), bufs, (c, tt, s), (m, n), "signcut",
                 "lrq_tile_create_signcut_c16")


def lplr_tile(m: int, n: int, params: dict, panel: int, r_codes, r_scales, l_codes, l_scales) -> Tile:
    """An lplr tile from its parameters (the tile map's) and four sections."""
    names = ("r_codes", "r_scales", "l_codes", "l_scales")
    bufs = [_borrow(b, name) for b, name in zip((r_codes, r_scales, l_codes, l_scales), names)]
    args = (
        _integer(m, "m", 0, _U64_MAX), _integer(n, "n", 0, _U64_MAX),
        _integer(params["rank"], "rank", 0, _U64_MAX),
        _integer(params["bits_l"], "bits_l", _INT_MIN, _INT_MAX), _integer(params["bits_r"], "bits_r", _INT_MIN, _INT_MAX),
        _integer(params["group"], "group", 0, _U64_MAX),
        float(params["scale_l"]), float(params["scale_r"]), _integer(panel, "panel", 0, _U64_MAX),
    )
    flat = [x for b in bufs for x in (b, len(b))]
    return _tile(lib.lrq_tile_create_lplr_detail, (*args, *flat), bufs, (r_codes, r_scales, l_codes, l_scales), (m, n),
                 "lplr", "lrq_tile_create_lplr")


def quant_tile(m: int, n: int, params: dict, panel: int, codes, scale_codes, row_exponents) -> Tile:
    """A quant tile (format 1.5, spec §10.7) from its parameters and three sections."""
    names = ("codes", "scale_codes", "row_exponents")
    sources = (codes, scale_codes, row_exponents)
    bufs = [_borrow(b, name) for b, name in zip(sources, names)]
    args = (
        _integer(m, "m", 0, _U64_MAX), _integer(n, "n", 0, _U64_MAX),
        _integer(params["bits"], "bits", _INT_MIN, _INT_MAX), _integer(params["group"], "group", 0, _U64_MAX),
        _integer(params["scale_bits"], "scale_bits", _INT_MIN, _INT_MAX), float(params["scale"]),
        _integer(panel, "panel", 0, _U64_MAX),
    )
    flat = [x for b in bufs for x in (b, len(b))]
    return _tile(lib.lrq_tile_create_quant_detail, (*args, *flat), bufs, sources, (m, n), "quant",
                 "lrq_tile_create_quant")


__all__ = [
    "ContainerFile",
    "crc32c",
    "error_name",
    "isa_name",
    "kernel_readable",
    "lplr_tile",
    "quant_tile",
    "MappingGuard",
    "set_isa",
    "set_threads",
    "signcut_tile",
    "threads",
    "threads_max",
    "Tile",
    "layout_size",
    "pack_interleaved",
    "unpack_interleaved",
    "unpack_signs_f32",
    "version_number",
]


# ---------------------------------------------------------------------------
# Encoders (issue 4): the signcut encoder context.


class SignCutEncoder:
    """A C signcut encoder (``lrq_signcut_encoder``) for one float32 matrix.

    ``run(max_cuts, rel_error)`` makes up to ``max_cuts`` more cuts and
    returns; the GIL is released during the call, so a caller can report
    progress and be interrupted between calls, and several encoders can run
    in parallel threads.  ``threads`` caps the threads a run uses (the
    library's shared team, see :func:`threads`); 0 means the library setting
    at each run.  Results never depend on ``threads`` or on how the cuts are
    split between calls.
    """

    C_STORAGE = {"float32": lib.LRQ_SIGNCUT_C_FLOAT32, "float16": lib.LRQ_SIGNCUT_C_FLOAT16}

    def __init__(self, a: np.ndarray, seed: int, threads: int = 1, c_storage: str = "float32"):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 2:
            raise ArgumentError("the signcut encoder takes a 2-D float32 numpy array")
        if a.strides[1] != 4 or a.strides[0] % 4 or a.strides[0] < 4 * a.shape[1]:
            a = np.ascontiguousarray(a)
        rows, cols = a.shape
        ld = a.strides[0] // 4 if rows > 1 else cols
        seed = _integer(seed, "seed", 0, _U64_MAX)
        threads = _integer(threads, "threads", 0, int(lib.LRQ_THREADS_MAX))
        out = ffi.new("lrq_signcut_encoder **")
        # The first row's address and ld describe the (possibly strided) view.
        base = ffi.cast("const float *", a.__array_interface__["data"][0])
        _check(lib.lrq_signcut_encoder_create(base, rows, cols, ld, seed, threads, out),
               "lrq_signcut_encoder_create", "sizes must be in [1, 2^31-1] and every value finite")
        self._keep = a
        self._enc = ffi.gc(out[0], lib.lrq_signcut_encoder_free)
        self.shape = (rows, cols)
        if c_storage not in self.C_STORAGE:
            raise ArgumentError(f"c_storage must be one of {tuple(self.C_STORAGE)}, not {c_storage!r}")
        _check(lib.lrq_signcut_encoder_set_c_storage(self._enc, self.C_STORAGE[c_storage]),
               "lrq_signcut_encoder_set_c_storage")
        self.c_storage = c_storage

    @property
    def c_scale(self):
        """The tile's "c_scale" (float16 storage, after the first cut), else None."""
        value = float(lib.lrq_signcut_encoder_c_scale(self._enc))
        return value if value > 0 else None

    def run(self, max_cuts: int, rel_error: float = 0.0) -> None:
        max_cuts = _integer(max_cuts, "max_cuts", 0, _U64_MAX)
        _check(lib.lrq_signcut_encoder_run(self._enc, max_cuts, float(rel_error)), "lrq_signcut_encoder_run",
               "a cut weight overflows float32" if rel_error <= 1 else "rel_error must be in [0, 1]")

    @property
    def width(self) -> int:
        return int(lib.lrq_signcut_encoder_width(self._enc))

    @property
    def finished(self) -> bool:
        return bool(lib.lrq_signcut_encoder_finished(self._enc))

    @property
    def input_norm(self) -> float:
        return float(lib.lrq_signcut_encoder_input_norm(self._enc))

    def remainder_norm(self, exact: bool = False) -> float:
        out = ffi.new("double *")
        _check(lib.lrq_signcut_encoder_remainder_norm(self._enc, 1 if exact else 0, out),
               "lrq_signcut_encoder_remainder_norm")
        return float(out[0])

    def sections(self, panel: int) -> dict:
        """{"c", "tt", "s"}: the tile's section bytes for the cuts so far."""
        w = self.width
        rows, cols = self.shape
        c = bytearray((2 if self.c_storage == "float16" else 4) * w)
        tt = bytearray(layout_size(w, cols, 1, panel))
        s = bytearray(layout_size(rows, w, 1, panel))
        _check(
            lib.lrq_signcut_encoder_write(self._enc, panel, ffi.from_buffer("uint8_t[]", c), len(c),
                                          ffi.from_buffer("uint8_t[]", tt), len(tt),
                                          ffi.from_buffer("uint8_t[]", s), len(s)),
            "lrq_signcut_encoder_write",
        )
        return {"c": bytes(c), "tt": bytes(tt), "s": bytes(s)}


class TensorEncoder:
    """A C signcut encoder of an order-d float32 tensor, 3 <= d <= 8
    (``lrq_tensor_encoder``, spec §10.5).

    ``run(max_terms, rel_error)`` adds up to ``max_terms`` rank-one sign
    terms, with the GIL released; the remainder norm is exact after every
    term.  The encoder is single-threaded and its output the same on every
    ISA path; how the terms are split between calls does not matter.
    """

    def __init__(self, a: np.ndarray, seed: int):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not 3 <= a.ndim <= int(lib.LRQ_TENSOR_ORDER_MAX):
            raise ArgumentError(f"the tensor encoder takes a float32 numpy array of 3 to "
                                f"{int(lib.LRQ_TENSOR_ORDER_MAX)} dimensions")
        a = np.ascontiguousarray(a)
        seed = _integer(seed, "seed", 0, _U64_MAX)
        out = ffi.new("lrq_tensor_encoder **")
        dims = ffi.new("uint64_t[]", list(a.shape))
        _check(lib.lrq_tensor_encoder_create(ffi.from_buffer("float[]", a), a.ndim, dims, seed, out),
               "lrq_tensor_encoder_create", "sizes must be in [1, 2^31-1] and every value finite")
        self._enc = ffi.gc(out[0], lib.lrq_tensor_encoder_free)
        self.shape = tuple(a.shape)

    def run(self, max_terms: int, rel_error: float = 0.0) -> None:
        max_terms = _integer(max_terms, "max_terms", 0, _U64_MAX)
        _check(lib.lrq_tensor_encoder_run(self._enc, max_terms, float(rel_error)), "lrq_tensor_encoder_run",
               "a term weight overflows float32" if rel_error <= 1 else "rel_error must be in [0, 1]")

    @property
    def width(self) -> int:
        return int(lib.lrq_tensor_encoder_width(self._enc))

    @property
    def finished(self) -> bool:
        return bool(lib.lrq_tensor_encoder_finished(self._enc))

    @property
    def input_norm(self) -> float:
        return float(lib.lrq_tensor_encoder_input_norm(self._enc))

    def remainder_norm(self) -> float:
        return float(lib.lrq_tensor_encoder_remainder_norm(self._enc))

    def sections(self, panel: int) -> dict:
        """{"c", "s0", …, "s{d-1}"}: the tile's section bytes for the terms so far."""
        w = self.width
        c = bytearray(4 * w)
        _check(lib.lrq_tensor_encoder_write_c(self._enc, ffi.from_buffer("uint8_t[]", c), len(c)),
               "lrq_tensor_encoder_write_c")
        out = {"c": bytes(c)}
        for mode, n in enumerate(self.shape):
            s = bytearray(layout_size(n, w, 1, panel))
            _check(lib.lrq_tensor_encoder_write_signs(self._enc, mode, panel, ffi.from_buffer("uint8_t[]", s), len(s)),
                   "lrq_tensor_encoder_write_signs")
            out[f"s{mode}"] = bytes(s)
        return out


def quantize(values: np.ndarray, bits: int, group: int):
    """lplr factor quantization in C: (codes uint8, scales float16, σ float).

    The same contract as :func:`lrq.reference.quant.quantize`.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ArgumentError(f"values must be 2-D, not {values.ndim}-D")
    rows, k = values.shape
    bits = _integer(bits, "bits", 1, 8)
    group = _integer(group, "group", 1, _U64_MAX)
    codes = _allocate((rows, k), np.uint8)
    scales = _allocate((rows, -(-k // group)), np.uint16)
    sigma = ffi.new("float *")
    _check(
        lib.lrq_quant_fit(ffi.from_buffer("double[]", values), rows, k, k, bits, group,
                          ffi.from_buffer("uint8_t[]", codes, require_writable=True),
                          ffi.from_buffer("uint16_t[]", scales, require_writable=True), sigma),
        "lrq_quant_fit", "values must be finite",
    )
    return codes, scales.view(np.float16), float(sigma[0])


def quantize_coded(values: np.ndarray, bits: int, group: int, scale_bits: int):
    """quant tile quantization in C (spec §10.7): (codes uint8 m × n, scale
    codes uint8 m × G, row exponents int8 m, σ float); see lrq.quantized."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ArgumentError(f"values must be 2-D, not {values.ndim}-D")
    rows, k = values.shape
    bits = _integer(bits, "bits", 1, 8)
    scale_bits = _integer(scale_bits, "scale_bits", 1, 8)
    group = _integer(group, "group", 1, _U64_MAX)
    codes = _allocate((rows, k), np.uint8)
    scale_codes = _allocate((rows, -(-k // group)), np.uint8)
    exps = _allocate((rows,), np.int8)
    sigma = ffi.new("float *")
    _check(
        lib.lrq_quant_fit_coded(ffi.from_buffer("double[]", values), rows, k, bits, group, scale_bits,
                                ffi.from_buffer("uint8_t[]", codes, require_writable=True),
                                ffi.from_buffer("uint8_t[]", scale_codes, require_writable=True),
                                ffi.from_buffer("int8_t[]", exps, require_writable=True), sigma),
        "lrq_quant_fit_coded", "values must be finite",
    )
    return codes, scale_codes, exps, float(sigma[0])


__all__ += ["SignCutEncoder", "quantize", "quantize_coded"]


_warn_about_environment()
