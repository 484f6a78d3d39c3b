"""bench/dask.py --quick runs and prints its two tables, one row per size,
with the cluster's bytes and products equal to the in-process ones.
(Figures are printed, never asserted: bench/README.md.)"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("distributed", reason="bench/dask.py needs dask.distributed (in the test extra)")

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_dask_bench_prints_its_tables():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "dask.py"), "--quick"], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    encoding, products = out.stdout.split("\nencoding ")[1].split("\nproducts ")
    encode_rows = [line.split() for line in encoding.splitlines()[2:] if line.strip()]
    product_rows = [line.split() for line in products.splitlines()[2:] if line.strip()]
    assert [row[0] for row in encode_rows] == [row[0] for row in product_rows] == ["512×512", "1024×1024"]
    assert all(row[-1] == "yes" for row in encode_rows)  # the cluster wrote lrq.encode's bytes
    assert all(row[-2] == "yes" for row in product_rows)  # the cluster's products are the threaded scheduler's
