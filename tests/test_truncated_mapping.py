"""A file mapped by lrq.open and truncated while in use -- by this process or
another -- gives lrq.FormatError on the next product, decode or copy instead
of killing the process with SIGBUS; reopening the damaged file is a clean
error too."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

import lrq
from c_harness import needs_gcc, run_sanitized
from lrq import _native


def _save(path) -> np.ndarray:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((512, 2048)).astype(np.float32)
    lrq.save(path, {"W": lrq.encode(a, "signcut", width=64), "D": lrq.encode(a[:64], "dense")})
    return a


def _survives(script: str) -> str:
    """Run ``script`` in a fresh interpreter; a SIGBUS there fails the test instead of pytest."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr}"
    return out.stdout


def test_truncated_by_this_process_the_product_and_decode_raise(tmp_path):
    path = tmp_path / "m.lrq"
    _save(path)
    out = _survives(f"""
        import os, numpy as np, lrq
        f = lrq.open({str(path)!r})
        W, D = f["W"], f["D"]
        x = np.ones(2048, np.float32)
        W @ x
        os.truncate({str(path)!r}, 4096)
        for call in (lambda: W @ x, lambda: lrq.decode(W), lambda: D @ x, lambda: W.T @ np.ones(512, np.float32),
                     lambda: lrq.dumps(W)):
            try:
                call()
            except lrq.FormatError as exc:
                print("FormatError:", exc)
        try:
            lrq.open({str(path)!r})
        except lrq.LrqError as exc:
            print("reopen:", type(exc).__name__)
    """)
    lines = out.splitlines()
    assert len(lines) == 6, out
    assert all(line.startswith("FormatError: file ") and "was truncated while mapped" in line for line in lines[:5])
    assert lines[5] == "reopen: FormatError"


def test_a_fault_inside_a_call_is_caught_and_the_result_discarded(tmp_path):
    """The size check before the call cannot see a truncation made after it:
    the guard turns the fault into zeros and a damaged mark, checked after."""
    path = tmp_path / "m.lrq"
    _save(path)
    out = _survives(f"""
        import os, numpy as np, lrq
        f = lrq.open({str(path)!r})
        W = f["W"]
        f._mapped_size = 0  # blind the size check: only the guard can tell
        f._check_intact()
        os.truncate({str(path)!r}, 4096)
        try:
            W @ np.ones(2048, np.float32)
        except lrq.FormatError as exc:
            print("FormatError:", exc)
        print("damaged:", f._guard.damaged)
    """)
    assert "was truncated while mapped" in out and "damaged: True" in out, out


def test_truncated_by_another_process_during_products(tmp_path):
    path = tmp_path / "m.lrq"
    a = _save(path)
    out = _survives(f"""
        import subprocess, sys, numpy as np, lrq
        f = lrq.open({str(path)!r})
        W = f["W"]
        x = np.ones(2048, np.float32)
        first = W @ x
        truncate = subprocess.Popen([sys.executable, "-c",
                                     "import os, time; time.sleep(0.2); os.truncate({str(path)!r}, 4096)"])
        products = 0
        try:
            while True:
                assert np.array_equal(W @ x, first)  # every product that returns is whole
                products += 1  # each product reads the factors from the mapping again
        except lrq.FormatError as exc:
            print("FormatError:", exc)
        truncate.wait()
        print("products:", products)
    """)
    assert "was truncated while mapped" in out, out


def test_the_guard_releases_its_slot_with_the_file(tmp_path):
    path = tmp_path / "m.lrq"
    _save(path)
    for _ in range(_native.lib.LRQ_MAPPING_GUARD_MAX + 10):
        with lrq.open(path) as f:
            assert f._guard.guarded


@needs_gcc
def test_the_c_guard_catches_a_fault_on_a_worker_thread_and_chains_others(tmp_path):
    """tests/c/test_mapguard.c under ASan + UBSan: the first fault is on a
    worker of the thread team (which must leave SIGBUS unblocked)."""
    run_sanitized(tmp_path, "test_mapguard")
