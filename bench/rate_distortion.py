"""Relative error and encode time of every scheme at several budgets.

    python bench/rate_distortion.py [--bits 1 2 4] [--quick]

Matrices: the 1000×1000 modified Shepp–Logan phantom (the LPLR paper's
image), a 512×512 N(0,1) matrix (the signed-cut paper's test case), and,
when ``lrq[demo]`` is installed, an all-MiniLM-L6-v2 weight matrix.  The
baseline for encode time is the NumPy reference encoder itself (the only
encoder so far); bits/entry counts everything stored, headers included.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrq
from lrq import datasets

CONFIGS = (
    ("signcut", {}),
    ("lplr", {"variant": "sketch"}),
    ("lplr-svd", {"variant": "svd"}),
    ("dense", {}),
    ("auto", {}),
)


def matrices(quick: bool):
    yield ("shepp-logan 1000²" if not quick else "shepp-logan 256²"), datasets.shepp_logan(256 if quick else 1000)
    yield "gaussian 512²", datasets.gaussian(512, 512, seed=0)
    weights = datasets.minilm_weights()
    if weights is not None:
        name = "encoder.layer.0.intermediate.dense.weight"
        yield f"minilm {name}", weights[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"lrq {lrq.__version__} ({lrq.build_info()['isa']}); error = ‖A − Â‖_F / ‖A‖_F\n")
    header = f"{'matrix':<48} {'scheme':<14} " + " ".join(f"{f'{b:g} bit err':>11} {'time s':>7}" for b in args.bits)
    print(header)
    print("-" * len(header))
    for label, a in matrices(args.quick):
        for shown, (scheme, options) in zip([c[0] for c in CONFIGS], [(c[0].split("-")[0], c[1]) for c in CONFIGS]):
            cells = []
            for bits in args.bits:
                start = time.perf_counter()
                try:
                    m = lrq.encode(a, scheme, bits=bits, **options)
                except lrq.BudgetError:
                    cells.append(f"{'-':>11} {'-':>7}")
                    continue
                elapsed = time.perf_counter() - start
                tag = f"{m.rel_error:.4f}" + ("" if scheme != "auto" else f" {m.scheme[:2]}")
                cells.append(f"{tag:>11} {elapsed:7.2f}")
            print(f"{label + ' ' + '×'.join(map(str, a.shape)):<48} {shown:<14} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
