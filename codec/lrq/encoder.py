"""``lrq.encode``: choose a scheme and its parameters, then build the tiles.

A target is one of ``bits`` (a budget on bits per entry, everything stored
counted, headers included), ``width`` (signcut cuts) or ``rel_error`` (the
relative Frobenius error to reach with the smallest encoding).  The budget of
a tiled matrix is shared among its tiles in proportion to their area, and
every tile is held to its share, so the whole file meets the budget.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import msgpack
import numpy as np

from . import _native, lplr, quantized
from .errors import ArgumentError, BudgetError
from . import format as container
from .format import make_section, section_alignment

SCHEMES = ("auto", "signcut", "lplr", "dense", "quant")
# What auto chooses among.
_AUTO_SCHEMES = ("dense", "quant", "signcut", "lplr")
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
# honoured between calls (results do not depend on it).  The step starts
# small and adapts so that one call takes about STEP_SECONDS.
SIGNCUT_STEP = 64
STEP_SECONDS = 0.25
# How a signcut tile stores its weights c: binary32 (format 1.0), or binary16
# times a power-of-two scale per tile (format 1.1, feature signcut_c16).
C_STORAGES = ("float32", "float16")
# The placeholder "c_scale" for sizes: every binary32 packs in 5 msgpack bytes.
_SIZE_C_SCALE = 1.0
_SCHEME_OPTIONS = {
    "signcut": {"refit", "c_storage"},
    "lplr": {"rank", "bits_l", "bits_r", "group", "variant"},
    "dense": {"storage"},
    "quant": {"code_bits", "group", "scale_bits"},
}
# The (group, scale bits) pairs the quant search tries, finest first, and
# the whole-row group (one scale per row, 8-bit code) after them.  Measured
# on MiniLM's weights and N(0,1) matrices at 2-4 bits: 6-bit codes lose
# nothing to 16-bit scales at these groups, 4-bit ones lose 1-4 %, and
# halving the group lowers the error by 3-10 % for 1/g more bits of scale.
QUANT_GROUPS = ((16, 6), (32, 6), (64, 6), (128, 8), (256, 8))
# auto tries a quant fit only with at least this many code bits: 1-bit
# codes with scales cost more than one bit and lose to signcut there.
_QUANT_MIN_AUTO_BITS = 2


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
        hint = ("; scheme='signcut' stores tensors of 3 to 8 dimensions, or reshape it to a matrix"
                if allow_ndim == (2,) and 3 <= a.ndim <= 8 else "")
        raise ArgumentError(f"input is {a.ndim}-D with shape {a.shape}; this scheme needs a {want} array{hint}")
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


# ----------------------------------------------------------------- one tile's job


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
    """Another tile failed or the user interrupted: stop at the next step."""


class _ScaleError(ArgumentError):
    """A scheme cannot store this matrix's magnitude; auto tries the others."""


@dataclass
class _Run:
    """What every tile job shares: C threads per encoder and a stop flag."""

    threads: int = 1
    cancel: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()


@dataclass(frozen=True)
class _TileJob:
    """Everything a scheme's candidate function needs besides the tile.

    Every candidate function is ``candidate(tile, job) -> Candidate | None``.
    ``beat`` and ``estimate`` are set by auto only: an absolute error a
    candidate must beat to be worth finishing, and a cheap estimate of an
    lplr fit's error by (rank, bits_l, bits_r).
    """

    target: Target
    allowance: Optional[float]
    seed: int
    panel: int
    options: dict
    progress: Callable[[float, str], None]
    run: _Run
    beat: Optional[float] = None
    estimate: Optional[Callable[[int, int, int], float]] = None
    # auto only: header bytes a tile of each scheme adds beyond the plan's
    # overhead, which its encoding must leave room for (see _Plan).
    header_extra: dict = field(default_factory=dict)
    # auto only: the job is one of auto's candidates (quant then skips 1-bit
    # codes), or auto's quant candidate is made elsewhere (in row bands).
    in_auto: bool = False
    quant_elsewhere: bool = False
    beat_floor: Optional[float] = None

    def report(self, fraction: float, message: str) -> None:
        self.run.check()
        self.progress(min(max(fraction, 0.0), 1.0), message)

    def part(self, lo: float, hi: float, prefix: str = "") -> "_TileJob":
        """The same job reporting its progress into [lo, hi] of this one's."""
        outer = self.progress
        return dataclasses.replace(self, progress=lambda f, m: outer(lo + (hi - lo) * f, prefix + m))

    def heavy(self, compute: Callable[[], object], flops: float, fraction: float, message: str):
        """compute(), a long NumPy / LAPACK call, kept responsive.

        NumPy cannot be interrupted inside a call, so a call of more than
        ~1e8 flops runs in a daemon thread while this one reports progress
        and checks for cancellation (and Ctrl-C) every 0.2 s.  On
        interruption the abandoned call finishes in the background and its
        result is dropped: nothing of it reaches the encoding.
        """
        self.report(fraction, message)
        if flops < _HEAVY_FLOPS:
            return compute()
        box = {}

        def target():
            try:
                box["value"] = compute()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=target, name="lrq-compute", daemon=True)
        worker.start()
        while True:
            worker.join(0.2)
            if not worker.is_alive():
                break
            self.report(fraction, message)
        if "error" in box:
            raise box["error"]
        return box["value"]


# A NumPy call above this many flops runs where Ctrl-C can reach: about
# 0.05 s on a 2-core AVX-512 host, still under 0.5 s at 4 Gflop/s.  Smaller
# calls stay on the calling thread, as a thread per call costs more than
# the call (a 384² spectrum: 6 ms inline, 13 ms in a new thread, whose
# BLAS buffers are set up afresh).
_HEAVY_FLOPS = 2e9


class _Tile:
    """One tile: a view of the input, normalised by a power of two.

    The schemes see ``values`` = input × 2^-exponent, whose largest
    magnitude is in [0.5, 1) for the whole matrix: their float32 arithmetic
    then behaves the same at every input scale (scaling by a power of two
    commutes with it while nothing overflows or goes subnormal, so the
    bytes of ordinary-scale inputs do not change), and each scheme folds
    2^exponent back into what it stores.  Errors of candidates are in the
    normalised units.
    """

    def __init__(self, origin: tuple, shape: tuple, raw: np.ndarray, source: str, exponent: int):
        self.origin, self.shape, self.raw, self.source, self.exponent = origin, shape, raw, source, exponent

    @functools.cached_property
    def raw64(self) -> np.ndarray:
        return np.asarray(self.raw, dtype=np.float64)

    @functools.cached_property
    def values(self) -> np.ndarray:
        return np.ldexp(self.raw64, -self.exponent) if self.exponent else self.raw64

    @property
    def values32(self) -> np.ndarray:
        # A float32 input is passed as a strided view: the C encoder copies it.
        a32 = self.raw if self.raw.dtype == np.float32 else np.asarray(self.raw, dtype=np.float32)
        if not self.exponent:
            return a32
        if self.raw.dtype == np.float64:  # one rounding, after the exact scaling
            return self.values.astype(np.float32)
        return np.ldexp(a32, -self.exponent).astype(np.float32)

    @functools.cached_property
    def norm(self) -> float:
        return _norm(self.raw, self.exponent)

    # auto may set a cheaper way to the lplr-SVD starting factor (see
    # _lplr_estimator): a callable returning (U Σ, ones, None).
    svd_start = None

    def svd(self, job: "_TileJob"):
        """The thin SVD of ``values`` (u, σ, vᵀ), computed once per tile."""
        if not hasattr(self, "_svd"):
            m, n = self.shape
            compute = self.svd_start or (lambda: np.linalg.svd(self.values, full_matrices=False))
            self._svd = job.heavy(compute, 4.0 * m * n * min(m, n), 0.0, "lplr: SVD")
        return self._svd


def _fits_float32(x: float) -> bool:
    """x is a binary32 number in the normal range (or zero)."""
    return x == 0.0 or (2.0**-126 <= abs(x) <= _FLOAT32_MAX and float(np.float32(x)) == x)


def _signcut_size_params(width: int, c_storage: str) -> dict:
    """Signcut params for sizing: "c_scale" present when c is binary16."""
    return {"width": width, "c_scale": _SIZE_C_SCALE} if c_storage == "float16" else {"width": width}


def max_width(shape: tuple) -> int:
    """The most cuts a signcut tile of this shape gets: its number of entries.

    Past m·n cuts the weights c alone hold more numbers than the matrix,
    so no target is served by more; ``width=`` above it is capped to it.
    """
    return min(math.prod(shape), container.MAX_PARAM)


def c_encoder_goal(goal: Optional[float], norm: float, input_norm: float) -> float:
    """The rel_error a C encoder is given for the goal ε: it measures error
    against its float32 copy (of norm ``input_norm``), and the goal is an
    absolute error ε‖A‖ (``norm``) expressed relative to that copy; 0 for none."""
    if goal is None or input_norm <= 0:
        return 0.0
    return min(1.0, goal * norm / input_norm)


def next_step(step: int, elapsed: float) -> int:
    """Cuts for the next call into a C encoder, after ``step`` took ``elapsed``
    seconds: about STEP_SECONDS each (the bytes do not depend on it)."""
    return max(1, min(4 * step, SIGNCUT_STEP * 64, int(step * STEP_SECONDS / max(elapsed, 1e-6))))


def stepped_runs(enc, width: int, c_goal: float, failure: ArgumentError):
    """Run a C signcut encoder (matrix or tensor) toward ``width`` cuts in calls
    of about STEP_SECONDS, yielding after each, so that progress, Ctrl-C and
    early stops happen between calls (the bytes do not depend on the calls).
    ``failure`` is raised for the encoder's ArgumentError (a weight that is
    not a finite float32)."""
    step = 4
    while enc.width < width and not enc.finished:
        started = time.monotonic()
        try:
            enc.run(min(step, width - enc.width), c_goal)
        except ArgumentError:
            raise failure from None
        step = next_step(step, time.monotonic() - started)
        yield


def _signcut_candidate(tile: _Tile, job: _TileJob) -> Optional[Candidate]:
    m, n = tile.shape
    target = job.target
    c_storage = job.options.get("c_storage") or "float32"
    c_bits = 16 if c_storage == "float16" else 32
    # Past the width at which signcut costs as much as dense float32 there is
    # no point going on: that caps searches for an error target.
    dense_width = max(1, (32 * m * n) // (m + n + c_bits))
    if target.kind == "width":
        width, goal = min(target.value, max_width(tile.shape)), None
    elif target.kind == "rel_error":
        width, goal = dense_width, target.value
    else:
        width = _largest_fitting(1, dense_width,
                                 lambda w: _tile_cost("signcut", tile.shape, _signcut_size_params(w, c_storage)) <= job.allowance)
        if width is None:
            if target.strict:
                return None
            width = 1
        goal = None

    job.report(0.0, f"signcut 0/{width} cuts")
    enc = _native.SignCutEncoder(tile.values32, job.seed, job.run.threads, c_storage)
    c_goal = c_encoder_goal(goal, tile.norm, enc.input_norm)
    last = None  # (width, error) after the previous call
    exact_before = None
    failure = _ScaleError("signcut cannot encode this matrix: a cut weight is not a finite float32")
    for _ in stepped_runs(enc, width, c_goal, failure):
        now = enc.remainder_norm()
        err = now / enc.input_norm if enc.input_norm > 0 else 0.0
        job.report(enc.width / width, f"signcut {enc.width}/{width} cuts, error {err:.4g}")
        if goal is None and enc.width >= m + n:
            # Deep into the cuts: stop once a call's cuts no longer lower the
            # remainder (float32 has nothing finer to give).
            exact = enc.remainder_norm(exact=True)
            if exact_before is not None and exact >= exact_before:
                break
            exact_before = exact
        if job.beat is not None and last is not None and enc.width >= width / 4 and 0 < now < last[1]:
            # The greedy's error decays ever more slowly, so following the
            # last call's rate to the full width overestimates the decay:
            # if even that cannot beat the best so far, signcut cannot.
            rate = math.log(now / last[1]) / (enc.width - last[0])
            if now * math.exp(rate * (width - enc.width)) > job.beat * enc.input_norm / max(tile.norm, 1e-300):
                return None
        last = (enc.width, now)
    error = enc.remainder_norm(exact=True)
    if goal is not None and error > goal * tile.norm:
        return None
    params = {"width": enc.width}
    sections = enc.sections(job.panel)
    if enc.c_scale is not None and enc.width > 0:
        params["c_scale"] = enc.c_scale
    elif c_storage == "float16":
        # No cut (a zero matrix): nothing to store in float16, so the tile
        # stays a format 1.0 one [VER-2].
        sections = {**sections, "c": b""}
    if job.options.get("refit") and enc.width > 0:
        sections, params, error = _refit(tile, job, sections, params, error)
    sections, params, error = _signcut_fold_scale(tile, job, sections, params, error)
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


def _sign_gram(tile: _Tile, job: _TileJob, sections: dict, width: int):
    """(G, b) of the signs found: G = SᵀS ∘ TᵀT and b = diag(Sᵀ A T), in the
    normalised units, so ‖A − S diag(c) Tᵀ‖² = ‖A‖² − 2cᵀb + cᵀGc."""
    m, n = tile.shape
    s = _native.unpack_signs_f32(sections["s"], m, width, job.panel)
    tt = _native.unpack_signs_f32(sections["tt"], width, n, job.panel)

    def compute():
        gram = (s.T @ s).astype(np.float64) * (tt @ tt.T).astype(np.float64)
        b = np.einsum("ij,ij->j", s.astype(np.float64), tile.values @ tt.T.astype(np.float64))
        return gram, b

    return job.heavy(compute, 2.0 * width * (m * n + width * (m + n)), 1.0, "signcut: weights")


def _error_from_gram(tile: _Tile, gram: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return math.sqrt(max(float(tile.norm**2 - 2.0 * c @ b + c @ gram @ c), 0.0))


def _refit(tile: _Tile, job: _TileJob, sections: dict, params: dict, error: float):
    """Least-squares refit of every c for the signs found (research §1.7).

    Solves (SᵀS ∘ TᵀT) c = diag(Sᵀ A T) and keeps the new weights only if
    the exact error, ‖A‖² − 2cᵀb + cᵀGc evaluated with the c as stored
    (float32, or scale × float16 with a scale chosen for the refit c), goes
    down.  Costs two sign Gram matrices and A·T: a few dense GEMMs.
    """
    gram, b = _sign_gram(tile, job, sections, params["width"])
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
    new_error = _error_from_gram(tile, gram, b, c64)
    if not new_error < error:
        return sections, params, error
    return {**sections, "c": new_c}, new_params, new_error


def _scale_message(scheme: str, tile: _Tile, what: str) -> str:
    return (f"scheme '{scheme}' cannot store this matrix at its magnitude (largest |value| "
            f"{_max_abs(tile.raw):.3g}): {what}; multiply it by a power of two first, or choose another scheme")


def _signcut_fold_scale(tile: _Tile, job: _TileJob, sections: dict, params: dict, error: float):
    """Multiply the stored weights by 2^exponent (the tile's normalisation)."""
    e = tile.exponent
    if not e or params["width"] == 0:
        return sections, params, error
    if "c_scale" in params:
        scale = math.ldexp(params["c_scale"], e)
        if not 2.0**-125 <= scale <= 2.0**112:
            raise _ScaleError(_scale_message("signcut", tile, "its float16 weights' scale leaves [2^-125, 2^112]; "
                                             "use c_storage='float32'"))
        return sections, {**params, "c_scale": scale}, error
    c = np.frombuffer(sections["c"], dtype="<f4").astype(np.float64)
    want = np.ldexp(c, e)
    with np.errstate(over="ignore", under="ignore"):
        stored = want.astype(np.float32)
    if not np.isfinite(stored).all():
        raise _ScaleError(_scale_message("signcut", tile, "a weight overflows float32"))
    sections = {**sections, "c": stored.astype("<f4").tobytes()}
    if np.abs(want).sum() > _FLOAT32_MAX / 2:
        # Near the top of the range the sum of the cuts may leave float32
        # even though each weight fits: check the decoded values.
        m, n = tile.shape
        s = _native.unpack_signs_f32(sections["s"], m, params["width"], job.panel).astype(np.float64)
        tt = _native.unpack_signs_f32(sections["tt"], params["width"], n, job.panel).astype(np.float64)
        peak = job.heavy(lambda: np.abs((s * np.ldexp(stored.astype(np.float64), -e)) @ tt).max(),
                         2.0 * m * n * params["width"], 1.0, "signcut: range check")
        if math.ldexp(peak, e) > _FLOAT32_MAX * (1 - 2.0**-10):  # float32 sums round
            raise _ScaleError(_scale_message("signcut", tile, "its decoded values would overflow float32"))
    if np.array_equal(stored.astype(np.float64), want):
        return sections, params, error
    # Weights below float32's normal range were rounded: measure the error
    # of what is stored, and refuse when the rounding costs accuracy.
    gram, b = _sign_gram(tile, job, sections, params["width"])
    true_error = _error_from_gram(tile, gram, b, np.ldexp(stored.astype(np.float64), -e))
    if true_error > 1.01 * error + 2.0**-20 * tile.norm:
        raise _ScaleError(_scale_message("signcut", tile, "its weights fall below float32's normal range"))
    return sections, params, true_error


def _lplr_one(tile: _Tile, job: _TileJob, rank: int, bits_l: int, bits_r: int, group: int, variant: str) -> Candidate:
    m, n = tile.shape
    values = tile.values
    work = float(m) * n * rank
    start = (lambda: lplr.starting_factor(values, rank, variant, job.seed, tile.svd(job))) if variant == "svd" \
        else (lambda: lplr.sketch(values, rank, job.seed))
    note = f"lplr rank {rank}, bits {bits_l}/{bits_r}"
    left0 = job.heavy(start, 2 * work, 0.0, note)
    left = lplr.quantize(left0, bits_l, group)
    l_hat = left.values()
    right = lplr.quantize(job.heavy(lambda: lplr.least_squares(l_hat, values), 4 * work, 0.3, note), bits_r, group)
    r_hat = right.values()
    error = float(job.heavy(lambda: np.linalg.norm(values - l_hat @ r_hat), 2 * work, 0.7, note))
    scale_l, scale_r = _lplr_fold_scale(tile, left.sigma, right.sigma)
    params, sections = lplr.params_and_sections(rank, left, right, job.panel, scale_l, scale_r)
    return Candidate("lplr", params, sections, error, _tile_cost("lplr", tile.shape, params))


def _lplr_fold_scale(tile: _Tile, sigma_l: float, sigma_r: float) -> tuple:
    """Super-scales with the tile's 2^exponent folded in: all on σ_L (the
    bytes an unnormalised fit would give), or shared to keep both binary32."""
    e = tile.exponent
    if _fits_float32(math.ldexp(sigma_l, e)):
        return math.ldexp(sigma_l, e), sigma_r
    e_l = round((e + math.log2(sigma_r) - math.log2(sigma_l)) / 2)
    scale_l, scale_r = math.ldexp(sigma_l, e_l), math.ldexp(sigma_r, e - e_l)
    if not (_fits_float32(scale_l) and _fits_float32(scale_r)):
        raise _ScaleError(_scale_message("lplr", tile, "its factor scales leave the float32 range"))
    return scale_l, scale_r


def _lplr_candidate(tile: _Tile, job: _TileJob) -> Optional[Candidate]:
    m, n = tile.shape
    options, target = job.options, job.target
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

    def cost(r, bl, br):
        return _tile_cost("lplr", tile.shape, {"rank": r, "bits_l": bl, "bits_r": br, "group": group})

    def ranks_of(bl, br, fit_job):
        if rank is not None:
            return [rank] if (not target.strict or target.kind != "bits" or cost(rank, bl, br) <= job.allowance) else []
        if target.kind == "rel_error":
            return _ranks_for_error(tile, fit_job, bl, br, group, variant, target.value, max_rank)
        r = _largest_fitting(1, max_rank, lambda r: cost(r, bl, br) <= job.allowance)
        return [r] if r is not None else []

    if job.estimate is not None and target.kind == "bits":
        # auto: fit only the few pairs the spectrum ranks best, and only
        # those whose estimate may beat the best encoding so far.  Ranks
        # are sized first (cheap), so the estimate sees every candidate.
        fits = [(job.estimate(r, bl, br), bl, br, r) for bl, br in pairs for r in ranks_of(bl, br, job)]
        fits = sorted(f for f in fits if job.beat is None or _ESTIMATE_MARGIN * f[0] < job.beat)[:_AUTO_LPLR_FITS]
        best = None
        for i, (_, bl, br, r) in enumerate(fits):
            fit_job = job.part(i / len(fits), (i + 1) / len(fits))
            cand = _lplr_one(tile, fit_job, r, bl, br, group, variant)
            best = _better(best, cand, target, tile)
            if job.beat is not None and cand.error > _CLOSE_CALL * job.beat:
                break  # the fit ranked best lost clearly: the next ones would too
        return best
    best = None
    for i, (bl, br) in enumerate(pairs):
        fit_job = job.part(i / len(pairs), (i + 1) / len(pairs))
        fit_job.report(0.0, f"lplr bits {bl}/{br}")
        for r in ranks_of(bl, br, fit_job):
            best = _better(best, _lplr_one(tile, fit_job, r, bl, br, group, variant), target, tile)
    if best is None and not target.strict:
        # A matrix too small for the default budget still gets an encoding.
        best = _lplr_one(tile, job, rank or 1, fixed_l or 8, fixed_r or 8, group, variant)
    return best


def _ranks_for_error(tile, job, bl, br, group, variant, goal, max_rank) -> list:
    """The smallest rank whose error meets the goal (bisection), if any does."""
    cache = {}

    def ok(r):
        if r not in cache:
            cache[r] = _lplr_one(tile, job, r, bl, br, group, variant).error <= goal * tile.norm
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


# Unit roundoff of each dense storage: a stored value is off by at most this
# fraction of itself unless it leaves the type's normal range.
_UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 0.0}


def _bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even), as uint16."""
    with np.errstate(over="ignore"):
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def _dense_bytes(values: np.ndarray, storage: str) -> tuple:
    """(section bytes, the values as decoded) of a dense tile [DN-1]; None
    when a value overflows the storage type."""
    with np.errstate(over="ignore"):
        if storage == "bfloat16":
            bits = _bfloat16_bits(values)
            raw, decoded = bits.astype("<u2"), (bits.astype(np.uint32) << 16).view(np.float32)
        else:
            raw = decoded = np.ascontiguousarray(values).astype(container.DTYPES[storage][0])
    if not np.isfinite(decoded).all():
        return None
    return raw.tobytes(), decoded


def _quant_configs(tile: _Tile, options: dict) -> list:
    """(code bits, group, scale bits) a quant fit may use, by the options."""
    n = tile.shape[1]
    whole_row = max(container.MIN_GROUP, 1 << max(0, (n - 1).bit_length()))
    fixed_bits = _int_option(options, "code_bits", 1, 8)
    fixed_group = _int_option(options, "group", container.MIN_GROUP, container.MAX_GROUP)
    if fixed_group is not None and fixed_group & (fixed_group - 1):
        raise ArgumentError(f"group must be a power of two, not {fixed_group}")
    fixed_scale = _int_option(options, "scale_bits", 1, 8)
    pairs = [(g, t) for g, t in QUANT_GROUPS if g < whole_row] + [(whole_row, 8)]
    if fixed_group is not None:
        pairs = [(fixed_group, next((t for g, t in pairs if g == fixed_group), 8))]
    if fixed_scale is not None:
        pairs = sorted({(g, fixed_scale) for g, _ in pairs})
    # 5-7 bit codes are stored as bytes (§9.1) at the cost of 8: only 8 is searched.
    return [(b, g, t) for b in ((fixed_bits,) if fixed_bits else (1, 2, 3, 4, 8)) for g, t in pairs]


def _quant_one(tile: _Tile, job: _TileJob, bits: int, group: int, scale_bits: int) -> Candidate:
    note = f"quant {bits} bits, group {group}"
    job.report(0.0, note)
    m, n = tile.shape
    values = tile.values
    fitted = job.heavy(lambda: quantized.quantize(values, bits, group, scale_bits), 200.0 * m * n, 0.0, note)
    decoded = quantized.dequantize(*fitted[:3], fitted[3], bits, group)
    residual = values - decoded
    # Not np.linalg.norm: its BLAS dot wakes BLAS's threads, which costs
    # more than the sum itself on a band of a few thousand entries.
    error = math.sqrt(float(np.einsum("ij,ij->", residual, residual)))
    codes, scale_codes, exps, sigma = fitted
    scale = math.ldexp(sigma, tile.exponent)
    if not (2.0**-126 <= scale <= _FLOAT32_MAX):  # [QT-2]: a normal binary32
        raise _ScaleError(_scale_message("quant", tile, "its super-scale leaves the float32 range"))
    params, sections = quantized.params_and_sections(bits, group, scale_bits, (codes, scale_codes, exps, scale),
                                                     job.panel)
    return Candidate("quant", params, sections, error, _tile_cost("quant", tile.shape, params))


def _quant_candidate(tile: _Tile, job: _TileJob) -> Optional[Candidate]:
    """b-bit codes with scale codes per (row, group) (spec §10.7).

    Under a budget: the most code bits that fit, with the finest group that
    then fits; the next coarser group and one bit fewer (finest group) are
    fitted too and the best kept.  For an error goal: the cheapest fit that
    meets it, trying code bits upward.
    """
    configs = _quant_configs(tile, job.options)
    if job.in_auto:
        configs = [c for c in configs if c[0] >= _QUANT_MIN_AUTO_BITS]
    cost = {c: _tile_cost("quant", tile.shape, {"bits": c[0], "group": c[1], "scale_bits": c[2]}) for c in configs}
    target = job.target
    if target.kind == "rel_error":
        best = None
        for c in sorted(configs, key=lambda c: cost[c]):
            if best is not None and cost[c] >= best.cost:
                break
            cand = _quant_one(tile, job, *c)
            if cand.error <= target.value * tile.norm:
                best = cand
                break
        return best
    fitting = [c for c in configs if job.allowance is None or cost[c] <= job.allowance]
    if not fitting:
        if target.strict or not configs:
            return None
        fitting = [min(configs, key=lambda c: cost[c])]
    top = max(c[0] for c in fitting)
    tries = sorted((c for c in fitting if c[0] == top), key=lambda c: c[1])[:2]
    lower = sorted((c for c in fitting if c[0] == top - 1), key=lambda c: c[1])[:1]
    best = None
    for i, c in enumerate(tries + lower):
        best = _better(best, _quant_one(tile, job.part(i / 3, (i + 1) / 3), *c), target, tile)
    return best


def _dense_candidate(tile: _Tile, job: _TileJob) -> Optional[Candidate]:
    storage, target = job.options.get("storage"), job.target
    if storage is not None and storage not in container.FLOAT_STORAGE:
        raise ArgumentError(f"storage must be one of {container.FLOAT_STORAGE}, not {storage!r}")
    if storage is not None:
        choices = [storage]
    elif target.kind == "default":
        choices = [tile.source if tile.source in container.FLOAT_STORAGE else "float32"]
    else:
        choices = ["float16", "bfloat16", "float32", "float64"]
    best, lost = None, []
    for name in choices:
        params = {"storage": name}
        if target.kind == "bits" and _tile_cost("dense", tile.shape, params) > job.allowance:
            continue
        stored = _dense_bytes(tile.raw64, name)
        if stored is None:
            if storage is not None:
                raise ArgumentError(f"values do not fit in {storage} (they would become infinite); choose a wider storage")
            continue  # this storage overflows; another may not
        data, decoded = stored
        error = _norm(tile.raw64 - decoded, tile.exponent)
        if error > 1.01 * _UNIT_ROUNDOFF[name] * tile.norm:
            lost.append(name)  # values below the type's normal range: precision lost
            continue
        cand = Candidate("dense", params, {"values": data}, error,
                         _tile_cost("dense", tile.shape, params))
        best = _better(best, cand, target, tile)
    if best is None and lost:
        raise _ScaleError(_scale_message("dense", tile, f"its values are too small for {' or '.join(lost)} storage"))
    return best


def _better(best: Optional[Candidate], cand: Optional[Candidate], target: Target, tile) -> Optional[Candidate]:
    """Smallest error under a budget; smallest size that meets an error goal."""
    if cand is None:
        return best
    if target.kind == "rel_error":
        if cand.error > target.value * tile.norm:
            return best
        key = lambda c: (c.cost, c.error)  # noqa: E731
    else:
        key = lambda c: (c.error, c.cost)  # noqa: E731
    return cand if best is None or key(cand) < key(best) else best


# Relative error of b-bit factor quantization of Gaussian-like values
# (measured with lrq's quantizer, group 128).
_QUANT_NOISE = {1: 0.60, 2: 0.34, 3: 0.19, 4: 0.10, 5: 0.05, 6: 0.026, 7: 0.013, 8: 0.0064}
# An lplr-SVD fit at rank r with bits (b_l, b_r) has a squared error of about
#   ‖A − A_r‖² + w_L Σ_{i≤r} σ_i² ν / (σ_i² + ν) + w_R q(b_r)² ‖A_r‖²,
# ν = q(b_l)² ‖A_r‖² / r: quantizing L = U_r Σ_r adds noise of about ν to
# each column, which costs the least-squares fit of R a direction's energy
# σ_i² only where it drowns it (so a flat spectrum, where every σ_i² is
# near ν / q², loses nearly all of q(b_l)² ‖A_r‖², and a decaying one
# less); quantizing R adds its own noise on top.  The weights are least
# squares over 384 fits at 1, 2 and 4 bits/entry of Gaussian, low-rank plus
# noise and decaying-spectrum matrices and of MiniLM's embedding, attention
# and feed-forward weights: the fits measured 0.73-1.35× the estimate (95 %
# of them), up to 2.9× where lplr wins by far anyway.
_NOISE_WEIGHT_L, _NOISE_WEIGHT_R = 0.90, 1.36
# auto fits lplr where estimate × this is below the best error so far, and
# makes at most this many fits: those estimated best.
_ESTIMATE_MARGIN = 0.9
_AUTO_LPLR_FITS = 3
# ... and stops after a fit whose error is above this multiple of the best
# encoding so far from another scheme.
_CLOSE_CALL = 1.02
# Tiles with a side longer than this get a randomized SVD of this rank.
_SPECTRUM_RANK = 1024


def _lplr_estimator(tile: _Tile, job: _TileJob) -> Callable[[int, int, int], float]:
    """estimate(rank, bits_l, bits_r) of an lplr-SVD fit's error (model
    above), from the spectrum: exact for a tile whose shorter side is at
    most _SPECTRUM_RANK, else a randomized SVD (one power iteration), which
    the fits then start from.  Ranks beyond it estimate as infinite."""
    m, n = tile.shape
    values = tile.values
    if min(m, n) <= _SPECTRUM_RANK:
        # σ² from the eigenvalues of the smaller Gram matrix: a few times
        # cheaper than an SVD, and accurate where the estimate needs it
        # (the energy kept).  Its eigenvectors, the singular vectors of the
        # shorter side, cost a few times more again, so they are computed
        # only when an lplr fit is tried.
        gram = job.heavy(lambda: values.T @ values if n <= m else values @ values.T, 2.0 * m * n * min(m, n), 0.0,
                         "estimating the spectrum")
        lam = job.heavy(lambda: np.linalg.eigvalsh(gram), 4.0 * min(m, n) ** 3, 0.5, "estimating the spectrum")
        sv = np.sqrt(np.maximum(lam[::-1], 0.0))

        def svd_start():
            # U Σ (= A V when the columns are the shorter side), held as an
            # "SVD" with unit singular values.
            lam, vec = np.linalg.eigh(gram)
            vec = vec[:, ::-1]
            return (values @ vec) if n <= m else vec * np.sqrt(np.maximum(lam[::-1], 0.0)), np.ones(len(lam)), None

        tile.svd_start = svd_start
    else:
        k = _SPECTRUM_RANK

        def randomized_svd():
            rng = np.random.default_rng(job.seed)
            q = np.linalg.qr(values @ rng.standard_normal((n, k)))[0]
            q = np.linalg.qr(values @ (values.T @ q))[0]
            u, sv, vt = np.linalg.svd(q.T @ values, full_matrices=False)
            return q @ u, sv, vt

        tile._svd = job.heavy(randomized_svd, 10.0 * m * n * k, 0.0, "estimating the spectrum")
        sv = tile._svd[1]
    energy = sv.astype(np.float64) ** 2
    kept = np.concatenate([[0.0], np.cumsum(energy)])
    total = tile.norm**2

    def estimate(rank: int, bits_l: int, bits_r: int) -> float:
        if rank >= len(kept):
            return math.inf
        head = kept[rank]
        nu = _QUANT_NOISE[bits_l] ** 2 * head / rank
        top = energy[:rank]
        left = float(np.sum(top * nu / np.maximum(top + nu, 1e-300)))
        right = _QUANT_NOISE[bits_r] ** 2 * head
        return math.sqrt(max(total - head, 0.0) + _NOISE_WEIGHT_L * left + _NOISE_WEIGHT_R * right)

    return estimate


def _auto_candidate(tile: _Tile, job: _TileJob) -> Optional[Candidate]:
    """The best of the schemes under the same target, fully encoding only
    what may win.

    Dense costs a conversion.  Signcut, the usual winner, is encoded next.
    Then the spectrum (the eigenvalues of the smaller Gram matrix, or a
    randomized SVD for a tile whose sides both exceed 1024) estimates every
    lplr fit's error, and lplr-SVD fits are made only for the few pairs
    whose estimate can beat the best so far.  A scheme that cannot store
    the matrix's magnitude is left out.
    """
    strict = Target(job.target.kind if job.target.kind != "default" else "bits", job.target.value)
    base = dataclasses.replace(job, target=strict)
    best = None

    def attempt(scheme, candidate, sub):
        nonlocal best
        extra = job.header_extra.get(scheme, 0)
        # The scheme's header entry comes out of the tile's allowance (see _Plan).
        allowance = None if job.allowance is None else job.allowance - extra
        beat = min(e for e in (best.error if best else None, job.beat_floor) if e is not None) \
            if best is not None or job.beat_floor is not None else None
        try:
            cand = candidate(tile, dataclasses.replace(sub, beat=beat, allowance=allowance))
        except _ScaleError:
            return
        if cand is not None:
            best = _better(best, dataclasses.replace(cand, cost=cand.cost + extra), strict, tile)

    attempt("dense", _dense_candidate, dataclasses.replace(base, options={k: v for k, v in job.options.items() if k == "storage"}))
    if _max_abs(tile.raw) <= _FLOAT32_MAX:  # the factorizations store float32 numbers
        quant_options = {k: v for k, v in job.options.items() if k in _SCHEME_OPTIONS["quant"]}
        if not job.quant_elsewhere:
            attempt("quant", _quant_candidate, dataclasses.replace(base.part(0.0, 0.1, "auto: "), options=quant_options,
                                                                   in_auto=True))
        attempt("signcut", _signcut_candidate, base.part(0.1, 0.8, "auto: "))
        estimate = _lplr_estimator(tile, base.part(0.8, 0.85, "auto: "))
        attempt("lplr", _lplr_candidate, dataclasses.replace(base.part(0.85, 1.0, "auto: "),
                                                     options={**job.options, "variant": "svd"}, estimate=estimate))
    if best is None and not job.target.strict:
        # Nothing fits the default budget (a tiny matrix): store it exactly.
        best = _dense_candidate(tile, dataclasses.replace(job, options={}))
    return best


_CANDIDATES = {"signcut": _signcut_candidate, "lplr": _lplr_candidate, "dense": _dense_candidate,
               "quant": _quant_candidate, "auto": _auto_candidate}


def norm_band_rows(shape: tuple) -> int:
    """Rows per band of :func:`_norm`: about 2^20 entries."""
    return max(1, (1 << 20) // max(1, shape[1] if len(shape) == 2 else math.prod(shape)))


def band_square_sum(band: np.ndarray, exponent: int) -> float:
    """Σ (band × 2^-exponent)² in float64: one term of :func:`_norm`."""
    block = np.ldexp(np.asarray(band, dtype=np.float64), -exponent)
    return float(np.einsum("ij,ij->", block, block))


def norm_from_bands(sums) -> float:
    """The norm from the band sums of :func:`_norm`, added in its order
    (so a matrix whose bands are summed elsewhere gets the same bits)."""
    total = 0.0
    for part in sums:
        total += part
    return math.sqrt(total)


def _norm(a: np.ndarray, exponent: int = 0) -> float:
    """‖a × 2^-exponent‖_F in float64, a few rows at a time (no full-size
    temporary); the scaling comes first, so huge values do not overflow."""
    a = a.reshape(1, -1) if a.ndim != 2 else a
    step = norm_band_rows(a.shape)
    return norm_from_bands(band_square_sum(a[r : r + step], exponent) for r in range(0, a.shape[0], step))


def _max_abs(a: np.ndarray) -> float:
    return max(float(np.max(a)), -float(np.min(a))) if a.size else 0.0


# ----------------------------------------------------------------- planning


def _header_bound(name, shape, source, tile_shape, panel, scheme, encoder_info, budget, c16=False) -> int:
    """Bytes of preamble + header, every number at the widest the budget allows.

    Offsets and lengths cannot exceed the budget in a file that meets it, and
    a width or rank cannot exceed 8 × budget.  ``scheme`` is the one every
    tile gets (auto's plan takes one bound per scheme).
    """
    limit = container.MAX_PARAM if budget is None else min(container.MAX_PARAM, 8 * budget)
    size_limit = (1 << 62) if budget is None else budget
    widest = {"width": limit, "rank": limit, "bits_l": 8, "bits_r": 8, "group": container.MAX_GROUP,
              "scale_l": 1.0, "scale_r": 1.0, "storage": "bfloat16", "c_scale": _SIZE_C_SCALE,
              "bits": 8, "scale_bits": 8, "scale": 1.0}
    params = {k: widest[k] for k in container.PARAM_KEYS[scheme] if k != "c_scale" or c16}
    tiles = [container.TileRecord(o, t, scheme, params) for o, t in container.tile_grid(shape, tile_shape)]
    record = container.TensorRecord(name, shape, source, tile_shape, panel, tiles, 1.0, encoder_info)
    entry = (max(container.SECTION_KINDS[scheme], key=len), size_limit, size_limit, 0xFFFFFFFF)
    table = [entry] * (len(tiles) * len(container.SECTION_KINDS[scheme]))
    raw = msgpack.packb(container.header_object([record], None, table), use_single_float=True)
    return container.PREAMBLE_SIZE + len(raw)


def _smallest_tile_cost(scheme: str, shape: tuple, options: dict) -> int:
    """Bytes the cheapest encoding of a tile of this scheme may take."""
    if scheme == "signcut":
        return _tile_cost("signcut", shape, _signcut_size_params(1, options.get("c_storage") or "float32"))
    if scheme == "dense":
        return _tile_cost("dense", shape, {"storage": options.get("storage") or "float16"})
    if scheme == "quant":
        return _tile_cost("quant", shape, {"bits": options.get("code_bits") or 1,
                                           "group": options.get("group") or container.MAX_GROUP,
                                           "scale_bits": options.get("scale_bits") or 1})
    params = {
        "rank": options.get("rank") or 1,
        "bits_l": options.get("bits_l") or 1,
        "bits_r": options.get("bits_r") or 1,
        "group": options.get("group") or DEFAULT_GROUP,
    }
    return _tile_cost("lplr", shape, params)


@dataclass(frozen=True)
class _Request:
    """A validated call of :func:`encode`."""

    a: np.ndarray
    source: str
    scheme: str
    target: Target
    seed: int
    panel: int
    shape: tuple
    tile_shape: tuple
    name: str
    threads: int
    options: dict
    # The input is encoded as a × 2^-exponent (largest |value| in [0.5, 1)).
    exponent: int
    # auto whose quant candidate is the row bands (bands_apply): its tiles
    # then leave quant out, and tile k's candidates must beat the bands'
    # error inside it, band_beats[k] (see band_beats).
    quant_in_bands: bool = False
    band_beats: tuple = ()

    @property
    def encoder_info(self) -> dict:
        return {"scheme": self.scheme, "seed": self.seed, "target": self.target.kind, "value": float(self.target.value)}


@dataclass(frozen=True)
class ArraySummary:
    """What a request needs of an input it does not hold: its shape, its
    dtype's name and its largest magnitude, for a matrix whose tiles are
    encoded elsewhere (``lrq.dask.encode``), already checked as
    :func:`as_float_matrix` checks an array (2-D, floating, finite)."""

    shape: tuple
    source: str
    peak: float


def _validate_request(a, scheme, bits, width, rel_error, seed, tile_shape, panel, progress, name,
                      source_dtype, threads, options, summary: Optional[ArraySummary] = None) -> _Request:
    if scheme not in SCHEMES:
        raise ArgumentError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    allowed = set().union(*_SCHEME_OPTIONS.values()) if scheme == "auto" else _SCHEME_OPTIONS[scheme]
    unknown = set(options) - allowed
    if unknown:
        raise ArgumentError(f"unknown option(s) for scheme '{scheme}': {', '.join(sorted(unknown))}")
    target = _target(bits, width, rel_error)
    if target.kind == "width" and scheme != "signcut":
        raise ArgumentError("width= applies to scheme='signcut'; use bits= or rel_error= (or rank= for lplr)")
    if summary is None:
        # signcut also stores tensors of order 3 to 8 (spec §10.5, lrq.tensor).
        ndims = {"dense": tuple(range(0, 9)), "signcut": tuple(range(2, 9))}.get(scheme, (2,))
        a, source = as_float_matrix(a, allow_ndim=ndims)
        shape, ndim = tuple(int(d) for d in a.shape), a.ndim
    else:
        source, shape, ndim = summary.source, tuple(summary.shape), len(summary.shape)
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
    if threads is None:
        threads = _native.threads()
    top = _native.threads_max()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= top:
        raise ArgumentError(f"threads must be an integer in [1, {top}], not {threads!r}")
    if tile_shape is None and ndim == 2 and max(shape) > DEFAULT_TILE:
        tile_shape = (DEFAULT_TILE, DEFAULT_TILE)
    if tile_shape is None or ndim != 2:
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
    for key in ("code_bits", "scale_bits"):  # quant, checked before a budget is planned with them
        _int_option(options, key, 1, 8)
    if "refit" in options and not isinstance(options["refit"], (bool, np.bool_)):
        raise ArgumentError(f"refit must be True or False, not {options['refit']!r}")
    peak = _max_abs(a) if summary is None else summary.peak
    if scheme in ("signcut", "lplr", "quant") and peak > _FLOAT32_MAX:
        raise ArgumentError(
            f"values reach {peak:.3g}, beyond the float32 range that scheme '{scheme}' stores; "
            "scale the matrix or use scheme='dense' with storage='float64'"
        )
    exponent = math.frexp(peak)[1] if peak > 0 else 0
    return _Request(a, source, scheme, target, int(seed), int(panel), shape, tile_shape, name, int(threads),
                    dict(options), exponent)


@dataclass(frozen=True)
class _Plan:
    """The tiles and each one's share of the byte budget.

    The budget pays first for the header and for the cheapest encoding of
    every tile (so a small edge tile is never starved); what is left is
    shared by area.  Each tile is then held to its allowance, and the sum of
    allowances plus the header bound is the budget: the file fits.

    For auto, whose tiles may get different schemes, the overhead is the
    header bound with every tile of the scheme whose header entry is
    smallest, and a tile of scheme s pays ``header_extra[s]`` (the extra
    bytes of its entry) out of its allowance: each tile's entry in the
    header is independent of the others, so the header of any mix of
    schemes is the overhead plus the extras of the schemes chosen.  A tile
    that picks signcut then gets exactly the room signcut alone would.
    """

    grid: list
    total: int
    budget: Optional[int]
    overhead: int
    smallest: list
    header_extra: dict = field(default_factory=dict)

    @property
    def spare(self) -> Optional[int]:
        return None if self.budget is None else self.budget - self.overhead - sum(self.smallest)

    def allowance(self, k: int) -> Optional[float]:
        if self.budget is None:
            return None
        if self.spare < 0:
            return -1  # the default budget cannot be met: each scheme's fallback applies
        return self.smallest[k] + self.spare * math.prod(self.grid[k][1]) / self.total


def _plan(request: _Request) -> _Plan:
    target = request.target
    grid = list(container.tile_grid(request.shape, request.tile_shape))
    total = math.prod(request.shape)
    budget = math.floor(target.value * total / 8) if target.kind in ("bits", "default") else None
    c16 = request.options.get("c_storage") == "float16"
    schemes = _AUTO_SCHEMES if request.scheme == "auto" else (request.scheme,)
    bounds = {s: _header_bound(request.name, request.shape, request.source, request.tile_shape, request.panel,
                               s, request.encoder_info, budget, c16) for s in schemes}
    overhead = min(bounds.values())
    # Per tile, rounded up: the entries are equal for every tile of a scheme.
    extra = {s: -(-(bound - overhead) // len(grid)) for s, bound in bounds.items()}
    smallest = [min(_smallest_tile_cost(s, tshape, request.options) + extra[s] for s in schemes) for _, tshape in grid]
    plan = _Plan(grid, total, budget, overhead, smallest, extra if request.scheme == "auto" else {})
    if plan.spare is not None and plan.spare < 0 and target.strict:
        raise BudgetError(_infeasible_message(request.scheme, target, request.shape, overhead + sum(smallest)))
    return plan


# ----------------------------------------------------------------- encoding


def _encode_tile(request: _Request, plan: _Plan, k: int, report, run: _Run, block=None) -> tuple:
    """Tile k's record and its error (in the normalised units).  ``block``
    is the tile's values when the request does not hold the matrix."""
    origin, tshape = plan.grid[k]
    if block is None:
        block = request.a[tuple(slice(o, o + s) for o, s in zip(origin, tshape))]
    tile = _Tile(origin, tshape, block, request.source, request.exponent)
    job = _TileJob(request.target, plan.allowance(k), request.seed, request.panel, request.options, report, run,
                   header_extra=plan.header_extra, quant_elsewhere=request.quant_in_bands,
                   beat_floor=request.band_beats[k] if request.band_beats else None)
    try:
        cand = _CANDIDATES[request.scheme](tile, job)
    except _ScaleError as exc:
        raise ArgumentError(str(exc)) from None
    if cand is None and job.beat_floor is not None:
        return None, math.inf  # nothing beats the quant bands here: auto keeps the bands
    if cand is None:
        raise BudgetError(_infeasible_message(request.scheme, request.target, request.shape,
                                              plan.overhead + sum(plan.smallest)))
    sections = {kind: make_section(kind, data, _native.crc32c) for kind, data in cand.sections.items()}
    return container.TileRecord(origin, tshape, cand.scheme, cand.params, sections), cand.error


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
    """Compress a float matrix into an :class:`lrq.Matrix` (with
    ``scheme="signcut"``, a float array of 3 to 8 dimensions into an
    :class:`lrq.Tensor` of rank-one sign terms, spec §10.5).

    Parameters
    ----------
    a : array_like, 2-D, float16/float32/float64 (any ndim up to 8 for "dense";
        3 to 8 dimensions for "signcut", stored as an :class:`lrq.Tensor`)
        Finite values only; an empty array, NaN/Inf, integer, bool or complex
        input raises :class:`lrq.ArgumentError`.
    scheme : "auto" (default), "signcut", "quant", "lplr" or "dense"
        "quant" (format 1.5, spec §10.7) stores b-bit codes with one scale
        per (row, group) as a short code; under a ``bits=`` budget and with
        no ``tile_shape=`` or quant option, a matrix of 128 rows or more is
        encoded in up to 8 row bands whose code bits and groups are chosen
        to spend the budget whole.
        "auto" keeps the smallest error under the target (or, for
        ``rel_error=``, the smallest encoding) of dense, quant, signcut and
        lplr-SVD (and, where quant bands apply, of quant in bands against
        that), fully encoding only what may win: signcut, then lplr fits
        only for the (at most three) bit pairs an estimate from the
        spectrum says can beat it.  A scheme that cannot store the
        matrix's magnitude is skipped, never fatal.  Every scheme encodes
        the input normalised by a power of two, so its relative error does
        not depend on the input's scale; where the stored numbers cannot
        hold the magnitude (e.g. signcut's float32 weights for values below
        ~1e-40) it raises :class:`lrq.ArgumentError`.
    bits : float, optional
        Budget in bits per entry, counting everything stored (header and
        section padding included): ``M.bits_per_entry <= bits`` is guaranteed.
        Raises :class:`lrq.BudgetError` when nothing fits.
    width : int, optional
        Number of signed cuts (scheme "signcut" only), at most per tile
        its m·n entries (a larger width is capped to it: past m·n cuts the
        weights alone outnumber the matrix's entries).  Cutting also stops
        early when the remainder is exactly zero, or when a step of cuts
        no longer lowers it (float32 has nothing finer to give).
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
        Called during long encodes, always from the calling thread, at
        least every 0.25 s or so of work (a signcut step is sized to take
        about that; a long NumPy call reports every 0.2 s while it runs).
        Ctrl-C (KeyboardInterrupt), or an exception raised by the callback,
        stops an encode within about a second and propagates; no encoder
        keeps running (a NumPy call already under way finishes in the
        background and its result is dropped).
    threads : int, optional
        Threads to use, 1 .. 64 (default: :func:`lrq.get_num_threads`, set
        by :func:`lrq.set_num_threads` or ``LRQ_NUM_THREADS``, else up to 2,
        the cores of the machine).  Never changes the result: files are
        byte-identical for any value.  (The encoder of tensors of order 3
        and more runs on one thread.)
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
        ``variant`` ("sketch" or "svd").  quant: ``code_bits`` (1-8;
        5-7 are stored as bytes, like 8), ``group`` (a power of two >= 16)
        and ``scale_bits`` (1-8), each searched when not given.  dense: ``storage`` ("float32",
        "float16", "bfloat16", "float64").
    """
    request = _validate_request(a, scheme, bits, width, rel_error, seed, tile_shape, panel, progress, name,
                                source_dtype, threads, options)
    if scheme == "signcut" and len(request.shape) >= 3:
        from .tensor import encode_tensor

        if options or tile_shape is not None:
            raise ArgumentError("a signcut tensor of order 3 or more is one tile with float32 weights: "
                                "tile_shape=, refit= and c_storage= do not apply")
        return encode_tensor(request.a, request.source, request.target, seed=request.seed, panel=request.panel,
                             name=request.name, encoder_info=request.encoder_info, progress=progress)
    banded = None
    if bands_apply(request, tile_shape):
        banded = _quant_bands(request, progress)
        request = dataclasses.replace(request, quant_in_bands=True,
                                      band_beats=band_beats(request, banded[2]) if banded else ())
    if banded is not None and scheme == "quant":
        matrix = banded[0]
    else:
        plan = _plan(request)
        results = _run_tiles(len(plan.grid), functools.partial(_encode_tile, request, plan), progress, request.threads)
        matrix = choose_bands(banded, results, lambda: assemble(request, plan, results, _norm(request.a, request.exponent)))
    _report(progress, 1.0, "done")
    return matrix


def choose_bands(banded: Optional[tuple], results: list, tiles_matrix: Callable):
    """auto's choice between its tiles' ``results`` and the quant bands: the
    bands when they have no more error (or when a tile found nothing to beat
    them, _encode_tile), else the tiles' matrix, ``tiles_matrix()``."""
    if banded is not None and banded[1] <= math.sqrt(sum(e**2 for _, e in results)):
        return banded[0]
    return tiles_matrix()


# Quant under a budget in row bands (spec §7.1 tiles): each band gets the
# code bits and group its share of the budget buys best, so the budget is
# spent whole (one tile of b-bit codes costs b bits plus scales, and would
# leave the rest of a whole-number budget unused).  At most this many bands
# per tile column, each a multiple of 16 rows and at least _BAND_ROWS_MIN.
_BANDS = 8
_BAND_ROWS_MIN = 64
_QUANT_BITS = (1, 2, 3, 4, 8)


def bands_apply(request: _Request, tile_shape) -> bool:
    """Whether quant (alone, or as auto's rival) is encoded in row bands: a
    bits= (or the default) budget, no tile_shape= or quant option, 2-D,
    at least 128 rows, values in float32's range."""
    return (request.scheme in ("quant", "auto") and request.target.kind in ("bits", "default")
            and tile_shape is None and len(request.shape) == 2 and request.shape[0] >= 2 * _BAND_ROWS_MIN
            and not set(request.options) & _SCHEME_OPTIONS["quant"])


def band_request(request: _Request) -> _Request:
    """The request with the row bands of quant as its tiles (see _quant_bands):
    up to _BANDS per tile row of the request's own tiles, whose rows are a
    multiple of the band's when there are several, so every band lies in
    one of the request's tiles (band_beats)."""
    m, _ = request.shape
    rows, cols = request.tile_shape
    band = max(_BAND_ROWS_MIN, 16 * -(-rows // (16 * _BANDS)))
    return dataclasses.replace(request, tile_shape=(min(band, m), cols))


def band_beats(request: _Request, band_errors: list) -> tuple:
    """Per tile of ``request`` (auto's grid), the error of the bands inside it
    as allocated: what auto's candidates for the tile must beat for auto to
    keep them over the bands (signcut stops early when it cannot)."""
    bands = list(container.tile_grid(request.shape, band_request(request).tile_shape))
    beats = []
    for origin, shape in container.tile_grid(request.shape, request.tile_shape):
        inside = [e for (o, s), e in zip(bands, band_errors)
                  if all(oa <= ob and ob + sb <= oa + sa for oa, sa, ob, sb in zip(origin, shape, o, s))]
        beats.append(math.sqrt(sum(e * e for e in inside)))
    return tuple(beats)


def band_hull(request: _Request, k: int, block: np.ndarray, progress=None) -> Optional[list]:
    """Quant fits of band k (of :func:`band_request`'s grid) on the lower
    convex hull of (bytes, squared error): the code bits around the budget
    (the one below it, the one at or above), each with the finest group and
    with one scale per row.  None if the band's scale leaves float32."""
    origin, tshape = list(container.tile_grid(request.shape, request.tile_shape))[k]
    tile = _Tile(origin, tshape, block, request.source, request.exponent)
    job = _TileJob(request.target, None, request.seed, request.panel, {},
                   progress or (lambda f, msg: None), _Run(threads=request.threads))
    bits = request.target.value
    choices = [b for b in _QUANT_BITS if b < bits][-1:] + [b for b in _QUANT_BITS if b >= bits][:1]
    configs = _quant_configs(tile, {})
    fits = []
    for b in choices:
        for group, scale_bits in sorted({configs[0][1:], configs[-1][1:]}):
            try:
                fits.append(_quant_one(tile, job, b, group, scale_bits))
            except _ScaleError:
                return None
    fits.sort(key=lambda c: (c.cost, c.error))
    hull = []
    for c in fits:  # cost ascending, error strictly falling, convex
        if hull and c.error >= hull[-1].error:
            continue
        while len(hull) >= 2 and ((hull[-1].error**2 - c.error**2) * (hull[-1].cost - hull[-2].cost)
                                  >= (hull[-2].error**2 - hull[-1].error**2) * (c.cost - hull[-1].cost)):
            hull.pop()
        hull.append(c)
    return hull


def band_assemble(request: _Request, hulls: list, norm: float) -> Optional[tuple]:
    """(matrix, error, band errors) of the bands' fits with the budget allocated: every
    band starts at its cheapest fit, and the upgrade saving the most squared
    error per byte is taken while the budget allows (rate allocation over
    convex hulls).  None when a hull is None or the budget cannot pay."""
    chosen = band_allocate(request, hulls)
    if chosen is None:
        return None
    m, n = request.shape
    grid = list(container.tile_grid(request.shape, request.tile_shape))
    budget, overhead = _band_budget(request)
    results = []
    for (origin, tshape), cand in zip(grid, chosen):
        sections = {kind: make_section(kind, data, _native.crc32c) for kind, data in cand.sections.items()}
        results.append((container.TileRecord(origin, tshape, "quant", cand.params, sections), cand.error))
    plan = _Plan(grid, m * n, budget, overhead, [h[0].cost for h in hulls])
    errors = [e for _, e in results]
    return assemble(request, plan, results, norm), math.sqrt(sum(e**2 for e in errors)), errors


def _band_budget(request: _Request) -> tuple:
    m, n = request.shape
    budget = math.floor(request.target.value * m * n / 8)
    return budget, _header_bound(request.name, request.shape, request.source, request.tile_shape, request.panel,
                                 "quant", request.encoder_info, budget)


def band_allocate(request: _Request, hulls: list) -> Optional[list]:
    """The fit each band gets (the greedy of band_assemble), or None."""
    if any(h is None for h in hulls):
        return None
    budget, overhead = _band_budget(request)
    level = [0] * len(hulls)
    spare = budget - overhead - sum(h[0].cost for h in hulls)
    if spare < 0:
        return None
    while True:
        best, gain = None, 0.0
        for k, h in enumerate(hulls):
            if level[k] + 1 < len(h):
                now, up = h[level[k]], h[level[k] + 1]
                extra = up.cost - now.cost
                rate = (now.error**2 - up.error**2) / max(extra, 1)
                if extra <= spare and rate > gain:
                    best, gain = k, rate
        if best is None:
            break
        spare -= hulls[best][level[best] + 1].cost - hulls[best][level[best]].cost
        level[best] += 1
    return [h[lv] for h, lv in zip(hulls, level)]


def band_beats_of(request: _Request, hulls: list) -> tuple:
    """band_beats of the allocation of ``hulls`` (() when the bands cannot pay)."""
    chosen = band_allocate(band_request(request), hulls)
    return () if chosen is None else band_beats(request, [c.error for c in chosen])


def _quant_bands(request: _Request, progress) -> Optional[tuple]:
    """(matrix, error, band errors) of quant in row bands with the budget allocated across
    them (:func:`band_hull` per band, then :func:`band_assemble`), or None
    when the budget cannot pay for it."""
    req = band_request(request)
    grid = list(container.tile_grid(req.shape, req.tile_shape))

    def hull(k):
        origin, tshape = grid[k]
        return band_hull(req, k, req.a[tuple(slice(o, o + s) for o, s in zip(origin, tshape))])

    # The bands' fits run in C (the GIL released) on the request's threads;
    # progress is reported from this thread as they finish.
    with concurrent.futures.ThreadPoolExecutor(max_workers=req.threads) as pool:
        futures = [pool.submit(hull, k) for k in range(len(grid))]
        for done, _ in enumerate(concurrent.futures.as_completed(futures)):
            _report(progress, 0.9 * (done + 1) / len(grid), f"quant bands: {done + 1}/{len(grid)}")
        hulls = [f.result() for f in futures]
    return band_assemble(req, hulls, _norm(req.a, req.exponent))


def assemble(request: _Request, plan: _Plan, results: list, norm: float):
    """The matrix of encoded tiles: ``results`` are the (record, error) of
    :func:`_encode_tile` in tile order, ``norm`` the input's :func:`_norm`."""
    from .matrix import Matrix

    tiles = [record for record, _ in results]
    rel = math.sqrt(sum(error**2 for _, error in results)) / norm if norm > 0 else 0.0
    record = container.TensorRecord(request.name, request.shape, request.source, request.tile_shape, request.panel,
                                    tiles, float(np.float32(rel)), request.encoder_info)
    matrix = Matrix(record)
    if request.target.kind == "bits" and matrix.nbytes > plan.budget:  # pragma: no cover - the bounds make this unreachable
        raise ArgumentError(f"internal: encoding took {matrix.nbytes} bytes, over the budget of {plan.budget}")
    return matrix


def _blas_on_one_thread():
    """NumPy's BLAS on one thread, for as long as tile workers run in parallel.

    Every worker already has a core of its own: a BLAS pool per call would
    oversubscribe them, and OpenBLAS's threads spin after each call, taking
    cycles from the C encoders' threads.  Measured on MiniLM-L6 at 4 bits,
    2 cores: auto 6.1 s → 4.6 s, lplr 26.8 s → 23.6 s, signcut unchanged.
    (The limit is process-wide while it holds: other threads calling BLAS
    meanwhile run on one thread too.)  A single tile keeps BLAS's threads,
    which its SVDs use.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _run_tiles(count: int, job, progress, threads: int) -> list:
    """Runs job(k, report, run) for every tile k, in parallel when it pays.

    With one tile, its encoder gets every thread.  With several, a pool of
    ``threads`` workers encodes one tile each (one C thread per encoder,
    never more threads than cores); the calling thread reports progress
    at least every 0.1 s and, on Ctrl-C or an error, tells the workers to
    stop at their next step (every step is short: see ``_TileJob.heavy``)
    and waits for them, so nothing of the encoding keeps running behind
    the caller.  Results come back in tile order: the bytes do not depend
    on the order in which tiles finish.
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

    # The limit is lifted only once every worker has stopped.
    with _blas_on_one_thread():
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
    raw = {
        "c": c32.astype("<f4").tobytes(),
        # bit = 1 means −1 [SC-2]: Tᵀ as w rows of n bits, S as m rows of w bits.
        "tt": _native.pack_interleaved(np.ascontiguousarray(T.T < 0, dtype=np.uint8), 1, panel).tobytes(),
        "s": _native.pack_interleaved(np.ascontiguousarray(S < 0, dtype=np.uint8), 1, panel).tobytes(),
    }
    sections = {kind: make_section(kind, data, _native.crc32c) for kind, data in raw.items()}
    tile = container.TileRecord((0, 0), shape, "signcut", {"width": w}, sections)
    record = container.TensorRecord(_check_name(name), shape, "float32", shape, panel, [tile])
    return Matrix(record)
