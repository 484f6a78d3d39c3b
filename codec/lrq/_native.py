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

import numpy as np

from lrq._lrq_cffi import ffi, lib

from .errors import (
    ArgumentError,
    ChecksumError,
    FormatError,
    LrqError,
    ResourceError,
    UnsupportedError,
)

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


def version_number() -> int:
    """The C library version as major*10000 + minor*100 + patch."""
    return int(lib.lrq_version_number())


def isa_name() -> str:
    """The instruction-set path in use: "scalar", "sse4.2", "avx2" or "avx512".

    Chosen once per process from the CPU and the ``LRQ_FORCE_ISA`` environment
    variable; it never changes results, only speed.
    """
    return ffi.string(lib.lrq_isa_name()).decode("ascii")


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


__all__ = [
    "crc32c",
    "error_name",
    "isa_name",
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
    in parallel threads.  Results never depend on ``threads`` or on how the
    cuts are split between calls.
    """

    def __init__(self, a: np.ndarray, seed: int, threads: int = 1):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 2:
            raise ArgumentError("the signcut encoder takes a 2-D float32 numpy array")
        if a.strides[1] != 4 or a.strides[0] % 4 or a.strides[0] < 4 * a.shape[1]:
            a = np.ascontiguousarray(a)
        rows, cols = a.shape
        ld = a.strides[0] // 4 if rows > 1 else cols
        seed = _integer(seed, "seed", 0, _U64_MAX)
        threads = _integer(threads, "threads", 0, 8)
        out = ffi.new("lrq_signcut_encoder **")
        # The first row's address and ld describe the (possibly strided) view.
        base = ffi.cast("const float *", a.__array_interface__["data"][0])
        _check(lib.lrq_signcut_encoder_create(base, rows, cols, ld, seed, threads, out),
               "lrq_signcut_encoder_create", "sizes must be in [1, 2^31-1] and every value finite")
        self._keep = a
        self._enc = ffi.gc(out[0], lib.lrq_signcut_encoder_free)
        self.shape = (rows, cols)

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
        c = bytearray(4 * w)
        tt = bytearray(layout_size(w, cols, 1, panel))
        s = bytearray(layout_size(rows, w, 1, panel))
        _check(
            lib.lrq_signcut_encoder_write(self._enc, panel, ffi.from_buffer("uint8_t[]", c), len(c),
                                          ffi.from_buffer("uint8_t[]", tt), len(tt),
                                          ffi.from_buffer("uint8_t[]", s), len(s)),
            "lrq_signcut_encoder_write",
        )
        return {"c": bytes(c), "tt": bytes(tt), "s": bytes(s)}


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


__all__ += ["SignCutEncoder", "quantize"]
