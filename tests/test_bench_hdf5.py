"""bench/hdf5.py --quick runs and prints every row its docstring promises:
per chunk shape dense, gzip, and lrq / zfp / SZ3 at each budget with the
baselines' sizes not above lrq's; then one product row per chunk shape and
budget.  (Figures are printed, never asserted: bench/README.md.)"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("h5py")
pytest.importorskip("hdf5plugin", reason="bench/hdf5.py compares with hdf5plugin's zfp and SZ3 (in the test extra)")

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("matrix", ["generated", None])
def test_the_hdf5_bench_prints_its_tables(matrix):
    command = [sys.executable, str(ROOT / "bench" / "hdf5.py"), "--quick"] + (["--matrix", matrix] if matrix else [])
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    sections = out.stdout.split("\nproducts")[0].split("\nchunks ")[1:]
    assert [s.split("\n", 1)[0] for s in sections] == ["128×128", "256×256"]
    for section in sections:
        rows = [line.split() for line in section.split("\n\n")[0].splitlines()[2:]]
        codecs = [row[0] for row in rows]
        assert codecs == ["dense", "gzip"] + ["lrq", "zfp", "sz3"] * 3, section
        sizes = {}
        for row in rows:
            sizes.setdefault(row[0], []).append(int(row[-6].replace(",", "")))  # the file bytes column
        for k in range(3):  # the equal-size search never exceeds lrq's size
            assert sizes["zfp"][k] <= sizes["lrq"][k] * 1.01 and sizes["sz3"][k] <= sizes["lrq"][k] * 1.01
    products = out.stdout.split("NumPy A @ x alone")[1].splitlines()[2:]
    assert [line.split()[:2] for line in products] == [[c, b] for c in ("128×128", "256×256") for b in ("1", "2", "4")]
