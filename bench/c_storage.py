"""Signcut weights c as float32 (format 1.0) against float16 + scale (1.1).

    python bench/c_storage.py [--quick]

For each matrix: relative error ‖A − Â‖_F / ‖A‖_F and file size with
``c_storage="float32"`` (the baseline) and ``"float16"``, first at the same
width (same cuts budget: f16 only saves 2 bytes per cut), then at the same
bits/entry budget (f16 spends the saved bytes on more cuts).  The error is the
true error of the decoded file; it is checked against the one the encoder
reports.  Matrices: 512×512 N(0,1) (w = 1024, 2048, 3072; bits 4, 8, 12),
a 2048×2048 N(0,1) at 2 bits/entry, and all-MiniLM-L6-v2's first feed-forward
weight (1536×384) at 2 bits/entry when ``lrq[demo]`` is installed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrq
from lrq import datasets


def measure(a: np.ndarray, **kwargs) -> dict:
    out = {}
    for storage in ("float32", "float16"):
        t0 = time.perf_counter()
        m = lrq.encode(a, "signcut", c_storage=storage, **kwargs)
        seconds = time.perf_counter() - t0
        decoded = lrq.decode(lrq.loads(lrq.dumps(m))).astype(np.float64)
        err = float(np.linalg.norm(a - decoded) / np.linalg.norm(a))
        assert abs(err - m.rel_error) <= 1e-5 * max(err, 1e-30) + 1e-7, (err, m.rel_error)
        out[storage] = (m.params["width"] if len(m.tiles) == 1 else sum(t[3]["width"] for t in m.tiles), err, m.nbytes, seconds)
    return out


def show(label: str, res: dict) -> None:
    (w32, e32, n32, t32), (w16, e16, n16, t16) = res["float32"], res["float16"]
    print(f"{label:<34} f32: w={w32:<5} err={e32:.5f} {n32:>9,} B | f16: w={w16:<5} err={e16:.5f} {n16:>9,} B"
          f" | size f16/f32 {n16 / n32:.4f}, err f16/f32 {e16 / e32:.4f} | time {t32:.1f}/{t16:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the 512x512 matrix")
    args = parser.parse_args()
    a = datasets.gaussian(512, 512, seed=0)
    for w in (1024, 2048, 3072):
        show(f"512x512 N(0,1) width={w}", measure(a, width=w))
    for bits in (4.0, 8.0, 12.0):
        show(f"512x512 N(0,1) bits={bits:g}", measure(a, bits=bits))
    if args.quick:
        return
    big = datasets.gaussian(2048, 2048, seed=0)
    show("2048x2048 N(0,1) bits=2", measure(big, bits=2.0))
    weights = datasets.minilm_weights()
    if weights:
        name = next(k for k in weights if "intermediate.dense.weight" in k)
        show(f"MiniLM {name.split('.')[2]} FF1 bits=2", measure(np.asarray(weights[name], dtype=np.float32), bits=2.0))


if __name__ == "__main__":
    main()
