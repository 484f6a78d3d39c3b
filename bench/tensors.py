"""Order-d tensors: signcut on the tensor (spec §10.5) against the matrix of the tensor.

    python bench/tensors.py [--bits 1 2 4] [--quick]

For each real tensor and budget, the relative Frobenius error of

- ``tensor``: ``lrq.encode(T, "signcut", bits=b)``, rank-one sign terms
  c_k · s_k⁽⁰⁾ ⊗ … ⊗ s_k⁽ᵈ⁻¹⁾ (32 + Σ n_a bits a term);
- ``matrix/<scheme>``: the tensor reshaped to the matrix of its first mode
  (n_0 × the rest: an image's rows × (columns·channels), a stack's images ×
  pixels, a convolution's output channels × (input channels·kernel)), then
  ``lrq.encode(M, scheme, bits=b)`` for signcut, lplr and auto,

all at ``bits=`` b (bits/entry count everything stored, headers included),
and which wins.  Timings are ratios to a baseline of the same run: the
encode time of each route against the matrix signcut encode, and
``T.contract(x, axis=k)`` (on the factors) against NumPy's
``np.tensordot(dense, x, axes=([k], [0]))`` on the dense tensor held in
memory, and against ``lrq.decode`` followed by that tensordot (what a caller
holding only the compressed tensor would otherwise do), for every mode k.  The machine may be shared with other work: read ratios, not seconds.

Tensors (no network):

- ``rgb``: scikit-learn's ``china.jpg`` as H×W×3 (427×640×3) in [0, 1];
- ``digits``: scikit-learn's bundled handwritten digits, a stack of 1797
  greyscale 8×8 images (values 0–16, scaled to [0, 1]);
- ``conv``: a convolution-shaped 96×3×11×11 filter bank (AlexNet's first
  layer shape): the 96 leading principal components of the 11×11 RGB
  patches of ``flower.jpg``, each scaled by its singular value, which is
  what first-layer filters trained on photographs resemble (oriented edges
  and colour blobs with a decaying spectrum).  No trained convolution
  weights ship with any installed package, so this stands in for them.

``--quick`` halves the photograph, keeps 512 digits and a 48×3×7×7 bank.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrq

MATRIX_SCHEMES = ("signcut", "lplr", "auto")


def _photo(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image(name).astype(np.float32) / 255.0


def rgb(quick: bool) -> np.ndarray:
    photo = _photo("china.jpg")
    return np.ascontiguousarray(photo[::2, ::2] if quick else photo)


def digits(quick: bool) -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    return np.ascontiguousarray(images[:512] if quick else images)


def conv(quick: bool) -> np.ndarray:
    filters, k = (48, 7) if quick else (96, 11)
    photo = _photo("flower.jpg")
    rng = np.random.default_rng(0)
    h, w, _ = photo.shape
    rows = rng.integers(0, h - k, 20000)
    cols = rng.integers(0, w - k, 20000)
    patches = np.stack([photo[r:r + k, c:c + k].transpose(2, 0, 1).ravel() for r, c in zip(rows, cols)])
    patches -= patches.mean(axis=0)
    _, sigma, vt = np.linalg.svd(patches.astype(np.float64), full_matrices=False)
    bank = (sigma[:filters, None] * vt[:filters]) / sigma[0]
    return np.ascontiguousarray(bank.reshape(filters, 3, k, k).astype(np.float32))


def rel_error(a: np.ndarray, approx: np.ndarray) -> float:
    a64 = a.astype(np.float64)
    return float(np.linalg.norm((a64 - approx).ravel()) / np.linalg.norm(a64.ravel()))


def timed(call):
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def best_of(call, repeats: int = 5) -> float:
    return min(timed(call)[1] for _ in range(repeats))


def run(name: str, t: np.ndarray, budgets) -> None:
    shape = "×".join(map(str, t.shape))
    print(f"\n{name}: {shape} float32 ({t.size:,} entries); matrix route {t.shape[0]}×{t.size // t.shape[0]}")
    print(f"{'bits':>5}  {'route':<16} {'bits/entry':>10} {'rel_error':>10} {'encode/matrix-signcut':>22}")
    matrix = t.reshape(t.shape[0], -1)
    for bits in budgets:
        rows = []
        try:
            tensor, seconds = timed(lambda: lrq.encode(t, "signcut", bits=bits))
            rows.append(("tensor", tensor.bits_per_entry, rel_error(t, lrq.decode(tensor)), seconds, f"w={tensor.width}"))
        except lrq.LrqError as exc:
            rows.append(("tensor", None, None, None, type(exc).__name__))
        baseline = None
        for scheme in MATRIX_SCHEMES:
            try:
                m, seconds = timed(lambda: lrq.encode(matrix, scheme, bits=bits))
            except lrq.LrqError as exc:
                rows.append((f"matrix/{scheme}", None, None, None, type(exc).__name__))
                continue
            if scheme == "signcut":
                baseline = seconds
            rows.append((f"matrix/{scheme}", m.bits_per_entry, rel_error(matrix, lrq.decode(m)), seconds, m.scheme))
        for route, bpe, err, seconds, note in rows:
            if err is None:
                print(f"{bits:>5g}  {route:<16} {'—':>10} {'—':>10} {'—':>22}  ({note})")
                continue
            ratio = f"{seconds / baseline:.2f}x" if baseline else "—"
            print(f"{bits:>5g}  {route:<16} {bpe:>10.3f} {err:>10.4f} {ratio:>22}  {note}")
        done = [r for r in rows if r[2] is not None]
        if done:
            win = min(done, key=lambda r: r[2])
            print(f"{'':>5}  winner at {bits:g} bits/entry: {win[0]} (error {win[2]:.4f})")
    tensor = lrq.encode(t, "signcut", bits=budgets[-1])
    dense = lrq.decode(tensor)
    rng = np.random.default_rng(1)
    held, decoded = [], []
    for axis, n in enumerate(t.shape):
        x = rng.standard_normal(n)
        ours = best_of(lambda: tensor.contract(x, axis=axis))
        numpy = best_of(lambda: np.tensordot(dense, x, axes=([axis], [0])))
        both = best_of(lambda: np.tensordot(lrq.decode(tensor), x, axes=([axis], [0])))
        held.append(f"{ours / numpy:.2f}x")
        decoded.append(f"{ours / both:.2f}x")
    print(f"       T.contract(x, axis=k), k = 0..{t.ndim - 1}, on the factors (w={tensor.width}), time over "
          f"np.tensordot on the dense tensor held: {', '.join(held)}; over lrq.decode + np.tensordot: {', '.join(decoded)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--quick", action="store_true", help="smaller tensors")
    args = parser.parse_args()
    print(f"lrq {lrq.__version__} ({lrq.build_info()['isa']}), {lrq.get_num_threads()} threads")
    for name, make in (("rgb photograph (china.jpg)", rgb), ("greyscale stack (digits)", digits),
                       ("convolution bank (PCA of flower.jpg patches)", conv)):
        run(name, make(args.quick), sorted(args.bits))


if __name__ == "__main__":
    main()
