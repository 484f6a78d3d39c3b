"""``lrq.encode``: choose a scheme and its parameters, then build the tiles.

A target is one of ``bits`` (a budget on bits per entry, everything stored
counted, headers included), ``width`` (signcut cuts) or ``rel_error`` (the
relative Frobenius error to reach with the smallest encoding).  The budget of
a tiled matrix is shared among its tiles in proportion to their area, and
every tile is held to its share, so the whole file meets the budget.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

import msgpack
import numpy as np

from . import _native
from .errors import ArgumentError, BudgetError
from . import format as container
from .format import make_section, section_alignment
from .reference import dense, lplr, quant, signcut

SCHEMES = ("auto", "signcut", "lplr", "dense")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_BITS = 4.0
DEFAULT_GROUP = 128
# Bit widths the lplr search tries for each factor.  Only neighbouring pairs
# are tried (1/1, 1/2, 2/1, 2/2, 2/3, …): the best pair never had widths more
# than one step apart in our measurements, and it keeps the search to 16 fits.
LPLR_BIT_CHOICES = (1, 2, 3, 4, 6, 8)
_FLOAT_SOURCES = {"float16": "float16", "float32": "float32", "float64": "float64", "bfloat16": "bfloat16"}
# A matrix with a side longer than this is encoded in tiles of this size
# unless tile_shape= says otherwise: memory stays bounded by the tile (the
# signcut encoder keeps two float32 copies of its tile) and tiles encode in
# parallel.
DEFAULT_TILE = 4096
# Cuts per call into the C signcut encoder: progress is reported and Ctrl-C
# honoured between calls (results do not depend on it).
SIGNCUT_STEP = 64
# How a signcut tile stores its weights c: binary32 (format 1.0), or binary16
# times a power-of-two scale per tile (format 1.1, feature signcut_c16).
C_STORAGES = ("float32", "float16")
# The placeholder "c_scale" for sizes: every binary32 packs in 5 msgpack bytes.
_SIZE_C_SCALE = 1.0
_SCHEME_OPTIONS = {
    "signcut": {"refit", "c_storage"},
    "lplr": {"rank", "bits_l", "bits_r", "group", "variant"},
    "dense": {"storage"},
}


@dataclass
class Target:
    kind: str  # "bits", "width", "rel_error" or "default"
    value: float

    @property
    def strict(self) -> bool:
        return self.kind != "default"


@dataclass
class Candidate:
    """One way to encode a tile: scheme, params, section bytes, measured error."""

    scheme: str
    params: dict
    sections: dict  # kind -> bytes
    error: float  # ‖A_t − Â_t‖_F (absolute)
    cost: int  # bytes it may take in the file, alignment slack included


def _tile_cost(scheme: str, shape: tuple, params: dict) -> int:
    """Upper bound of the bytes a tile adds to a file: sections + their padding."""
    return sum(ln + section_alignment(ln) - 1 for ln in container.section_lengths(scheme, shape, params))


def _report(progress, done: float, message: str) -> None:
    if progress is not None:
        progress(min(max(done, 0.0), 1.0), message)


# ----------------------------------------------------------------- input checks


def as_float_matrix(a, *, allow_ndim=(2,)) -> tuple:
    """Validate ``a``; returns (float array, source dtype name)."""
    if hasattr(a, "dtype") and str(getattr(a, "dtype")) == "bfloat16":
        source = "bfloat16"
        a = np.asarray(a, dtype=np.float32)
    else:
        try:
            a = np.asarray(a)
        except Exception as exc:
            raise ArgumentError(f"input is not an array: {exc}") from None
        if a.dtype.kind == "c":
            raise ArgumentError(f"complex input ({a.dtype}) is not supported; compress the real and imaginary parts separately")
        if a.dtype.kind != "f" or a.dtype.name not in _FLOAT_SOURCES:
            raise ArgumentError(f"input must be a floating-point array (float16/32/64), not {a.dtype}")
        source = a.dtype.name
    if a.ndim not in allow_ndim:
        want = " or ".join(f"{d}-D" for d in allow_ndim) if len(allow_ndim) < 4 else f"at most {max(allow_ndim)}-D"
        raise ArgumentError(f"input is {a.ndim}-D with shape {a.shape}; this scheme needs a {want} array")
    if a.size == 0:
        raise ArgumentError(f"input is empty (shape {a.shape})")
    if any(d > container.MAX_DIM for d in a.shape):
        raise ArgumentError(f"a dimension of {a.shape} exceeds 2^31-1")
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise ArgumentError(f"input holds {bad} NaN or infinite values")
    return a, source


def _target(bits, width, rel_error) -> Target:
    given = [(k, v) for k, v in (("bits", bits), ("width", width), ("rel_error", rel_error)) if v is not None]
    if len(given) > 1:
        raise ArgumentError("give at most one of bits=, width=, rel_error=")
    if not given:
        return Target("default", DEFAULT_BITS)
    kind, value = given[0]
    if kind == "width":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= container.MAX_PARAM:
            raise ArgumentError(f"width must be an integer in [1, 2^31-1], not {value!r}")
        return Target(kind, int(value))
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{kind} must be a number, not {value!r}") from None
    if kind == "bits" and not (math.isfinite(value) and 0 < value <= 1024):
        raise ArgumentError(f"bits must be in (0, 1024], not {value}")
    if kind == "rel_error" and not (math.isfinite(value) and 0 < value < 1):
        raise ArgumentError(f"rel_error must be in (0, 1), not {value}")
    return Target(kind, value)


def _check_name(name) -> str:
    """The tensor name to write: what the format accepts [TEN-2], or "tensor"."""
    if name is None:
        return "tensor"
    if not isinstance(name, str) or not 1 <= len(name.encode("utf-8", "surrogatepass")) <= container.MAX_NAME_BYTES:
        raise ArgumentError(f"name must be a non-empty string of at most {container.MAX_NAME_BYTES} bytes of UTF-8, not {name!r:.60}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArgumentError(f"name must be valid UTF-8 text, not {name!r:.60}") from None
    return name


def _int_option(options: dict, key: str, lo: int, hi: int, default=None):
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ArgumentError(f"{key} must be an integer in [{lo}, {hi}], not {value!r}")
    return int(value)


# ----------------------------------------------------------------- per scheme


def _largest_fitting(lo: int, hi: int, fits: Callable[[int], bool]) -> Optional[int]:
    """Largest p in [lo, hi] with fits(p), for a monotone predicate; None if none."""
    if hi < lo or not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Cancelled(Exception):
    """Another tile failed or the user interrupted: stop between C calls."""


@dataclass
class _Run:
    """What every tile job shares: C threads per encoder and a stop flag."""

    threads: int = 1
    cancel: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()


def _signcut_size_params(width: int, c_storage: str) -> dict:
    """Signcut params for sizing: "c_scale" present when c is binary16."""
    return {"width": width, "c_scale": _SIZE_C_SCALE} if c_storage == "float16" else {"width": width}


def _signcut_candidate(tile, target, allowance, seed, panel, progress, options=None, run=None) -> Optional[Candidate]:
    run = run or _Run()
    m, n = tile.shape
    c_storage = (options or {}).get("c_storage") or "float32"
    c_bits = 16 if c_storage == "float16" else 32
    # Past the width at which signcut costs as much as dense float32 there is
    # no point going on: that caps searches for an error target.
    dense_width = max(1, (32 * m * n) // (m + n + c_bits))
    if target.kind == "width":
        width, goal = target.value, None
    elif target.kind == "rel_error":
        width, goal = dense_width, target.value
    else:
        width = _largest_fitting(1, dense_width,
                                 lambda w: _tile_cost("signcut", tile.shape, _signcut_size_params(w, c_storage)) <= allowance)
        if width is None:
            if target.strict:
                return None
            width = 1
        goal = None

    enc = _native.SignCutEncoder(tile.values32, seed, run.threads, c_storage)
    # The C encoder measures error against its float32 copy of the tile; the
    # goal is an absolute error, ε‖A_t‖, expressed relative to that copy.
    c_goal = 0.0
    if goal is not None and enc.input_norm > 0:
        c_goal = min(1.0, goal * tile.norm / enc.input_norm)
    while enc.width < width and not enc.finished:
        run.check()
        enc.run(min(SIGNCUT_STEP, width - enc.width), c_goal)
        err = enc.remainder_norm() / enc.input_norm if enc.input_norm > 0 else 0.0
        _report(progress, enc.width / width, f"signcut {enc.width}/{width} cuts, error {err:.4g}")
    error = enc.remainder_norm(exact=True)
    if goal is not None and error > goal * tile.norm:
        return None
    params = {"width": enc.width}
    sections = enc.sections(panel)
    if enc.c_scale is not None and enc.width > 0:
        params["c_scale"] = enc.c_scale
    elif c_storage == "float16":
        # No cut (a zero matrix): nothing to store in float16, so the tile
        # stays a format 1.0 one [VER-2].
        sections = {**sections, "c": b""}
    if (options or {}).get("refit") and enc.width > 0:
        sections, params, error = _refit(tile, sections, params, panel, error)
    return Candidate("signcut", params, sections, error, _tile_cost("signcut", tile.shape, params))


def c16_scale(c_max: float) -> float:
    """The tile scale for binary16 weights: 2^(floor(log2 c_max) − 8), clamped
    to [2^-125, 2^112] [SC-3] (the rule of lrq.h's
    lrq_signcut_encoder_set_c_storage, applied to the largest |c|)."""
    if not c_max > 0:
        return 1.0
    exponent = math.frexp(c_max)[1] - 9
    return math.ldexp(1.0, min(max(exponent, -125), 112))


def quantize_c16(c: np.ndarray, scale: float) -> np.ndarray:
    """c rounded to scale × binary16 (nearest even; clamped to ±65504 × scale)."""
    q = np.clip(np.asarray(c, dtype=np.float64) / scale, -65504.0, 65504.0).astype(np.float16)
    return q


def _refit(tile, sections: dict, params: dict, panel: int, error: float):
    """Least-squares refit of every c for the signs found (research §1.7).

    Solves (SᵀS ∘ TᵀT) c = diag(Sᵀ A T) and keeps the new weights only if
    the exact error, ‖A‖² − 2cᵀb + cᵀGc evaluated with the c as stored
    (float32, or scale × float16 with a scale chosen for the refit c), goes
    down.  Costs two sign Gram matrices and A·T: a few dense GEMMs.
    """
    m, n = tile.shape
    w = params["width"]
    s = _native.unpack_signs_f32(sections["s"], m, w, panel)
    tt = _native.unpack_signs_f32(sections["tt"], w, n, panel)
    gram = (s.T @ s).astype(np.float64) * (tt @ tt.T).astype(np.float64)
    b = np.einsum("ij,ij->j", s.astype(np.float64), tile.values @ tt.T.astype(np.float64))
    try:
        c = np.linalg.solve(gram, b)
    except np.linalg.LinAlgError:
        c = np.linalg.lstsq(gram, b, rcond=None)[0]
    with np.errstate(over="ignore", invalid="ignore"):
        c32 = c.astype(np.float32)
    if not np.isfinite(c32).all():
        return sections, params, error
    if "c_scale" in params:
        scale = c16_scale(float(np.abs(c).max()))
        stored = quantize_c16(c, scale)
        c64 = stored.astype(np.float64) * scale
        new_c, new_params = stored.astype("<f2").tobytes(), {**params, "c_scale": scale}
    else:
        c64 = c32.astype(np.float64)
        new_c, new_params = c32.astype("<f4").tobytes(), params
    sq = float(tile.norm**2 - 2.0 * c64 @ b + c64 @ gram @ c64)
    new_error = math.sqrt(max(sq, 0.0))
    if not new_error < error:
        return sections, params, error
    return {**sections, "c": new_c}, new_params, new_error


def _lplr_one(tile, rank, bits_l, bits_r, group, variant, seed, panel, svd) -> Candidate:
    left0 = lplr.starting_factor(tile.values, rank, variant, seed, svd)
    left, right, l_hat, r_hat = lplr.fit(tile.values, left0, bits_l, bits_r, group,
                                         quantize=_native.quantize, solve=_least_squares)
    params, sections = lplr.params_and_sections(rank, bits_l, bits_r, group, left, right, panel, _native.pack_interleaved)
    error = float(np.linalg.norm(tile.values - l_hat @ r_hat))
    return Candidate("lplr", params, sections, error, _tile_cost("lplr", tile.shape, params))


def _least_squares(left: np.ndarray, a: np.ndarray) -> np.ndarray:
    """argmin_W ‖left · W − a‖ by the normal equations (GEMM speed).

    Used when left is well conditioned (cond < 1e4 from its Cholesky
    factor, so the squared condition costs at most ~1e-8 relative);
    otherwise the reference's QR / SVD path.  The error of the result is
    measured afterwards either way.
    """
    gram = left.T @ left
    try:
        diag = np.abs(np.diag(np.linalg.cholesky(gram)))
    except np.linalg.LinAlgError:
        return lplr.least_squares(left, a)
    if not diag.size or diag.min() <= 1e-4 * diag.max():
        return lplr.least_squares(left, a)
    return np.linalg.solve(gram, left.T @ a)


def _lplr_candidate(tile, target, allowance, seed, panel, options, progress) -> Optional[Candidate]:
    m, n = tile.shape
    max_rank = min(m, n)
    variant = options.get("variant", "sketch")
    if variant not in lplr.VARIANTS:
        raise ArgumentError(f"variant must be one of {lplr.VARIANTS}, not {variant!r}")
    group = _int_option(options, "group", container.MIN_GROUP, container.MAX_GROUP, DEFAULT_GROUP)
    if group & (group - 1):
        raise ArgumentError(f"group must be a power of two, not {group}")
    rank = _int_option(options, "rank", 1, max_rank)
    fixed_l = _int_option(options, "bits_l", 1, 8)
    fixed_r = _int_option(options, "bits_r", 1, 8)
    pairs = [
        (bl, br)
        for bl in ((fixed_l,) if fixed_l else LPLR_BIT_CHOICES)
        for br in ((fixed_r,) if fixed_r else LPLR_BIT_CHOICES)
        if fixed_l or fixed_r or abs(LPLR_BIT_CHOICES.index(bl) - LPLR_BIT_CHOICES.index(br)) <= 1
    ]
    svd = np.linalg.svd(tile.values, full_matrices=False) if variant == "svd" else None

    def cost(r, bl, br):
        return _tile_cost("lplr", tile.shape, {"rank": r, "bits_l": bl, "bits_r": br, "group": group})

    best = None
    for i, (bl, br) in enumerate(pairs):
        _report(progress, i / len(pairs), f"lplr bits {bl}/{br}")
        if rank is not None:
            ranks = [rank] if (not target.strict or target.kind != "bits" or cost(rank, bl, br) <= allowance) else []
        elif target.kind == "rel_error":
            ranks = _ranks_for_error(tile, bl, br, group, variant, seed, panel, svd, target.value, max_rank)
        else:
            r = _largest_fitting(1, max_rank, lambda r: cost(r, bl, br) <= allowance)
            ranks = [r] if r is not None else []
        for r in ranks:
            cand = _lplr_one(tile, r, bl, br, group, variant, seed, panel, svd)
            best = _better(best, cand, target, tile)
    if best is None and not target.strict:
        # A matrix too small for the default budget still gets an encoding.
        best = _lplr_one(tile, rank or 1, fixed_l or 8, fixed_r or 8, group, variant, seed, panel, svd)
    return best


def _ranks_for_error(tile, bl, br, group, variant, seed, panel, svd, goal, max_rank) -> list:
    """The smallest rank whose error meets the goal (bisection), if any does."""
    cache = {}

    def ok(r):
        if r not in cache:
            cache[r] = _lplr_one(tile, r, bl, br, group, variant, seed, panel, svd).error <= goal * tile.norm
        return cache[r]

    if not ok(max_rank):
        return []
    lo, hi = 1, max_rank
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return [lo]


def _dense_candidate(tile, target, allowance, options) -> Optional[Candidate]:
    storage = options.get("storage")
    if storage is not None and storage not in container.FLOAT_STORAGE:
        raise ArgumentError(f"storage must be one of {container.FLOAT_STORAGE}, not {storage!r}")
    if storage is not None:
        choices = [storage]
    elif target.kind == "default":
        choices = [tile.source if tile.source in container.FLOAT_STORAGE else "float32"]
    else:
        choices = ["float16", "bfloat16", "float32", "float64"]
    best = None
    for name in choices:
        params = {"storage": name}
        if target.kind == "bits" and _tile_cost("dense", tile.shape, params) > allowance:
            continue
        try:
            _, sections = dense.encode(tile.values, name)
        except ArgumentError:
            if storage is not None:
                raise
            continue  # this storage overflows; another may not
        decoded = dense.load(sections["values"], name, tile.shape).astype(np.float64)
        cand = Candidate("dense", params, sections, float(np.linalg.norm(tile.values - decoded)), _tile_cost("dense", tile.shape, params))
        best = _better(best, cand, target, tile)
    return best


def _better(best: Optional[Candidate], cand: Candidate, target: Target, tile) -> Candidate:
    """Smallest error under a budget; smallest size that meets an error goal."""
    if target.kind == "rel_error":
        if cand.error > target.value * tile.norm:
            return best
        key = lambda c: (c.cost, c.error)  # noqa: E731
    else:
        key = lambda c: (c.error, c.cost)  # noqa: E731
    return cand if best is None or key(cand) < key(best) else best


# ----------------------------------------------------------------- orchestration


class _Tile:
    """One tile: a view of the input, converted only when a scheme asks."""

    def __init__(self, origin: tuple, shape: tuple, raw: np.ndarray, source: str):
        self.origin, self.shape, self.raw, self.source = origin, shape, raw, source

    @functools.cached_property
    def values(self) -> np.ndarray:
        return np.asarray(self.raw, dtype=np.float64)

    @property
    def values32(self) -> np.ndarray:
        # A float32 input is passed as a strided view: the C encoder copies it.
        return self.raw if self.raw.dtype == np.float32 else np.asarray(self.raw, dtype=np.float32)

    @functools.cached_property
    def norm(self) -> float:
        return _norm(self.raw)


def _norm(a: np.ndarray) -> float:
    """‖a‖_F in float64, a few rows at a time (no full-size temporary)."""
    if a.ndim != 2:
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))
    step = max(1, (1 << 20) // max(1, a.shape[1]))
    total = 0.0
    for r in range(0, a.shape[0], step):
        block = np.asarray(a[r : r + step], dtype=np.float64)
        total += float(np.einsum("ij,ij->", block, block))
    return math.sqrt(total)


def _max_abs(a: np.ndarray) -> float:
    return max(float(np.max(a)), -float(np.min(a))) if a.size else 0.0


def _header_bound(name, shape, source, tile_shape, panel, scheme, encoder_info, budget, c16=False) -> int:
    """Bytes of preamble + header, every number at the widest the budget allows.

    Offsets and lengths cannot exceed the budget in a file that meets it, and
    a width or rank cannot exceed 8 × budget; ``scheme`` "auto" takes the
    largest bound over the schemes a tile may get.
    """
    if scheme == "auto":
        return max(_header_bound(name, shape, source, tile_shape, panel, s, encoder_info, budget, c16)
                   for s in ("signcut", "lplr", "dense"))
    limit = container.MAX_PARAM if budget is None else min(container.MAX_PARAM, 8 * budget)
    size_limit = (1 << 62) if budget is None else budget
    widest = {"width": limit, "rank": limit, "bits_l": 8, "bits_r": 8, "group": container.MAX_GROUP,
              "scale_l": 1.0, "scale_r": 1.0, "storage": "bfloat16", "c_scale": _SIZE_C_SCALE}
    params = {k: widest[k] for k in container.PARAM_KEYS[scheme] if k != "c_scale" or c16}
    tiles = [container.TileRecord(o, t, scheme, params) for o, t in container.tile_grid(shape, tile_shape)]
    record = container.TensorRecord(name, shape, source, tile_shape, panel, tiles, 1.0, encoder_info)
    entry = (max(container.SECTION_KINDS[scheme], key=len), size_limit, size_limit, 0xFFFFFFFF)
    table = [entry] * (len(tiles) * len(container.SECTION_KINDS[scheme]))
    raw = msgpack.packb(container.header_object([record], None, table), use_single_float=True)
    return container.PREAMBLE_SIZE + len(raw)


def _smallest_tile_cost(scheme: str, shape: tuple, options: dict) -> int:
    """Bytes the cheapest encoding of a tile may take (auto: of any scheme)."""
    if scheme == "auto":
        return min(_smallest_tile_cost(s, shape, options) for s in ("signcut", "lplr", "dense"))
    if scheme == "signcut":
        return _tile_cost("signcut", shape, _signcut_size_params(1, options.get("c_storage") or "float32"))
    if scheme == "dense":
        return _tile_cost("dense", shape, {"storage": options.get("storage") or "float16"})
    params = {
        "rank": options.get("rank") or 1,
        "bits_l": options.get("bits_l") or 1,
        "bits_r": options.get("bits_r") or 1,
        "group": options.get("group") or DEFAULT_GROUP,
    }
    return _tile_cost("lplr", shape, params)


def encode(
    a,
    scheme: str = "auto",
    *,
    bits: Optional[float] = None,
    width: Optional[int] = None,
    rel_error: Optional[float] = None,
    seed: int = 0,
    tile_shape: Optional[tuple] = None,
    panel: int = container.DEFAULT_PANEL,
    progress: Optional[Callable[[float, str], None]] = None,
    name: Optional[str] = None,
    source_dtype: Optional[str] = None,
    threads: Optional[int] = None,
    **options,
):
    """Compress a float matrix into an :class:`lrq.Matrix`.

    Parameters
    ----------
    a : array_like, 2-D, float16/float32/float64 (any ndim up to 8 for "dense")
        Finite values only; an empty array, NaN/Inf, integer, bool or complex
        input raises :class:`lrq.ArgumentError`.
    scheme : "auto" (default), "signcut", "lplr" or "dense"
        "auto" encodes with every scheme under the same target and keeps the
        smallest error (or, for ``rel_error=``, the smallest encoding).
    bits : float, optional
        Budget in bits per entry, counting everything stored (header and
        section padding included): ``M.bits_per_entry <= bits`` is guaranteed.
        Raises :class:`lrq.BudgetError` when nothing fits.
    width : int, optional
        Number of signed cuts (scheme "signcut" only).
    rel_error : float in (0, 1), optional
        Relative Frobenius error to reach with the smallest encoding; signcut
        stops at the first width that meets it (its error is known exactly).
        With none of the three targets, ``bits=4`` is used; for a matrix too
        small for any encoding to fit that (headers alone exceed it), signcut
        uses one cut, lplr rank 1, and auto and dense store the values exactly.
    seed : int
        Seeds every random choice: equal inputs, parameters and seeds give
        byte-identical files.
    tile_shape : (rows, cols), optional
        Encode in independent tiles of this size; the budget is shared by
        area and each tile is held to its share.  By default a matrix with
        a side longer than 4096 is encoded in 4096×4096 tiles (memory stays
        bounded by a tile and tiles encode in parallel); pass its own shape
        to encode it whole.
    panel : int
        Reduction panel of the kernel layout (multiple of 64; default 4096).
    progress : callable(fraction, message), optional
        Called during long encodes, always from the calling thread.
        Ctrl-C (KeyboardInterrupt) stops an encode within one step of
        64 cuts and raises; nothing is left running.
    threads : int, optional
        Threads to use, 1 .. 64 (default: :func:`lrq.get_num_threads`, set
        by :func:`lrq.set_num_threads` or ``LRQ_NUM_THREADS``, else up to 2,
        the cores of the machine).  Never changes the result: files are
        byte-identical for any value.
    name : str, optional
        The tensor's name when written alone with :func:`lrq.dumps`.
    source_dtype : str, optional
        The dtype the values came from when it differs from ``a``'s, e.g.
        "bfloat16" for bf16 weights passed widened to float32.
    **options
        signcut: ``refit`` (bool, default False): after the greedy cuts,
        refit every c jointly by least squares for the signs found, keeping
        the result only when the error goes down.  ``c_storage``
        ("float32", the default, or "float16"): store the weights c as
        binary16 times a power-of-two scale per tile, 2 bytes per cut
        instead of 4.  The weights are rounded inside the greedy loop, so
        later cuts compensate and the reported error stays exact; such a
        file is format 1.1 (required feature signcut_c16), which 1.0
        readers refuse.
        lplr: ``rank``, ``bits_l``, ``bits_r`` (1–8; searched when not given),
        ``group`` (scale group, a power of two >= 16, default 128),
        ``variant`` ("sketch" or "svd").  dense: ``storage`` ("float32",
        "float16", "bfloat16", "float64").
    """
    from .matrix import Matrix

    if scheme not in SCHEMES:
        raise ArgumentError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    allowed = set().union(*_SCHEME_OPTIONS.values()) if scheme == "auto" else _SCHEME_OPTIONS[scheme]
    unknown = set(options) - allowed
    if unknown:
        raise ArgumentError(f"unknown option(s) for scheme '{scheme}': {', '.join(sorted(unknown))}")
    target = _target(bits, width, rel_error)
    if target.kind == "width" and scheme != "signcut":
        raise ArgumentError("width= applies to scheme='signcut'; use bits= or rel_error= (or rank= for lplr)")
    a, source = as_float_matrix(a, allow_ndim=tuple(range(0, 9)) if scheme == "dense" else (2,))
    if source_dtype is not None:
        if source_dtype not in _FLOAT_SOURCES:
            raise ArgumentError(f"source_dtype must be one of {tuple(_FLOAT_SOURCES)}, not {source_dtype!r}")
        source = source_dtype
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ArgumentError(f"seed must be a non-negative integer, not {seed!r}")
    if isinstance(panel, bool) or not isinstance(panel, (int, np.integer)) or not (
        container.MIN_PANEL <= panel <= container.MAX_PANEL and panel % 64 == 0
    ):
        raise ArgumentError(f"panel must be a multiple of 64 in [64, 2^20], not {panel!r}")
    shape = tuple(int(d) for d in a.shape)
    if threads is None:
        threads = _native.threads()
    top = _native.threads_max()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= top:
        raise ArgumentError(f"threads must be an integer in [1, {top}], not {threads!r}")
    threads = int(threads)
    if tile_shape is None and a.ndim == 2 and max(shape) > DEFAULT_TILE:
        tile_shape = (DEFAULT_TILE, DEFAULT_TILE)
    if tile_shape is None or a.ndim != 2:
        tile_shape = shape
    else:
        try:
            tile_shape = tuple(int(t) for t in tile_shape)
        except (TypeError, ValueError):
            raise ArgumentError(f"tile_shape must be two positive integers, not {tile_shape!r}") from None
        if len(tile_shape) != 2 or min(tile_shape) < 1:
            raise ArgumentError(f"tile_shape must be two positive integers, not {tile_shape!r}")
        tile_shape = (min(tile_shape[0], shape[0]), min(tile_shape[1], shape[1]))
    name = _check_name(name)
    if progress is not None and not callable(progress):
        raise ArgumentError(f"progress must be a callable taking (fraction, message), not {progress!r}")
    if "c_storage" in options and options["c_storage"] not in C_STORAGES:
        raise ArgumentError(f"c_storage must be one of {C_STORAGES}, not {options['c_storage']!r}")
    encoder_info = {"scheme": scheme, "seed": int(seed), "target": target.kind, "value": float(target.value)}

    if scheme in ("signcut", "lplr") and a.size and _max_abs(a) > _FLOAT32_MAX:
        raise ArgumentError(
            f"values reach {_max_abs(a):.3g}, beyond the float32 range that scheme '{scheme}' stores; "
            "scale the matrix or use scheme='dense' with storage='float64'"
        )
    grid = list(container.tile_grid(shape, tile_shape))
    total = math.prod(shape)
    budget = math.floor(target.value * total / 8) if target.kind in ("bits", "default") else None
    # The budget pays first for the header and for the cheapest encoding of
    # every tile (so a small edge tile is never starved); what is left is
    # shared by area.  Each tile is then held to its allowance, and the sum of
    # allowances plus the header bound is the budget: the file fits.
    c16 = options.get("c_storage") == "float16"
    overhead = _header_bound(name, shape, source, tile_shape, int(panel), scheme, encoder_info, budget, c16)
    smallest = [_smallest_tile_cost(scheme, tshape, options) for _, tshape in grid]
    spare = None if budget is None else budget - overhead - sum(smallest)
    if spare is not None and spare < 0 and target.strict:
        raise BudgetError(_infeasible_message(scheme, target, shape, overhead + sum(smallest)))

    def job(k, report, run):
        origin, tshape = grid[k]
        index = tuple(slice(o, o + s) for o, s in zip(origin, tshape))
        tile = _Tile(origin, tshape, a[index], source)
        if budget is None:
            allowance = None
        elif spare < 0:
            allowance = -1  # the default budget cannot be met: each scheme's fallback applies
        else:
            allowance = smallest[k] + spare * math.prod(tshape) / total
        cand = _choose(tile, scheme, target, allowance, int(seed), int(panel), options, report, run)
        if cand is None:
            raise BudgetError(_infeasible_message(scheme, target, shape, overhead + sum(smallest)))
        sections = {kind: make_section(kind, data, _native.crc32c) for kind, data in cand.sections.items()}
        return container.TileRecord(origin, tshape, cand.scheme, cand.params, sections), cand.error

    if "refit" in options and not isinstance(options["refit"], (bool, np.bool_)):
        raise ArgumentError(f"refit must be True or False, not {options['refit']!r}")
    results = _run_tiles(len(grid), job, progress, threads)
    tiles = [record for record, _ in results]
    sq_error = sum(error**2 for _, error in results)
    norm = _norm(a)
    rel = math.sqrt(sq_error) / norm if norm > 0 else 0.0
    record = container.TensorRecord(name, shape, source, tile_shape, int(panel), tiles, float(np.float32(rel)), encoder_info)
    matrix = Matrix(record)
    if target.kind == "bits" and matrix.nbytes > budget:  # pragma: no cover - the bounds make this unreachable
        raise ArgumentError(f"internal: encoding took {matrix.nbytes} bytes, over the budget of {budget}")
    _report(progress, 1.0, "done")
    return matrix


def _run_tiles(count: int, job, progress, threads: int) -> list:
    """Runs job(k, report, run) for every tile k, in parallel when it pays.

    With one tile, its encoder gets every thread.  With several, a pool of
    ``threads`` workers encodes one tile each (one C thread per encoder,
    never more threads than cores); the calling thread reports progress
    and, on Ctrl-C or an error, tells the workers to stop at their next
    step and waits for them, so nothing keeps running behind the caller.
    Results come back in tile order: the bytes do not depend on the order
    in which tiles finish.
    """
    done = [0.0] * count
    notes = [(f"tile {k + 1}/{count}: " if count > 1 else "") + "starting" for k in range(count)]

    def report(k):
        def update(fraction, message):
            done[k] = fraction
            notes[k] = (f"tile {k + 1}/{count}: " if count > 1 else "") + message
        return update

    def show():
        active = max(range(count), key=lambda k: (0.0 < done[k] < 1.0, k))
        _report(progress, sum(done) / count, notes[active])

    if count == 1 or threads <= 1:
        run = _Run(threads=threads)
        out = []
        for k in range(count):
            def update(fraction, message, k=k, inner=report(k)):
                inner(fraction, message)
                show()
            out.append(job(k, update, run))
            done[k] = 1.0
        _report(progress, 1.0, "done")
        return out
    run = _Run(threads=1)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(threads, count), thread_name_prefix="lrq-tile")

    def wrapped(k):
        run.check()
        result = job(k, report(k), run)
        done[k] = 1.0
        return result

    futures = [pool.submit(wrapped, k) for k in range(count)]
    try:
        pending = set(futures)
        while pending:
            finished, pending = concurrent.futures.wait(pending, timeout=0.1, return_when=concurrent.futures.FIRST_EXCEPTION)
            for f in finished:
                f.result()  # re-raises a tile's error here, in the caller's thread
            show()
    except BaseException:
        run.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _report(progress, 1.0, "done")
    return [f.result() for f in futures]


def _choose(tile, scheme, target, allowance, seed, panel, options, progress, run=None) -> Optional[Candidate]:
    if scheme == "signcut":
        return _signcut_candidate(tile, target, allowance, seed, panel, progress, options, run)
    if scheme == "lplr":
        return _lplr_candidate(tile, target, allowance, seed, panel, options, progress)
    if scheme == "dense":
        return _dense_candidate(tile, target, allowance, options)
    # auto: every scheme under the same target; lplr in both variants.  The
    # factorizations store float32 numbers, so they sit out values beyond it.
    strict = Target(target.kind if target.kind != "default" else "bits", target.value)
    factorizable = _max_abs(tile.raw) <= _FLOAT32_MAX
    steps = [
        lambda p: _signcut_candidate(tile, strict, allowance, seed, panel, p, options, run),
        lambda p: _lplr_candidate(tile, strict, allowance, seed, panel, {**options, "variant": "sketch"}, p),
        lambda p: _lplr_candidate(tile, strict, allowance, seed, panel, {**options, "variant": "svd"}, p),
        lambda p: _dense_candidate(tile, strict, allowance, {k: v for k, v in options.items() if k == "storage"}),
    ]
    if not factorizable:
        steps = steps[-1:]
    best = None
    for i, step in enumerate(steps):
        cand = step(lambda done, message, i=i: progress((i + done) / len(steps), "auto: " + message))
        if cand is not None:
            best = _better(best, cand, strict, tile)
    if best is None and not target.strict:
        # Nothing fits the default budget (a tiny matrix): store it exactly.
        best = _dense_candidate(tile, Target("default", target.value), allowance, {})
    return best


def _infeasible_message(scheme, target, shape, smallest_bytes) -> str:
    where = "×".join(map(str, shape))
    if target.kind == "bits":
        floor = 8 * smallest_bytes / math.prod(shape)
        return (
            f"no {scheme} encoding of a {where} matrix fits {target.value:g} bits/entry "
            f"(the smallest, headers included, may take {floor:.3g}); raise bits= or choose another scheme"
        )
    if target.kind == "rel_error":
        return f"scheme '{scheme}' cannot reach rel_error={target.value:g} on this {where} matrix; try scheme='dense'"
    return f"cannot encode this {where} matrix with scheme '{scheme}' and {target.kind}={target.value}"  # pragma: no cover


def signcut_from_factors(S, T, c, *, name: Optional[str] = None, panel: int = container.DEFAULT_PANEL):
    """Wrap a signed cut decomposition made elsewhere as an ``lrq.Matrix``.

    S is m×w and T is n×w, with entries ±1; c holds w finite coefficients
    (stored as float32).  The matrix is A = S · diag(c) · Tᵀ.
    """
    from .matrix import Matrix

    def signs(x, what):
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise ArgumentError(f"{what} is not an array: {exc}") from None
        if x.ndim != 2 or x.size == 0 and 0 in x.shape[:1]:
            raise ArgumentError(f"{what} must be a 2-D array, not shape {x.shape}")
        if x.dtype.kind not in "fiub" or not np.isin(x, (-1, 1)).all():
            raise ArgumentError(f"{what} must hold only +1 and -1")
        return x

    S, T = signs(S, "S"), signs(T, "T")
    try:
        c = np.asarray(c, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"c must be an array of numbers: {exc}") from None
    w = S.shape[1]
    if T.shape[1] != w or c.size != w:
        raise ArgumentError(f"S is {S.shape}, T is {T.shape} and c has {c.size} values; they must share the width w")
    if S.shape[0] < 1 or T.shape[0] < 1:
        raise ArgumentError("S and T need at least one row")
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below, as an error
        c32 = c.astype(np.float32)
    if not np.isfinite(c32).all():
        raise ArgumentError("c holds NaN or infinity (or values beyond float32)")
    if w > container.MAX_PARAM:
        raise ArgumentError("width exceeds 2^31-1")
    shape = (S.shape[0], T.shape[0])
    raw = signcut.sections(S, T, c32, panel, pack=_native.pack_interleaved)
    sections = {kind: make_section(kind, data, _native.crc32c) for kind, data in raw.items()}
    tile = container.TileRecord((0, 0), shape, "signcut", {"width": w}, sections)
    record = container.TensorRecord(_check_name(name), shape, "float32", shape, panel, [tile])
    return Matrix(record)
