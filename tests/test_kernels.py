"""The C product kernels: every ISA path and thread count against the scalar one.

How paths are compared: in one process, ``lrq._native.set_isa`` switches the
path (``lrq_isa_set``); every available path must give the same *bits* as
"scalar" for every product, decode and fast path.  ``test_c_kernels`` also
runs a C program under ASan/UBSan once per path through ``LRQ_FORCE_ISA``,
so the environment variable is covered as well.

Accuracy is checked against float64 products of the factors as the NumPy
reference decoder (``lrq.reference``) reads them: the exact path within
1e-5 of the sum of the terms' magnitudes (spec [NUM-1]), the int16 / int8
paths within the bound documented in ``lrq.h``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lrq
from lrq import _native
from lrq.errors import ArgumentError, FormatError
from lrq.matrix import Matrix
from lrq.reference import container, lplr, quant, signcut

from c_harness import needs_gcc, run_sanitized

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None)
PATHS = ("scalar", "avx2", "avx512", "neon")


def available_paths() -> list:
    """The distinct paths this CPU runs (a path it lacks degrades to a lower one)."""
    found = []
    try:
        for name in PATHS:
            got = _native.set_isa(name)
            if got == name:
                found.append(name)
    finally:
        _native.set_isa(None)
    return found


@contextlib.contextmanager
def isa(name):
    _native.set_isa(name)
    try:
        yield
    finally:
        _native.set_isa(None)


@contextlib.contextmanager
def threads(n):
    old = lrq.get_num_threads()
    lrq.set_num_threads(n)
    try:
        yield
    finally:
        lrq.set_num_threads(old)


# ------------------------------------------------------------------ builders


def signcut_matrix(m, n, w, panel, seed):
    """A random signcut tile; returns (Matrix, S, c, T) with float64 factors."""
    rng = np.random.default_rng(seed)
    S = np.where(rng.integers(0, 2, (m, w)) == 1, -1.0, 1.0)
    T = np.where(rng.integers(0, 2, (n, w)) == 1, -1.0, 1.0)
    c = rng.standard_normal(w).astype(np.float32)
    M = lrq.signcut_from_factors(S, T, c, panel=panel)
    return M, S, c.astype(np.float64), T


def lplr_matrix(m, n, r, bits_l, bits_r, group, panel, seed, *, parts=False):
    """A random lplr tile built through the reference writer; (Matrix, L, R) in float64.

    With ``parts``, also the per-(row, group) weights sigma * scale of L and R.
    """
    rng = np.random.default_rng(seed)
    l_codes = rng.integers(0, 2**bits_l, (m, r)).astype(np.uint8)
    r_codes = rng.integers(0, 2**bits_r, (r, n)).astype(np.uint8)
    l_scales = rng.uniform(0.05, 2.0, (m, -(-r // group))).astype(np.float16)
    r_scales = rng.uniform(0.05, 2.0, (r, -(-n // group))).astype(np.float16)
    left, right = (l_codes, l_scales, 0.75), (r_codes, r_scales, 1.5)
    params, raw = lplr.params_and_sections(r, bits_l, bits_r, group, left, right, panel, pack=_native.pack_interleaved)
    sections = {kind: container.make_section(kind, data, _native.crc32c) for kind, data in raw.items()}
    tile = container.TileRecord((0, 0), (m, n), "lplr", params, sections)
    M = Matrix(container.TensorRecord("lplr", (m, n), "float32", (m, n), panel, [tile]))
    L = quant.dequantize(l_codes, l_scales, params["scale_l"], bits_l, group)
    R = quant.dequantize(r_codes, r_scales, params["scale_r"], bits_r, group)
    if parts:
        return M, L, R, params["scale_l"] * l_scales.astype(np.float64), params["scale_r"] * r_scales.astype(np.float64)
    return M, L, R


def all_results(M, seed):
    """Every product and the decode of M, as a list of float32 arrays."""
    m, n = M.shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    Y = rng.standard_normal((2, m)).astype(np.float32)
    return [
        M @ x,
        M.T @ y,
        y @ M,
        M @ X,
        Y @ M,
        M.matvec(x, precision="int16"),
        M.matvec(x, precision="int8"),
        M.matmat(X, precision="int8"),
        lrq.decode(M),
    ]


def assert_same_bits(a_list, b_list, what):
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, (what, i)
        assert np.array_equal(np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32)), (
            f"{what}: result {i} differs, max |diff| {np.abs(a.astype(np.float64) - b).max()}"
        )


# ------------------------------------------------------------ ISA identity

SHAPES = dict(m=st.integers(1, 70), n=st.integers(1, 70), inner=st.integers(1, 90))


@SETTINGS
@given(**SHAPES, panel=st.sampled_from([64, 128, 4096]), seed=st.integers(0, 2**32 - 1))
@example(m=1, n=1, inner=1, panel=64, seed=0)
@example(m=17, n=200, inner=33, panel=64, seed=1)  # K = 200 over 4 panels of 64; short last tiles
@example(m=33, n=15, inner=200, panel=64, seed=2)
def test_signcut_paths_equal_scalar(m, n, inner, panel, seed):
    M, *_ = signcut_matrix(m, n, inner, panel, seed)
    with isa("scalar"):
        want = all_results(M, seed)
    for name in available_paths()[1:]:
        with isa(name):
            assert_same_bits(want, all_results(M, seed), f"signcut {m}x{n} w={inner} panel={panel} on {name}")


@SETTINGS
@given(
    **SHAPES,
    bits_l=st.integers(1, 8),
    bits_r=st.integers(1, 8),
    group=st.sampled_from([16, 32, 64, 256]),
    panel=st.sampled_from([64, 128, 4096]),
    seed=st.integers(0, 2**32 - 1),
)
@example(m=1, n=1, inner=1, bits_l=1, bits_r=1, group=16, panel=64, seed=0)
@example(m=19, n=200, inner=41, bits_l=3, bits_r=6, group=16, panel=64, seed=1)
@example(m=40, n=130, inner=77, bits_l=8, bits_r=4, group=256, panel=64, seed=2)
def test_lplr_paths_equal_scalar(m, n, inner, bits_l, bits_r, group, panel, seed):
    M, *_ = lplr_matrix(m, n, inner, bits_l, bits_r, group, panel, seed)
    with isa("scalar"):
        want = all_results(M, seed)
    for name in available_paths()[1:]:
        with isa(name):
            assert_same_bits(want, all_results(M, seed), f"lplr {m}x{n} r={inner} b={bits_l}/{bits_r} on {name}")


# Large enough (> 32 KiB of sections) that products really use the threads.
THREADED = [
    ("signcut", (301, 257, 515, 128)),
    ("signcut", (1000, 35, 401, 64)),
    ("lplr", (333, 290, 150, 2, 3, 32, 128)),
    ("lplr", (97, 410, 260, 6, 4, 64, 64)),
]


@pytest.mark.parametrize("scheme, args", THREADED)
def test_thread_counts_give_the_same_bits(scheme, args):
    M = signcut_matrix(*args, seed=5)[0] if scheme == "signcut" else lplr_matrix(*args, seed=5)[0]
    with threads(1):
        want = all_results(M, 9)
    for count in (2, 3, 7):
        with threads(count):
            assert_same_bits(want, all_results(M, 9), f"{scheme} {args} with {count} threads")


@pytest.mark.parametrize("scheme, args", [
    ("signcut", (80, 90, 100, 64)),
    ("signcut", (37, 300, 150, 128)),  # a short last tile, wide tables over many chunks
    ("lplr", (70, 130, 41, 3, 2, 32, 64)),  # sign planes with scales on both sides
    ("lplr", (33, 50, 90, 4, 1, 16, 64)),  # four planes and one, several scale groups per panel
    ("lplr", (50, 60, 33, 8, 4, 16, 64)),  # byte codes first, then planes
])
def test_batch_columns_equal_single_products(scheme, args):
    """The kernels take vectors in batches (4 at a time, and from 16 vectors
    on, wide batches of 16 with one vector per lane, when both factors are
    sign planes): every column of M @ X and of M.T @ Y is bit for bit the
    product with that column alone, whatever batch size (and place in it) it
    fell in, on every path and thread count (up to 40 columns: wide batches
    and a last one padded with zero lanes; below 16, batches of 4)."""
    M = signcut_matrix(*args, seed=3)[0] if scheme == "signcut" else lplr_matrix(*args, seed=3)[0]
    rng = np.random.default_rng(0)
    # dense_fallback=False: the kernels, whatever the cost model would pick.
    for side, product, single, V in (
            ("M @ X", lambda V: M.matmat(V, dense_fallback=False), M.matvec, rng.standard_normal((M.shape[1], 40))),
            ("M.T @ Y", lambda V: M.rmatmat(V, dense_fallback=False), M.rmatvec, rng.standard_normal((M.shape[0], 40)))):
        V = V.astype(np.float32)
        for isa_name in available_paths():
            for count in (1, 2, 3, 5, 8, 9, 16, 17, 40):
                with isa(isa_name), threads(1 + count % 2):
                    Y = product(V[:, :count])
                    for j in range(count):
                        assert np.array_equal(Y[:, j], single(np.ascontiguousarray(V[:, j]))), (side, isa_name, count, j)
            with isa(isa_name):
                Y = product(V)
                assert np.array_equal(product(np.asfortranarray(V)), Y), side
                assert np.array_equal(product(V[:, ::2]), Y[:, ::2]), side  # strided columns, no copy


@SETTINGS
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    inner=st.integers(1, 60),
    scheme=st.sampled_from(["signcut", "lplr-planes", "lplr-bytes"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_decode_is_the_product_with_unit_vectors(m, n, inner, scheme, seed):
    """decode(M)[:, j] is M @ e_j to the bit: decoding shares the products' arithmetic."""
    if scheme == "signcut":
        M = signcut_matrix(m, n, inner, 64, seed)[0]
    else:
        bits = 3 if scheme == "lplr-planes" else 7
        M = lplr_matrix(m, n, inner, bits, bits, 16, 64, seed)[0]
    dense = lrq.decode(M)
    unit = np.eye(n, dtype=np.float32)
    for j in range(n):
        assert np.array_equal(dense[:, j].view(np.uint32), (M @ unit[j]).view(np.uint32)), j


# ---------------------------------------------------------------- accuracy


def check_num1(got, want64, magnitude):
    """[NUM-1] with output float32: |x - x_ref| <= 1e-5 M + u |x_ref| + lambda."""
    bound = 1e-5 * magnitude + 2.0**-24 * np.abs(want64) + 2.0**-149
    assert (np.abs(got.astype(np.float64) - want64) <= bound).all(), np.max(np.abs(got - want64) / magnitude)


@SETTINGS
@given(**SHAPES, panel=st.sampled_from([64, 4096]), seed=st.integers(0, 2**32 - 1))
def test_signcut_exact_path_against_float64(m, n, inner, panel, seed):
    M, S, c, T = signcut_matrix(m, n, inner, panel, seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    A = S @ (c[:, None] * T.T)
    check_num1(M @ x, A @ x, np.abs(S) @ (np.abs(c) * (np.abs(T).T @ np.abs(x))))
    check_num1(M.T @ y, A.T @ y, np.abs(T) @ (np.abs(c) * (np.abs(S).T @ np.abs(y))))
    check_num1(lrq.decode(M), A, np.abs(c).sum())


@SETTINGS
@given(
    **SHAPES,
    bits_l=st.integers(1, 8),
    bits_r=st.integers(1, 8),
    group=st.sampled_from([16, 64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lplr_exact_path_against_float64(m, n, inner, bits_l, bits_r, group, seed):
    M, L, R = lplr_matrix(m, n, inner, bits_l, bits_r, group, 64, seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    check_num1(M @ x, L @ (R @ x), np.abs(L) @ (np.abs(R) @ np.abs(x)))
    check_num1(M.T @ y, R.T @ (L.T @ y), np.abs(R).T @ (np.abs(L).T @ np.abs(y)))
    check_num1(lrq.decode(M), L @ R, np.abs(L) @ np.abs(R))


def test_exact_path_relative_error_on_a_large_product():
    """The issue's yardstick: 1e-5 relative to a float64 product, 2048 x 2048 at w = 8192."""
    M, S, c, T = signcut_matrix(2048, 2048, 8192, 4096, 11)
    x = np.random.default_rng(1).standard_normal(2048).astype(np.float32)
    want = S @ (c * (T.T @ x.astype(np.float64)))
    assert np.linalg.norm(M @ x - want) / np.linalg.norm(want) < 1e-5
    assert np.max(np.abs(M @ x - want)) / np.max(np.abs(want)) < 1e-5


# ------------------------------------------------------------- fast paths


def int_step_error(v, lim):
    """Per 4-group worst error of the int tables of vector v: d_block / 2 (lrq.h)."""
    k16 = -(-v.size // 16)
    padded = np.zeros(16 * k16, dtype=np.float32)
    padded[: v.size] = v
    groups = np.abs(padded.reshape(-1, 4)).sum(axis=1)  # |a|+|b|+|c|+|d| per group
    blocks = np.maximum.reduceat(groups, np.arange(0, groups.size, 64))  # 64 groups = 256 elements
    return np.repeat(blocks / lim / 2, 64)[: groups.size]


@pytest.mark.parametrize("precision, lim, typical", [("int16", 32767, 2e-4), ("int8", 127, 3e-2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_signcut_int_paths_within_documented_bound(precision, lim, typical, seed):
    M, S, c, T = signcut_matrix(300, 700, 900, 128, seed)
    x = np.random.default_rng(seed).standard_normal(700).astype(np.float32)
    u = T.T @ x.astype(np.float64)
    exact = S @ (c * u)
    got = M.matvec(x, precision=precision)
    # u = T^T x: every (row, 4-group) entry is off by at most d/2.
    e1 = int_step_error(x, lim)
    du = np.full(u.shape, e1.sum())
    # y = S (c o u'): the error of u' carried by c, then S's own table error
    # for v' = c o u' (its block steps bounded through |v'| <= |c|(|u| + du)).
    vmax = np.abs(c) * (np.abs(u) + du)
    e2 = int_step_error(vmax.astype(np.float32), lim) * (1 + 1e-6)
    bound = np.abs(c) @ du + e2.sum() + 1e-5 * np.abs(S) @ (np.abs(c) * (np.abs(T).T @ np.abs(x)))
    assert (np.abs(got - exact) <= bound).all()
    assert np.linalg.norm(got - exact) / np.linalg.norm(exact) < typical


@pytest.mark.parametrize("precision, lim", [("int16", 32767), ("int8", 127)])
def test_lplr_int_paths_within_documented_bound(precision, lim):
    bits_l, bits_r, group = 2, 3, 32
    M, L, R, weight_l, weight_r = lplr_matrix(200, 500, 96, bits_l, bits_r, group, 128, 4, parts=True)
    x = np.random.default_rng(4).standard_normal(500).astype(np.float32)

    def table_error(weights, v, bits):
        """sum over 4-groups g of A_{i,g} d/2, A = sigma * scale * (2^b - 1) / 2 (lrq.h)."""
        e = int_step_error(v, lim)
        per_group = np.repeat(weights * (2**bits - 1) / 2, group // 4, axis=1)[:, : e.size]
        return per_group @ e

    u = R @ x
    du = table_error(weight_r, x, bits_r)
    dy = np.abs(L) @ du + table_error(weight_l, (np.abs(u) + du).astype(np.float32), bits_l) * (1 + 1e-6)
    got = M.matvec(x, precision=precision)
    assert (np.abs(got - L @ u) <= dy + 1e-5 * np.abs(L) @ (np.abs(R) @ np.abs(x))).all()


def test_fast_paths_are_opt_in_and_forward_only():
    M, *_ = signcut_matrix(20, 30, 40, 64, 0)
    x = np.ones(30, np.float32)
    assert np.array_equal(M @ x, M.matvec(x))  # the default is the exact path
    with pytest.raises(ArgumentError):
        M.matvec(x, precision="int4")
    with pytest.raises(ArgumentError):
        M._product(np.ones(20, np.float32), transpose=True, precision="int8")


# ------------------------------------------------------- files and scipy


def rss_anon_kib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def test_products_from_an_open_file_equal_in_memory(tmp_path):
    sc = signcut_matrix(700, 650, 3000, 4096, 7)[0]
    lp = lplr_matrix(500, 610, 300, 3, 7, 64, 4096, 8)[0]
    path = tmp_path / "m.lrq"
    lrq.save(path, {"sc": sc, "lp": lp})
    with lrq.open(path) as f:
        for name, M in (("sc", sc), ("lp", lp)):
            assert_same_bits(all_results(M, 3), all_results(f[name], 3), f"{name} from the file")
        # Products read the mapped pages in place: no anonymous memory
        # proportional to the sections (~1 MiB here) is created per product.
        x = np.ones(650, np.float32)
        f["sc"] @ x
        before = rss_anon_kib()
        for _ in range(5):
            f["sc"] @ x
        after = rss_anon_kib()
        if before is not None:
            assert after - before < 256, (before, after)


def test_scipy_linear_operator():
    sparse_linalg = pytest.importorskip("scipy.sparse.linalg", reason="scipy is an optional dependency")
    M, S, c, T = signcut_matrix(60, 45, 70, 64, 2)
    A = lrq.decode(M).astype(np.float64)
    for op in (sparse_linalg.aslinearoperator(M), M.aslinearoperator()):
        assert op.shape == (60, 45) and op.dtype == np.float32
        x, y, X = np.ones(45, np.float32), np.ones(60, np.float32), np.ones((45, 3), np.float32)
        np.testing.assert_allclose(op.matvec(x), A @ x, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(op.rmatvec(y), A.T @ y, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(op.matmat(X), A @ X, rtol=1e-5, atol=1e-4)
    # An iterative solver runs on it (normal equations of a least-squares fit).
    sol = sparse_linalg.lsqr(M.aslinearoperator(), A @ np.ones(45), atol=1e-10, btol=1e-10, iter_lim=200)[0]
    assert np.linalg.norm(A @ sol - A @ np.ones(45)) / np.linalg.norm(A @ np.ones(45)) < 1e-3


def test_import_does_not_import_scipy():
    code = "import sys, lrq; sys.exit('scipy' in sys.modules)"
    assert subprocess.run([os.environ.get("PYTHON", "python3"), "-c", code], env=dict(os.environ)).returncode == 0


def test_invalid_tiles_name_the_rule():
    M, *_ = signcut_matrix(5, 20, 8, 64, 0)
    tile = M._record.tiles[0]
    bad = bytearray(tile.sections["tt"].data)
    bad[16] |= 0x80  # row 0, element 23 (chunk 1 starts at byte 16): padding, K = 20
    tile.sections["tt"] = container.make_section("tt", bytes(bad), _native.crc32c)
    broken = Matrix(M._record)
    with pytest.raises(FormatError, match="LAY-1"):
        broken @ np.ones(20, np.float32)


def test_build_info_names_path_and_threads():
    info = lrq.build_info()
    assert info["isa"] in ("scalar", "sse4.2", "avx2", "avx512", "neon")
    assert info["threads"] == lrq.get_num_threads() >= 1
    with threads(3):
        assert lrq.build_info()["threads"] == 3


# ------------------------------------------------------------ C, sanitized


@needs_gcc
@pytest.mark.parametrize("portable", [False, True], ids=["x86", "portable"])
def test_c_kernels(tmp_path, portable):
    """tests/c/test_kernels.c under ASan/UBSan, per LRQ_FORCE_ISA value; "portable"
    builds without the x86 SIMD files, as on a CPU that is not x86."""
    run_sanitized(tmp_path, "test_kernels", isas=(None,) if portable else (None, *available_paths()),
                  defines=("-DLRQ_NO_X86_SIMD",) if portable else (), env={"LRQ_NUM_THREADS": "3"})
