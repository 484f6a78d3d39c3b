"""lrq.Matrix as a Python object: pickling, the transpose, params, stacked batches,
and the shape-only choice between the kernels and a dense product."""

from __future__ import annotations

import copy
import multiprocessing
import operator
import pickle

import numpy as np
import pytest

import lrq
from lrq import matrix as matrix_module
from lrq.errors import ArgumentError
from lrq.reference.container import TileRecord
from lrq.matrix import Transposed

RNG = np.random.default_rng(5)
A = RNG.standard_normal((60, 50)).astype(np.float32)


@pytest.fixture(scope="module")
def matrices(tmp_path_factory):
    made = {
        "signcut": lrq.encode(A, scheme="signcut", width=30),
        "lplr": lrq.encode(A, scheme="lplr", bits=6.0),
        "tiled": lrq.encode(A, scheme="signcut", bits=6.0, tile_shape=(32, 32)),
        "dense": lrq.encode(A, scheme="dense"),
    }
    path = tmp_path_factory.mktemp("objects") / "m.lrq"
    lrq.save(path, made)
    f = lrq.open(path)
    both = dict(made)
    both.update({f"mapped-{name}": f[name] for name in made})
    yield both
    f.close()


ALL = ["signcut", "lplr", "tiled", "dense", "mapped-signcut", "mapped-lplr", "mapped-tiled", "mapped-dense"]


@pytest.mark.parametrize("name", ALL)
def test_pickle_and_deepcopy_keep_the_matrix(matrices, name):
    M = matrices[name]
    x = np.linspace(-1, 1, 50).astype(np.float32)
    for copied in (pickle.loads(pickle.dumps(M)), copy.deepcopy(M), copy.copy(M),
                   pickle.loads(pickle.dumps(M, protocol=2))):
        assert isinstance(copied, lrq.Matrix) and copied is not M
        assert copied.shape == M.shape and copied.name == M.name and copied.tiles == M.tiles
        assert lrq.dumps(copied) == lrq.dumps(M)  # the same .lrq bytes
        assert np.array_equal(copied @ x, M @ x)
    T = pickle.loads(pickle.dumps(M.T))
    assert isinstance(T, Transposed) and np.array_equal(T @ np.ones(60, np.float32), M.T @ np.ones(60, np.float32))


def test_a_mapped_matrix_pickles_as_bytes_not_as_its_path(matrices, tmp_path):
    """Documented choice: the pickle stands alone; the file may be gone."""
    M = lrq.encode(A, scheme="signcut", width=20)
    path = tmp_path / "gone.lrq"
    lrq.save(path, {"W": M})
    with lrq.open(path) as f:
        data = pickle.dumps(f["W"])
    path.unlink()
    back = pickle.loads(data)
    assert back.name == "W" and np.array_equal(lrq.decode(back), lrq.decode(M))
    assert str(path).encode() not in data


def test_a_damaged_mapped_section_does_not_pickle(tmp_path):
    M = lrq.encode(A, scheme="signcut", width=20)
    path = tmp_path / "bad.lrq"
    lrq.save(path, {"W": M})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last section (S signs, or padding)
    path.write_bytes(bytes(data))
    with lrq.open(path) as f:
        with pytest.raises(lrq.LrqError):
            pickle.dumps(f["W"])


def test_spawned_process_pool(matrices):
    """multiprocessing with the spawn start method pickles the matrices it sends."""
    x = np.arange(50, dtype=np.float32) / 50
    jobs = [(matrices[name], x) for name in ("signcut", "mapped-lplr", "mapped-tiled")]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(operator.matmul, jobs)
    for (M, _), got in zip(jobs, results):
        assert np.array_equal(got, M @ x)


@pytest.mark.parametrize("name", ["signcut", "tiled", "mapped-lplr", "dense"])
def test_transpose_has_the_matrix_interface(matrices, name):
    M = matrices[name]
    T = M.T
    D = lrq.decode(M)
    assert T.shape == (50, 60) and T.ndim == 2 and T.size == 3000 and T.dtype == M.dtype and T.scheme == M.scheme
    assert T.T is M
    assert "transpose" in repr(T) and repr(M) in repr(T)
    assert np.array_equal(lrq.decode(T), D.T) and np.array_equal(np.asarray(T), D.T)
    y, x = np.ones(60, np.float32), np.ones(50, np.float32)
    assert np.array_equal(T @ y, M.rmatvec(y)) and np.array_equal(T.matvec(y), M.rmatvec(y))
    assert np.array_equal(x @ T, M @ x) and np.array_equal(T.rmatvec(x), M @ x)
    Y = np.ones((60, 3), np.float32)
    assert np.array_equal(T @ Y, M.T @ Y) and np.array_equal(T.matmat(Y), M.rmatmat(Y))
    Z = np.ones((3, 50), np.float32)
    assert np.array_equal(Z @ T, (M @ Z.T).T)
    np.testing.assert_allclose(T @ y, D.T.astype(np.float64) @ y, rtol=1e-4, atol=1e-4)


def test_transpose_as_a_linear_operator(matrices):
    pytest.importorskip("scipy.sparse.linalg", reason="scipy is an optional dependency")
    M = matrices["signcut"]
    op = M.T.aslinearoperator()
    assert op.shape == (50, 60)
    y = np.ones(60, np.float32)
    assert np.array_equal(op.matvec(y), M.T @ y) and np.array_equal(op.rmatvec(np.ones(50, np.float32)),
                                                                     M @ np.ones(50, np.float32))


def test_params_of_a_tiled_matrix(matrices):
    M = matrices["tiled"]
    per_tile = [t[3] for t in M.tiles]
    assert len(per_tile) == 4
    params = M.params
    assert set(params) == {k for p in per_tile for k in p}
    for key, value in params.items():
        values = tuple(p.get(key) for p in per_tile)
        assert value == (values[0] if len(set(values)) == 1 else values)
    assert matrices["signcut"].params == {"width": 30}


@pytest.mark.parametrize("name", ["signcut", "tiled", "dense", "mapped-lplr"])
def test_stacked_batches_like_numpy_matmul(matrices, name):
    M = matrices[name]
    D = lrq.decode(M).astype(np.float64)
    X = RNG.standard_normal((2, 3, 50, 4)).astype(np.float32)
    got = M @ X
    assert got.shape == (2, 3, 60, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.matmul(D, X), rtol=1e-4, atol=1e-4)
    if M.scheme != "dense":  # the kernels: each matrix of the stack to the bit (dense is numpy's)
        for index in np.ndindex(2, 3):
            assert np.array_equal(got[index], M @ X[index])
    Y = RNG.standard_normal((2, 5, 60)).astype(np.float32)
    assert (Y @ M).shape == (2, 5, 50) and (M.T @ Y.swapaxes(-1, -2)).shape == (2, 50, 5)
    if M.scheme != "dense":
        for i in range(2):
            assert np.array_equal((Y @ M)[i], Y[i] @ M)
    np.testing.assert_allclose(Y @ M, np.matmul(Y, D), rtol=1e-4, atol=1e-4)


def test_a_wrong_stacked_batch_is_named(matrices):
    M = matrices["signcut"]
    with pytest.raises(ArgumentError, match=r"stacked batch has shape \(2, 384, 4\).*shape\[-2\] must be 50"):
        M @ np.zeros((2, 384, 4))
    with pytest.raises(ArgumentError, match=r"stacked batch has shape \(2, 4, 7\); x @ M needs 60 columns"):
        np.zeros((2, 4, 7)) @ M
    with pytest.raises(ArgumentError, match="the vector has 7 elements; it needs 50"):
        M @ np.zeros(7)
    with pytest.raises(ArgumentError, match="scalar"):
        M @ np.float32(1)
    with pytest.raises(ArgumentError, match="real numbers"):
        M @ np.zeros(50, complex)


# ------------------------------------------------------- dense fallback


def test_cost_model_depends_on_shapes_only():
    """The choice flips from kernels to dense as the batch widens, by the model alone."""
    tile = lrq.encode(A, scheme="signcut", width=30)._record.tiles[0]
    assert not matrix_module.dense_is_cheaper(tile, 1, False)
    choices = [matrix_module.dense_is_cheaper(tile, k, False) for k in (1, 8, 64, 4096, 10**6)]
    assert choices == sorted(choices)  # monotone in the batch width
    (m, n), w = (30522, 384), 1516  # MiniLM's embedding table at ~4 bits/entry
    big = type(tile)((0, 0), (m, n), "signcut", {"width": w}, {})
    assert not matrix_module.dense_is_cheaper(big, 8, False)
    # At ~8 bits/entry the kernels do twice the sign work, and wide batches decode.
    wider = type(tile)((0, 0), (m, n), "signcut", {"width": 2 * w}, {})
    assert matrix_module.dense_is_cheaper(wider, 4096, False) and matrix_module.dense_is_cheaper(wider, 4096, True)


def test_dense_fallback_is_right_and_can_be_refused():
    M = lrq.encode(A, scheme="signcut", width=400)  # w >> n: decoding pays for wide batches
    tile = M._record.tiles[0]
    k = next(k for k in (16, 64, 256, 1024, 4096) if matrix_module.dense_is_cheaper(tile, k, False))
    X = RNG.standard_normal((50, k)).astype(np.float32)
    D = lrq.decode(M)
    got = M @ X
    assert np.array_equal(got, D @ X)  # the decoded tile times X, by numpy
    kernels = M.matmat(X, dense_fallback=False)
    for j in (0, k - 1):
        assert np.array_equal(kernels[:, j], M @ np.ascontiguousarray(X[:, j]))
    bound = 1e-5 * (np.abs(D.astype(np.float64)) @ np.abs(X)) + 1e-6
    assert (np.abs(got - kernels) <= 2 * bound).all()
    # Single vectors and the int8 / int16 paths never take the fallback.
    assert np.array_equal(M.matmat(X, precision="int8")[:, :2], M.matmat(X[:, :2], precision="int8"))


def test_cost_model_sends_wide_batches_of_quant_tiles_to_the_decode():
    """A quant tile's kernels cost its code bits per entry per vector; its
    decode reads the codes, so wide batches decode (sooner at more bits)."""
    (m, n) = (512, 384)  # a tile of MiniLM's embedding table
    quant = lambda bits: TileRecord((0, 0), (m, n), "quant", {"bits": bits, "group": 32}, {})  # noqa: E731
    # One sign plane costs less than a dense multiply-add: never decoded.
    assert not any(matrix_module.dense_is_cheaper(quant(1), k, t) for k in (2, 64, 4096, 10**6) for t in (False, True))
    for bits in (2, 4, 8):
        choices = [matrix_module.dense_is_cheaper(quant(bits), k, False) for k in (1, 2, 8, 64, 512, 4096)]
        assert choices == sorted(choices) and not choices[0] and choices[-1], (bits, choices)
        # Both directions read the one factor row by row: the same choice.
        assert choices == [matrix_module.dense_is_cheaper(quant(bits), k, True) for k in (1, 2, 8, 64, 512, 4096)]
    first_dense = {bits: next(k for k in range(2, 4097) if matrix_module.dense_is_cheaper(quant(bits), k, False))
                   for bits in (2, 4, 8)}
    assert first_dense[2] > first_dense[4] > first_dense[8], first_dense


@pytest.mark.parametrize("transpose", [False, True])
def test_dense_fallback_over_a_grid_of_mixed_tiles(monkeypatch, transpose):
    """Tiles decoded into shared blocks (rows and columns of the grid, cut by
    the block limit and by tiles that stay on the kernels) give the decoded
    matrix's product, whatever the grouping."""
    rng = np.random.default_rng(7)
    B = rng.standard_normal((70, 90)).astype(np.float32)
    M = lrq.encode(B, scheme="auto", bits=8.0, tile_shape=(20, 30))
    assert len(M._record.tiles) == 12 and {t.scheme for t in M._record.tiles} == {"quant", "signcut"}
    D = lrq.decode(M).astype(np.float64)
    X = rng.standard_normal((70 if transpose else 90, 9)).astype(np.float32)
    want = (D.T if transpose else D) @ X
    scale = (np.abs(D.T if transpose else D) @ np.abs(X)) * 1e-5 + 1e-6
    product = M.rmatmat if transpose else M.matmat
    for limit in (1, 600, 1200, 1 << 21):  # one tile per block, a tile row or column, two, the default
        monkeypatch.setattr(matrix_module, "_FALLBACK_BLOCK_ENTRIES", limit)
        for chooser in (lambda tile, k, t: True, lambda tile, k, t: tile.origin[1] != 30):
            monkeypatch.setattr(matrix_module, "dense_is_cheaper", chooser)
            got = product(X)
            assert got.shape == want.shape and got.dtype == np.float32
            assert (np.abs(got - want) <= scale).all(), (limit, np.abs(got - want).max())
            # A 2-D operand of one column takes the same path.
            np.testing.assert_allclose(product(X[:, :1])[:, 0], want[:, 0], rtol=0, atol=float(scale[:, 0].max()))
