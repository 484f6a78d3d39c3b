"""Helpers shared by the test modules: data, tolerances, and file surgery.

The file surgery (``split`` / ``assemble`` / ``edit_preamble``, from
``lrq.reference.surgery``, which the conformance generator uses too) takes a
`.lrq` file apart into its msgpack header and section payloads and puts it
back together with canonical offsets and freshly computed CRCs.  Corruption
tests use it to build files that break exactly one rule *behind* the
checksums (a NaN coefficient, a set padding bit, …), so the decoder has to
catch the rule itself.  It uses the reference CRC, independent of the writer.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np

import lrq
from lrq.reference import surgery
from lrq.reference.surgery import assemble, edit_preamble, section_entries, section_position  # noqa: F401 - re-exported

# Relative tolerance of a product against decode(M) @ x, by result dtype.
PRODUCT_TOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def random_matrix(shape, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Standard normal entries from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rel_error(a, approx) -> float:
    """‖a − approx‖_F / ‖a‖_F in float64."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.linalg.norm(a - np.asarray(approx, dtype=np.float64)) / np.linalg.norm(a))


def assert_product_close(got, dense, x, dtype) -> None:
    """``got`` ≈ ``dense @ x`` to the tolerance of ``dtype``.

    The error is measured against ‖|dense|·|x|‖, the scale of the rounding
    errors of any summation order, so a product that cancels to nearly zero
    does not make the comparison meaningless.
    """
    dense64 = np.asarray(dense, dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    want = dense64 @ x64
    got = np.asarray(got)
    assert got.shape == want.shape
    scale = np.linalg.norm(np.abs(dense64) @ np.abs(x64))
    err = np.linalg.norm(got.astype(np.float64) - want)
    assert err <= PRODUCT_TOL[np.dtype(dtype)] * scale + 1e-30, (err, scale)


# The start of a script that measures, in a fresh interpreter, how much a
# step grows the process's resident memory: the kernel's high-water mark,
# reset to the current size before each step (ru_maxrss would carry the
# parent's peak across exec).  ``growth(step)`` -> (bytes, step's result).
MEMORY_GROWTH_PRELUDE = """
def kib(field):
    status = open("/proc/self/status").read()
    return int(status.split(field + ":")[1].split()[0])

def growth(step):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = kib("VmRSS")
    result = step()
    return (kib("VmHWM") - start) * 1024, result
"""


# ---------------------------------------------------------------- small valid files


@functools.lru_cache(maxsize=None)
def small_files() -> dict:
    """A few small valid files (name -> bytes), every scheme and feature once.

    Cached: the fuzz and corruption tests share them.  Each is a few KB at most.
    """
    a = random_matrix((7, 13), seed=1)
    files = {
        "signcut": lrq.dumps(lrq.encode(a, "signcut", width=3)),
        # bits_l ≤ 4 is stored as bit-planes, bits_r ≥ 5 as byte codes.
        "lplr": lrq.dumps(lrq.encode(a, "lplr", rank=2, bits_l=3, bits_r=6, group=16)),
        "dense": lrq.dumps(lrq.encode(a.astype(np.float16), "dense")),
        "tiled": lrq.dumps(lrq.encode(random_matrix((20, 21), seed=2), "signcut", width=2, tile_shape=(16, 16))),
    }
    files["dense_1d"] = lrq.dumps(lrq.encode(np.linspace(-1, 1, 5, dtype=np.float32), "dense"))
    files["multi"] = to_bytes_via_save(
        {"W": lrq.encode(a, "signcut", width=2), "ids": np.arange(6, dtype=np.int64).reshape(2, 3), "flag": np.array([True, False])},
    )
    return files


def to_bytes_via_save(tensors, **kw) -> bytes:
    """The bytes ``lrq.save`` writes for ``tensors`` (through a temporary folder)."""
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "t.lrq"
        lrq.save(path, tensors, **kw)
        return path.read_bytes()


# ---------------------------------------------------------------- file surgery


def split(data: bytes):
    """(header map, [section payload bytes in file order]) of a valid file."""
    return surgery.header(data), surgery.payloads(data)


def outcome(decoder, data):
    """What ``decoder`` makes of ``data``: "ok" or the LrqError subclass raised.

    Any other exception propagates, and so fails the calling test.
    """
    try:
        decoder(data)
    except lrq.LrqError as exc:
        assert str(exc), "an error without a message"
        return type(exc)
    return "ok"


def load_outcome(data):
    """The outcome of ``lrq.loads``."""
    return outcome(lrq.loads, data)


def reference_outcome(data):
    """The outcome of the pure-NumPy reference decoder."""
    return outcome(lrq.reference.decode, data)


def forced_isas() -> list:
    """The instruction-set paths ``LRQ_FORCE_ISA`` can force on this machine, each
    checked in a fresh interpreter (the path is chosen once per process)."""
    found = []
    for isa in ("scalar", "avx2", "avx512", "neon"):
        env = {**os.environ, "LRQ_FORCE_ISA": isa}
        out = subprocess.run([sys.executable, "-c", "import lrq; print(lrq.build_info()['isa'])"],
                             capture_output=True, text=True, env=env, check=True).stdout.strip()
        if out == isa:
            found.append(isa)
    return found


def digests_across_isas(script: str, thread_counts) -> set:
    """The last words ``script`` prints (a digest) for every forced ISA path
    and thread count, each run in a fresh interpreter; its first word must
    name the path it ran on."""
    isas = forced_isas()
    assert "scalar" in isas
    digests = set()
    for isa in isas:
        for threads in thread_counts:
            env = {**os.environ, "LRQ_FORCE_ISA": isa}
            out = subprocess.run([sys.executable, "-c", script, str(threads)], capture_output=True,
                                 text=True, env=env, check=True).stdout.split()
            assert out[0] == isa
            digests.add(out[1])
    return digests
