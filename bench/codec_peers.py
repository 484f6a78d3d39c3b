"""The other codecs bench/rate_distortion.py sets beside lrq, each measured here.

- GGUF types through the ``gguf`` package's NumPy code (``gguf.quants``):
  every type it has a quantizer for, each at its exact bits per weight
  (block bytes · 8 / block length, scales included).
- SZ3 (``pysz``) and zfp (``zfpy``) searched to a byte budget: the loosest
  setting whose whole compressed stream (headers included) still fits.

Each function imports its package when called (ImportError when absent);
``installed(package)`` says beforehand, so the bench runs with whatever
subset is present (``pip install '.[bench]'`` has all).
"""

from __future__ import annotations

import importlib.util

import numpy as np

# Bisection steps of the error-bound searches: each halves a log-scale
# interval of 10^10, so 34 steps pin the bound to 0.1 %.
SEARCH_STEPS = 34


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def gguf_types():
    """[(name, qtype, block length, bits per weight)] the ``gguf`` package can quantize, by bits.

    ``gguf.quants.quantize`` raises NotImplementedError for the types whose
    quantizer lives only in llama.cpp's C code (the k- and i-quants); those
    are bench/ggml_peer.py's.
    """
    from gguf import quants
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    probe_rng = np.random.default_rng(0)
    found = []
    for qtype in GGMLQuantizationType:
        if qtype not in GGML_QUANT_SIZES:
            continue
        block, type_bytes = GGML_QUANT_SIZES[qtype]
        probe = probe_rng.standard_normal((1, block)).astype(np.float32)
        try:
            quants.dequantize(quants.quantize(probe, qtype), qtype)
        except NotImplementedError:
            continue
        found.append((qtype.name, qtype, block, 8.0 * type_bytes / block))
    return sorted(found, key=lambda t: (t[3], t[0]))


def gguf_roundtrip(a32: np.ndarray, qtype) -> np.ndarray:
    """``a32`` quantized by the ``gguf`` package along its rows and dequantized."""
    from gguf import quants

    return quants.dequantize(quants.quantize(a32, qtype), qtype).astype(np.float64)


def _loosest_fitting(compress, low: float, high: float, budget_bytes: int):
    """The stream of the smallest bound in [low, high] whose size fits the budget.

    Sizes fall as the bound grows, though not strictly; the search keeps the
    fitting stream with the smallest bound it tried.
    """
    stream = compress(high)
    if len(stream) > budget_bytes:
        return None
    best = (high, stream)
    lo, hi = np.log(low), np.log(high)
    for _ in range(SEARCH_STEPS):
        mid = 0.5 * (lo + hi)
        stream = compress(float(np.exp(mid)))
        if len(stream) <= budget_bytes:
            hi = mid
            best = (float(np.exp(mid)), stream)
        else:
            lo = mid
    return best[1]


def sz3_at_size(a32: np.ndarray, budget_bytes: int):
    """SZ3 (absolute error bound, its default predictor) at the loosest bound fitting ``budget_bytes``.

    Returns (reconstruction, stream bytes), or None when no bound up to the
    data's range fits.
    """
    from pysz import sz, szConfig, szErrorBoundMode

    value_range = float(a32.max() - a32.min()) or 1.0

    def compress(bound: float):
        config = szConfig()
        config.errorBoundMode = szErrorBoundMode.ABS
        config.absErrorBound = bound
        return sz.compress(a32, config)[0]

    stream = _loosest_fitting(compress, value_range * 1e-10, value_range, budget_bytes)
    if stream is None:
        return None
    out, _ = sz.decompress(stream, np.float32, a32.shape)
    return out.astype(np.float64), len(stream)


# zfpy 1.0.1 crashes (SIGSEGV) compressing a 2-D float32 array at a fixed
# rate of 0.5 bit per value (8 bits per 4×4 block); 9/16 works.
ZFP_MIN_RATE = 0.5625


def zfp_rate_at_size(a32: np.ndarray, budget_bytes: int):
    """zfp fixed-rate mode at the highest rate (a multiple of 1/16 bit, its 2-D step) fitting ``budget_bytes``.

    Returns (reconstruction, stream bytes), or None when not even
    ``ZFP_MIN_RATE`` fits.
    """
    import zfpy

    rate = np.floor(8.0 * budget_bytes / a32.size * 16) / 16
    while rate >= ZFP_MIN_RATE:
        stream = zfpy.compress_numpy(a32, rate=float(rate))
        if len(stream) <= budget_bytes:
            return zfpy.decompress_numpy(stream).astype(np.float64), len(stream)
        rate -= 1 / 16
    return None


def zfp_accuracy_at_size(a32: np.ndarray, budget_bytes: int):
    """zfp fixed-accuracy mode at the smallest tolerance fitting ``budget_bytes``; None if none up to max |a| does."""
    import zfpy

    value_range = float(np.abs(a32).max()) or 1.0
    stream = _loosest_fitting(lambda tol: zfpy.compress_numpy(a32, tolerance=tol), value_range * 1e-10,
                              value_range, budget_bytes)
    if stream is None:
        return None
    return zfpy.decompress_numpy(stream).astype(np.float64), len(stream)
