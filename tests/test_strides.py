"""Every operand layout numpy can make gives the right product.

The kernels address their input in whole floats, so an array they cannot
read in place (a field of a packed record array, a byte stride that is not a
multiple of 4, an odd start address, big-endian, float16/float64/integer/
bool, reversed or broadcast views, non-contiguous 2-D operands) must be
copied first.  Each case builds the operand over a raw byte buffer with
hypothesis-chosen dtype, offset and strides, and checks

- bit for bit: the product equals the product with the same values as a
  contiguous native float32 array (the layout changes nothing), and
- the value: within spec [NUM-1] of the float64 product with ``decode(M)``

for signcut (float32 and binary16 coefficients), lplr, a tiled mixed
matrix and dense, in memory and from a file mapped by ``lrq.open``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrq

SETTINGS = settings(derandomize=True, max_examples=80, deadline=None)
DTYPES = ["<f4", ">f4", "<f2", ">f2", "<f8", ">f8", "i1", ">i4", "<u2", "<i8", "?"]
M_ROWS, N_COLS = 70, 90


def _matrices():
    rng = np.random.default_rng(11)
    A = rng.standard_normal((M_ROWS, N_COLS)).astype(np.float32)
    out = {
        "signcut": lrq.encode(A, scheme="signcut", width=40),
        "signcut-c16": lrq.encode(A, scheme="signcut", width=40, c_storage="float16"),
        "lplr": lrq.encode(A, scheme="lplr", bits=6.0),
        "tiled": lrq.encode(A, scheme="auto", bits=6.0, tile_shape=(32, 64)),
        "dense": lrq.encode(A, scheme="dense"),
    }
    assert out["signcut-c16"].tiles[0][3].get("c_scale") is not None
    assert len(out["tiled"].tiles) == 6
    return out


MATRICES = _matrices()


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    path = tmp_path_factory.mktemp("strides") / "m.lrq"
    lrq.save(path, MATRICES)
    with lrq.open(path) as f:
        yield {name: f[name] for name in MATRICES}


def laid_out(values: np.ndarray, dtype: str, offset: int, pads: tuple, reverse: tuple) -> np.ndarray:
    """``values`` (1-D or 2-D) in a fresh byte buffer with the given layout.

    Element strides are ``itemsize + pad`` bytes (the last axis), rows after
    them; ``offset`` shifts the first element off any alignment; ``reverse``
    flips axes (negative strides).
    """
    dt = np.dtype(dtype)
    shape = values.shape
    inner = dt.itemsize + pads[-1]
    strides = [inner]
    if len(shape) == 2:
        strides.insert(0, inner * shape[1] + pads[0])
    nbytes = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + dt.itemsize
    buf = np.zeros(nbytes + 8, np.uint8)
    out = np.ndarray(shape, dtype=dt, buffer=buf, offset=offset, strides=tuple(strides))
    for axis, flip in enumerate(reverse):
        if flip:
            out = np.flip(out, axis)
    out[...] = values.astype(dt)
    return out


LAYOUTS = dict(
    dtype=st.sampled_from(DTYPES),
    offset=st.integers(0, 7),
    pads=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    reverse=st.tuples(st.booleans(), st.booleans()),
    seed=st.integers(0, 2**32 - 1),
)


def small_values(rng, shape, dtype):
    """Small integers: exact in every dtype of the list (0/1 for bool)."""
    if dtype == "?":
        return rng.integers(0, 2, shape).astype(np.float64)
    low = 0 if dtype.startswith("<u") else -3
    return rng.integers(low, 4, shape).astype(np.float64)


def check_product(M, x, values, transpose: bool, precision: str = "float32"):
    D = lrq.decode(M).astype(np.float64)
    op = D.T if transpose else D
    wide = np.dtype(x.dtype).kind == "f" and np.dtype(x.dtype).itemsize > 4
    compute = np.float64 if wide else np.float32
    if transpose:
        got, same = M.T @ x, M.T @ np.ascontiguousarray(values, dtype=compute)
    else:
        got, same = M.matvec(x, precision=precision), M.matvec(np.ascontiguousarray(values, dtype=compute),
                                                             precision=precision)
    assert got.dtype == same.dtype and got.shape == same.shape
    if M.scheme != "dense":  # the kernels: the layout must not change a bit
        assert np.array_equal(got, same), "a strided operand changed the product"
    want = op @ values
    bound = (1e-5 if precision == "float32" else 5e-2) * (np.abs(op) @ np.abs(values)) + 1e-6
    assert (np.abs(got - want) <= bound).all(), np.abs(got - want).max()


@pytest.mark.parametrize("name", list(MATRICES))
@pytest.mark.parametrize("source", ["memory", "file"])
@SETTINGS
@given(**LAYOUTS, transpose=st.booleans(), two_d=st.booleans())
def test_every_layout_gives_the_right_product(mapped, name, source, dtype, offset, pads, reverse, seed,
                                              transpose, two_d):
    M = MATRICES[name] if source == "memory" else mapped[name]
    rng = np.random.default_rng(seed)
    rows = M_ROWS if transpose else N_COLS
    values = small_values(rng, (rows, 3) if two_d else (rows,), dtype)
    x = laid_out(values, dtype, offset, pads if two_d else pads[1:], reverse if two_d else reverse[:1])
    assert np.array_equal(x.astype(np.float64), values)
    check_product(M, x, values, transpose)


@pytest.mark.parametrize("name", ["signcut", "signcut-c16", "lplr", "tiled"])
@pytest.mark.parametrize("precision", ["int8", "int16"])
@SETTINGS
@given(**LAYOUTS)
def test_fast_paths_read_every_layout(name, precision, dtype, offset, pads, reverse, seed):
    M = MATRICES[name]
    values = small_values(np.random.default_rng(seed), (N_COLS,), dtype)
    check_product(M, laid_out(values, dtype, offset, pads[1:], reverse[:1]), values, False, precision)


def test_packed_record_field():
    """The case that gave garbage: rec["x"] of a packed record array (stride 5 bytes)."""
    rec = np.zeros(max(M_ROWS, N_COLS), dtype=[("flag", "u1"), ("x", "<f4")])
    rec["x"] = np.arange(rec.size) % 7 - 3
    x, y = rec["x"][:N_COLS], rec["x"][:M_ROWS]
    assert x.strides == (5,) and not x.flags.aligned
    for M in MATRICES.values():
        D = lrq.decode(M).astype(np.float64)
        for got, want in ((M @ x, D @ x), (M.T @ y, D.T @ y), (y @ M, y @ D),
                          (M.matvec(x, precision="int8"), D @ x)):
            assert np.linalg.norm(got - want) <= 5e-2 * np.linalg.norm(want)
        assert np.array_equal(M @ x, M @ np.ascontiguousarray(x))
        assert np.array_equal(M.T @ y, M.T @ np.ascontiguousarray(y))


def test_broadcast_and_fortran_operands():
    M = MATRICES["signcut"]
    col = np.arange(N_COLS, dtype=np.float32) % 5
    X = np.broadcast_to(col[:, None], (N_COLS, 4))  # a zero stride
    assert X.strides[1] == 0
    assert np.array_equal(M @ X, M @ np.ascontiguousarray(X))
    F = np.asfortranarray(np.tile(col[:, None], (1, 3)))
    assert np.array_equal(M @ F, np.stack([M @ col] * 3, axis=1))
    Y = np.ascontiguousarray(np.tile(np.arange(M_ROWS, dtype=np.float32)[None, :], (3, 1)))
    assert np.array_equal(Y @ M, np.stack([M.T @ Y[0]] * 3))  # Y.T is Fortran-ordered


def test_non_contiguous_stacked_batch():
    """M @ X for a stack, from a non-contiguous (sliced, transposed) array."""
    M = MATRICES["lplr"]
    rng = np.random.default_rng(3)
    big = small_values(rng, (4, 5, N_COLS, 2), "<f4").astype(np.float32)
    X = big[::2, ::2]  # (2, 3, 90, 2): strided, not contiguous
    assert not X.flags.c_contiguous
    got = M @ X
    D = lrq.decode(M).astype(np.float64)
    assert got.shape == np.matmul(D, X).shape
    for index in np.ndindex(*X.shape[:-2]):
        assert np.array_equal(got[index], M @ np.ascontiguousarray(X[index]))
