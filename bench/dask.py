"""lrq on Dask: encoding in one process against a local cluster, and products
on compressed tiles against dask.array on the decoded dense data.

    python bench/dask.py [--sizes 4096,8192,16384] [--tile 4096] [--width 256] [--reps 3] [--quick]

For each size n (``--quick``: 512 and 1024 with 256-tiles), an n x n float32
matrix -- rank 32 plus 10 % Gaussian noise, generated tile by tile from a
seed, so the cluster's workers make their own tiles and no dense matrix
travels -- is encoded as signcut at ``--width`` cuts per tile in tiles of
``--tile``:

  - in-process: ``lrq.encode(A, tile_shape=...)`` (two threads, one tile each);
  - cluster: ``lrq.dask.encode`` on a ``dask.distributed.LocalCluster`` of
    2 worker processes of one thread each, which writes the same bytes
    (checked, "identical" column).

Memory is the growth of the peak resident size during the step (the
kernel's high-water mark, reset before it): of this process for the
in-process encode (the matrix itself is allocated before); of each worker
(the larger of the two) and of this process for the cluster.

Then ``y = A @ x`` (medians of ``--reps`` after a warm-up): NumPy on the
dense matrix in memory (the baseline of every ratio), ``lrq.open(...)[...] @ x``
in-process, ``lrq.dask.from_lrq(...).persist() @ x`` on the cluster, and
``dask.array``'s own ``@`` on the decoded dense blocks persisted on the
cluster, with what each holds in the workers' memory (compressed tiles
against dense blocks).  The machine is shared with other work; read the
ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import timeit

# Run as a script, this file's folder comes first on sys.path, where this
# file would shadow the dask package it measures.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402

import lrq  # noqa: E402
import lrq.dask  # noqa: E402
from lrq._text import print_table  # noqa: E402

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402

RANK = 32


def tile_values(n: int, tile: int, i: int, j: int) -> np.ndarray:
    """Block (i, j) of the bench matrix: U_i V_jᵀ / √RANK plus 10 % noise, seeded per block."""
    rows = slice(i * tile, min((i + 1) * tile, n))
    cols = slice(j * tile, min((j + 1) * tile, n))
    factors = np.random.default_rng(12345).standard_normal((2 * n, RANK)).astype(np.float32)
    u, v = factors[:n][rows], factors[n:][cols]
    noise = np.random.default_rng((n, i, j)).standard_normal((u.shape[0], v.shape[0]), dtype=np.float32)
    return (u @ v.T) / np.float32(np.sqrt(RANK)) + np.float32(0.1) * noise


def _generated_block(block_id=None, n=0, tile=0) -> np.ndarray:
    return tile_values(n, tile, *block_id)


def dask_matrix(n: int, tile: int) -> "da.Array":
    chunks = tuple(tuple(min(tile, n - o) for o in range(0, n, tile)) for _ in range(2))
    return da.map_blocks(_generated_block, n=n, tile=tile, chunks=chunks, dtype=np.float32)


def numpy_matrix(n: int, tile: int) -> np.ndarray:
    out = np.empty((n, n), np.float32)
    for i in range(-(-n // tile)):
        for j in range(-(-n // tile)):
            out[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile] = tile_values(n, tile, i, j)
    return out


def _kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return int(fh.read().split(field + ":")[1].split()[0])


def reset_peak() -> int:
    """Resets the kernel's high-water mark of resident memory; returns the current size in bytes."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _kib("VmRSS") * 1024


def peak_growth(start: int) -> int:
    return _kib("VmHWM") * 1024 - start


def resident() -> int:
    return _kib("VmRSS") * 1024


def median_time(step, reps: int) -> float:
    """Median seconds of ``reps`` calls of ``step`` after a warm-up call."""
    step()
    return statistics.median(timeit.repeat(step, number=1, repeat=reps))


def mib(nbytes: float) -> str:
    value = nbytes / 2**20
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def run_size(n: int, tile: int, width: int, reps: int, client, folder: str) -> tuple:
    here_path, there_path = os.path.join(folder, f"here{n}.lrq"), os.path.join(folder, f"there{n}.lrq")
    a = numpy_matrix(n, tile)
    start = reset_peak()
    begin = time.perf_counter()
    m = lrq.encode(a, "signcut", width=width, tile_shape=(tile, tile), name="A")
    encode_here = time.perf_counter() - begin
    memory_here = peak_growth(start)
    lrq.save(here_path, {"A": m})

    starts = client.run(reset_peak)
    start = reset_peak()
    begin = time.perf_counter()
    lrq.dask.encode(dask_matrix(n, tile), there_path, "signcut", width=width, tile_shape=(tile, tile), name="A",
                    client=client)
    encode_there = time.perf_counter() - begin
    memory_client = peak_growth(start)
    memory_workers = max(client.run(lambda dask_worker: peak_growth(starts[dask_worker.address])).values())
    with open(here_path, "rb") as f1, open(there_path, "rb") as f2:
        identical = f1.read() == f2.read()
    encode_row = [f"{n}×{n}", mib(a.nbytes), mib(os.path.getsize(here_path)), f"{m.rel_error:.3f}",
                  f"{encode_here:.1f}", mib(memory_here), f"{encode_there:.1f}", f"{encode_there / encode_here:.2f}",
                  mib(memory_workers), mib(memory_client), "yes" if identical else "NO"]

    x = np.random.default_rng(7).standard_normal(n).astype(np.float32)
    numpy_time = median_time(lambda: a @ x, reps)
    with lrq.open(here_path) as f:
        mapped = f["A"]
        lrq_time = median_time(lambda: mapped @ x, reps)
        want = mapped @ x
    before = client.run(resident)
    compressed = lrq.dask.from_lrq(there_path).persist()
    distributed.wait(compressed.tiles)
    held_compressed = sum(client.run(resident).values()) - sum(before.values())
    cluster_time = median_time(lambda: (compressed @ x).compute(), reps)
    same = np.array_equal((compressed @ x).compute(), (lrq.dask.from_lrq(there_path) @ x).compute(scheduler="threads"))
    before = client.run(resident)
    dense = compressed.decode().persist()
    distributed.wait(dense)
    held_dense = sum(client.run(resident).values()) - sum(before.values())
    dense_time = median_time(lambda: (dense @ x).compute(), reps)
    error = np.linalg.norm((compressed @ x).compute() - want) / np.linalg.norm(want)
    del dense, compressed
    product_row = [f"{n}×{n}", f"{numpy_time * 1e3:.3g}", f"{lrq_time * 1e3:.3g}", f"{lrq_time / numpy_time:.3g}",
                   f"{cluster_time * 1e3:.3g}", f"{cluster_time / numpy_time:.3g}", f"{dense_time * 1e3:.3g}",
                   f"{dense_time / numpy_time:.3g}", mib(max(held_compressed, 0)), mib(max(held_dense, 0)),
                   "yes" if same else "NO", f"{error:.1e}"]
    return encode_row, product_row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="4096,8192,16384")
    parser.add_argument("--tile", type=int, default=4096)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="sizes 512 and 1024 in tiles of 256, one rep")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.tile, args.reps, args.width = "512,1024", 256, 1, 32
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"host: {platform.machine()}, {os.cpu_count()} cores (shared), lrq {lrq.__version__}, "
          f"isa {lrq.build_info()['isa']}, dask {dask.__version__}, "
          f"distributed {distributed.__version__}")
    print(f"matrix: rank {RANK} + 10 % noise, float32; signcut width {args.width} per {args.tile}×{args.tile} tile; "
          "cluster: LocalCluster of 2 worker processes × 1 thread")
    encode_rows = [["size", "dense MiB", "file MiB", "rel_err", "in-proc s", "peak MiB", "cluster s", "ratio",
                    "worker MiB", "client MiB", "identical"]]
    product_rows = [["size", "numpy ms", "lrq ms", "ratio", "cluster lrq ms", "ratio", "cluster dense ms", "ratio",
                     "held lrq MiB", "held dense MiB", "same bits", "rel diff"]]
    with tempfile.TemporaryDirectory() as folder, \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     memory_limit=0) as cluster, \
            distributed.Client(cluster) as client:
        for n in sizes:
            encode_row, product_row = run_size(n, min(args.tile, n), args.width, args.reps, client, folder)
            encode_rows.append(encode_row)
            product_rows.append(product_row)
            # Each size's figures as soon as they are measured (a long run may be cut short).
            print(f"  {n}×{n}: " + ", ".join(f"{k} {v}" for k, v in zip(encode_rows[0][1:], encode_row[1:])) + "; "
                  + ", ".join(f"{k} {v}" for k, v in zip(product_rows[0][1:], product_row[1:])), file=sys.stderr,
                  flush=True)
    print("\nencoding (in-process lrq.encode against lrq.dask.encode on the cluster; ratio = cluster / in-process)")
    print_table(encode_rows)
    print("\nproducts y = A @ x (ratios to numpy on the dense matrix in memory; held = what the workers keep)")
    print_table(product_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
