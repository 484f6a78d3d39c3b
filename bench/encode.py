"""Signcut encode cost per cut, in units of one dense float32 matvec.

    python bench/encode.py [--sizes 1024 2048 4096] [--bits 2] [--threads 1 2]

For each n×n N(0,1) float32 matrix, the C encoder makes every cut that a
``bits``/entry budget allows (the width lrq.encode would choose), and the
cost of one cut is divided by the time of one dense ``A @ x`` of the same
matrix with NumPy, measured in the same run.  The encode runs in steps of
256 cuts; around every step the matvec is timed with NumPy's BLAS
threads as they are and (when threadpoolctl is installed, as it is with
scikit-learn) limited to one, and the fastest of those samples is the
step's baseline.  Two ratios are printed: the median over steps of (step
time per cut / its own baseline), which cancels the load of a shared machine
because both sides see the same moment, and the whole encode's time per cut
over the fastest matvec of the run (the most pessimistic reading).

``--threads`` lists the encoder thread counts to time (the ``threads``
argument of the C encoder: its run() works on the library's shared thread
team, the one products use, with that many threads).  The cuts, and so the
work, are identical for every count.  On a shared machine the encoder runs
alone for a while whenever its worker cannot get a CPU, so a loaded machine
shows up as a 2-thread time close to the 1-thread one.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import lrq
from lrq import _native
from lrq.encoder import _largest_fitting, _tile_cost
from lrq.reference import signcut


def _timed(a, x, repeats) -> list:
    a @ x
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ x
        out.append(time.perf_counter() - start)
    return out


def matvec_times(a: np.ndarray, repeats: int = 10) -> list:
    """Times of ``a @ x`` with the BLAS's own threads and with one thread."""
    x = np.ones(a.shape[1], dtype=np.float32)
    out = _timed(a, x, repeats)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return out
    with threadpool_limits(1):
        out += _timed(a, x, repeats)
    return out


STEP = 256  # cuts between baseline samples: few enough interruptions to keep the caches warm


def width_for(n: int, bits: float) -> int:
    allowance = bits * n * n / 8
    return _largest_fitting(1, 32 * n, lambda w: _tile_cost("signcut", (n, n), {"width": w}) <= allowance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--bits", type=float, default=2.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--reference-cuts", type=int, default=32, help="cuts timed for the NumPy reference (0: skip)")
    args = parser.parse_args()
    print(f"lrq {lrq.__version__}, isa {lrq.build_info()['isa']}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    print(f"signcut at {args.bits:g} bits/entry; cost per cut in dense float32 A @ x of the same matrix, same run")
    print(f"  paired: median over {STEP}-cut steps of step cost / the matvec timed around it;"
          " worst: total cost / fastest matvec of the run\n")
    header = f"{'n':>6} {'width':>6} {'matvec ms':>10} " + "".join(
        f"{f'C {t}t ms/cut':>14} {'paired':>7} {'worst':>6} " for t in args.threads
    ) + (f"{'numpy ref ms/cut':>17} {'worst':>7}" if args.reference_cuts else "")
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        width = width_for(n, args.bits)
        everything = matvec_times(a, 20)
        row_cells = []
        for threads in args.threads:
            enc = _native.SignCutEncoder(a, seed=0, threads=threads)
            spent, ratios = 0.0, []
            before = min(matvec_times(a, 3))
            while enc.width < width:
                step = min(STEP, width - enc.width)
                start = time.perf_counter()
                enc.run(step)
                took = time.perf_counter() - start
                after = matvec_times(a, 3)
                everything += after
                spent += took
                ratios.append(took / step / min(before, min(after)))
                before = min(after)
            row_cells.append((spent / width, float(np.median(ratios))))
        base = min(everything)
        row = f"{n:>6} {width:>6} {1e3 * base:>10.3f} " + "".join(
            f"{1e3 * per_cut:>14.3f} {paired:>7.2f} {per_cut / base:>6.2f} " for per_cut, paired in row_cells
        )
        if args.reference_cuts:
            start = time.perf_counter()
            signcut.encode(a, width=args.reference_cuts, seed=0)
            ref = (time.perf_counter() - start) / args.reference_cuts
            row += f"{1e3 * ref:>17.2f} {ref / base:>7.1f}"
        print(row, flush=True)
    print("\n(the NumPy reference is timed on its first cuts only)")


if __name__ == "__main__":
    main()
