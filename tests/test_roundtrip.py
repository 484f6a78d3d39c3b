"""Round trips through every scheme and awkward shapes, and the promises of
``lrq.encode``: shapes and dtypes come back, bytes are reproducible, products
agree with the decoded matrix, and the size and error targets are met."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import lrq
from _support import assert_product_close, random_matrix, rel_error, split

# Each scheme once, at parameters every test shape admits (1×1 included).
CONFIGS = {
    "signcut": dict(scheme="signcut", width=3),
    "lplr": dict(scheme="lplr", rank=1, bits_l=3, bits_r=6),  # bit-planes and byte codes
    "dense": dict(scheme="dense"),
    "auto": dict(scheme="auto"),
}
SHAPES = [(1, 1), (1, 17), (17, 1), (3, 1000), (1000, 3), (7, 13), (64, 48)]
DTYPES = [np.float16, np.float32, np.float64]


def shape_id(shape) -> str:
    return "x".join(map(str, shape))


@functools.lru_cache(maxsize=None)
def encoded(config: str, shape: tuple, dtype=np.float32, seed: int = 0):
    """(A, M, dumps(M)) for a random matrix; cached so each is encoded once."""
    a = random_matrix(shape, seed=sum(shape), dtype=dtype)
    matrix = lrq.encode(a, seed=seed, **CONFIGS[config])
    return a, matrix, lrq.dumps(matrix)


every_case = pytest.mark.parametrize(
    "config, shape", [(c, s) for c in CONFIGS for s in SHAPES], ids=lambda v: shape_id(v) if isinstance(v, tuple) else v
)
dtype_cases = pytest.mark.parametrize(
    "config, dtype", [(c, d) for c in CONFIGS for d in DTYPES], ids=lambda v: v if isinstance(v, str) else np.dtype(v).name
)


def operand(rng, shape, dtype):
    """A random product operand in the dtype products are computed in."""
    wide = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    return rng.standard_normal(shape).astype(wide)


def check_products(a_shape, matrix, dtype, seed=0):
    """Every product form against the same product with decode(M).

    Factorized tiles multiply in float32 on the C core whatever the output
    dtype (spec [NUM-1] allows float32 accumulation), so a float64 signcut
    or lplr matrix is held to the float32 tolerance; dense float64 tiles
    multiply in float64 and keep the float64 one.
    """
    m, n = a_shape
    dense = lrq.decode(matrix)
    rng = np.random.default_rng(seed)
    x, y = operand(rng, n, dtype), operand(rng, m, dtype)
    xs, ys = operand(rng, (n, 3), dtype), operand(rng, (2, m), dtype)
    if matrix.scheme != "dense" and np.dtype(dtype) == np.float64:
        dtype = np.float32
    assert_product_close(matrix @ x, dense, x, dtype)
    assert_product_close(matrix.matvec(x), dense, x, dtype)
    assert_product_close(matrix @ xs, dense, xs, dtype)
    assert_product_close(matrix.T @ y, dense.T, y, dtype)
    assert_product_close(matrix.rmatvec(y), dense.T, y, dtype)
    assert_product_close(y @ matrix, dense.T, y, dtype)
    assert_product_close((ys @ matrix).T, dense.T, ys.T, dtype)


# ---------------------------------------------------------------- every scheme × shape


@every_case
def test_decode_has_the_input_shape_and_dtype(config, shape):
    a, matrix, _ = encoded(config, shape)
    out = lrq.decode(matrix)
    assert out.shape == matrix.shape == a.shape
    assert out.dtype == matrix.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(matrix), out)
    np.testing.assert_array_equal(np.asarray(matrix.T), out.T)
    assert np.isfinite(out).all()


@every_case
def test_bytes_round_trip_exactly(config, shape):
    _, matrix, data = encoded(config, shape)
    loaded = lrq.loads(data)
    assert lrq.dumps(loaded) == data
    assert (loaded.shape, loaded.dtype, loaded.scheme, loaded.rel_error) == (
        matrix.shape, matrix.dtype, matrix.scheme, matrix.rel_error)
    np.testing.assert_array_equal(lrq.decode(loaded), lrq.decode(matrix))
    np.testing.assert_array_equal(lrq.decode(data), lrq.decode(matrix))


@every_case
def test_size_attributes_count_the_whole_file(config, shape):
    _, matrix, data = encoded(config, shape)
    assert matrix.nbytes == len(data)
    assert matrix.bits_per_entry == 8 * len(data) / matrix.size
    assert matrix.size == np.prod(shape)


@every_case
def test_same_seed_gives_identical_bytes(config, shape):
    a, _, data = encoded(config, shape)
    assert lrq.dumps(lrq.encode(a, seed=0, **CONFIGS[config])) == data


@every_case
def test_rel_error_attribute_is_the_measured_error(config, shape):
    a, matrix, _ = encoded(config, shape)
    measured = rel_error(a, lrq.decode(matrix))
    # Stored as float32 and measured before the output is rounded to float32.
    assert matrix.rel_error == pytest.approx(measured, rel=1e-4, abs=1e-6)


@every_case
def test_products_match_the_decoded_matrix(config, shape):
    a, matrix, _ = encoded(config, shape)
    check_products(a.shape, matrix, np.float32)


@every_case
def test_products_of_a_loaded_matrix_match(config, shape):
    a, _, data = encoded(config, shape)
    check_products(a.shape, lrq.loads(data), np.float32, seed=1)


@pytest.mark.parametrize("config", CONFIGS)
def test_products_never_decode_to_dense(config, monkeypatch):
    a, matrix, _ = encoded(config, (7, 13))
    want = lrq.decode(matrix)
    x, y = np.ones(13, dtype=np.float32), np.ones(7, dtype=np.float32)

    def refuse(*args, **kwargs):
        raise AssertionError("a product decoded the matrix")

    monkeypatch.setattr(lrq.Matrix, "decode", refuse)
    monkeypatch.setattr(lrq.Matrix, "__array__", refuse)
    for got, dense, v in ((matrix @ x, want, x), (matrix.T @ y, want.T, y), (y @ matrix, want.T, y)):
        assert_product_close(got, dense, v, np.float32)


# ---------------------------------------------------------------- dtypes


@dtype_cases
def test_output_dtype_follows_the_input(config, dtype):
    a, matrix, data = encoded(config, (7, 13), dtype)
    assert matrix.dtype == dtype
    assert lrq.decode(matrix).dtype == dtype
    assert lrq.decode(lrq.loads(data)).dtype == dtype
    check_products(a.shape, matrix, dtype)


@pytest.mark.parametrize("config", CONFIGS)
def test_float64_error_is_measured_exactly(config):
    a, matrix, _ = encoded(config, (64, 48), np.float64)
    assert matrix.rel_error == pytest.approx(rel_error(a, lrq.decode(matrix)), rel=1e-6, abs=1e-7)


def test_dense_float64_is_lossless():
    a, matrix, _ = encoded("dense", (7, 13), np.float64)
    np.testing.assert_array_equal(lrq.decode(matrix), a)
    assert matrix.rel_error == 0.0


def test_python_lists_are_accepted_as_float64():
    matrix = lrq.encode([[1.0, 2.0], [3.0, 4.0]], "dense")
    assert matrix.dtype == np.float64
    np.testing.assert_array_equal(lrq.decode(matrix), [[1.0, 2.0], [3.0, 4.0]])


# ---------------------------------------------------------------- seeds


@pytest.mark.parametrize("config, shape", [("signcut", (64, 48)), ("signcut", (7, 13)), ("lplr", (64, 48))])
def test_another_seed_gives_another_encoding(config, shape):
    a, matrix, _ = encoded(config, shape)
    other = lrq.encode(a, seed=1, **CONFIGS[config])
    # Compare the payloads, not the whole file: the header records the seed.
    assert split(lrq.dumps(other))[1] != split(lrq.dumps(matrix))[1]


# ---------------------------------------------------------------- size targets

BUDGETS = [
    ("signcut", (64, 48), 2.0), ("signcut", (64, 48), 4.0), ("signcut", (3, 1000), 4.0), ("signcut", (100, 37), 8.0),
    ("lplr", (64, 48), 4.0), ("lplr", (3, 1000), 8.0), ("lplr", (100, 37), 5.5),
    ("dense", (64, 48), 33.0), ("dense", (3, 1000), 40.0), ("dense", (100, 37), 17.5),
    ("auto", (64, 48), 4.0), ("auto", (3, 1000), 3.5), ("auto", (100, 37), 2.5),
]


@pytest.mark.parametrize("scheme, shape, bits", BUDGETS)
def test_bits_budget_bounds_the_file_size(scheme, shape, bits):
    a = random_matrix(shape, seed=3)
    matrix = lrq.encode(a, scheme, bits=bits)
    assert 8 * len(lrq.dumps(matrix)) / a.size <= bits
    assert matrix.bits_per_entry <= bits
    assert matrix.rel_error == pytest.approx(rel_error(a, lrq.decode(matrix)), rel=1e-4, abs=1e-6)


def test_a_larger_budget_never_gives_a_larger_signcut_error():
    a = random_matrix((64, 48), seed=4)
    errors = [lrq.encode(a, "signcut", bits=b).rel_error for b in (2, 3, 4, 6, 8)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0]


def test_budget_too_small_for_a_scheme_is_refused():
    with pytest.raises(lrq.ArgumentError, match="bits"):
        lrq.encode(random_matrix((64, 48)), "dense", bits=8.0)  # float16 alone takes 16


# ---------------------------------------------------------------- error targets

ERROR_TARGETS = [
    ("signcut", (64, 48), 0.5), ("signcut", (3, 1000), 0.2), ("signcut", (100, 37), 0.05),
    ("lplr", (64, 48), 0.5), ("lplr", (3, 1000), 0.2),
    ("dense", (64, 48), 0.01),
    ("auto", (7, 13), 0.3), ("auto", (3, 1000), 0.2),
]


@pytest.mark.parametrize("scheme, shape, goal", ERROR_TARGETS)
def test_rel_error_target_is_met(scheme, shape, goal):
    a = random_matrix(shape, seed=5)
    matrix = lrq.encode(a, scheme, rel_error=goal)
    assert matrix.rel_error <= goal
    assert rel_error(a, lrq.decode(matrix)) <= goal + 1e-6  # + float32 rounding of the output


@pytest.mark.parametrize("shape, goal", [((64, 48), 0.5), ((100, 37), 0.2), ((3, 1000), 0.1), ((7, 13), 0.3)])
def test_rel_error_target_takes_the_fewest_signcut_cuts(shape, goal):
    a = random_matrix(shape, seed=6)
    matrix = lrq.encode(a, "signcut", rel_error=goal, seed=2)
    width = matrix.params["width"]
    assert matrix.rel_error <= goal
    shorter = lrq.encode(a, "signcut", width=width - 1, seed=2)
    assert shorter.rel_error > goal
    # The greedy is deterministic: the shorter encoding is a prefix of the longer.
    c_long, c_short = split(lrq.dumps(matrix))[1][0], split(lrq.dumps(shorter))[1][0]
    assert c_long[: len(c_short)] == c_short


def test_signcut_width_is_the_number_of_cuts():
    matrix = lrq.encode(random_matrix((20, 30)), "signcut", width=7)
    assert matrix.params == {"width": 7}


def test_signcut_error_falls_with_width():
    a = random_matrix((40, 30), seed=7)
    errors = [lrq.encode(a, "signcut", width=w).rel_error for w in (1, 4, 16, 64)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5 * errors[0]


# ---------------------------------------------------------------- tiles

TILED_SHAPE, TILE = (50, 70), (20, 30)
TILE_ORIGINS = [(r, c) for r in (0, 20, 40) for c in (0, 30, 60)]
TILE_SHAPES = [(h, w) for h in (20, 20, 10) for w in (30, 30, 10)]


@functools.lru_cache(maxsize=None)
def tiled(config: str):
    a = random_matrix(TILED_SHAPE, seed=8, dtype=np.float32)
    options = {"signcut": dict(scheme="signcut", width=3), "auto": dict(scheme="auto", rel_error=0.3)}[config]
    return a, lrq.encode(a, tile_shape=TILE, **options)


@pytest.mark.parametrize("config", ["signcut", "auto"])
def test_tiled_matrix_lists_its_grid(config):
    _, matrix = tiled(config)
    assert [t[0] for t in matrix.tiles] == TILE_ORIGINS
    assert [t[1] for t in matrix.tiles] == TILE_SHAPES


def test_auto_mixes_schemes_across_tiles():
    # auto picks per tile, charging each scheme its real header bytes: an exact
    # rank-4 tile goes to lplr (about 2.5 kB against signcut's 5.9 kB at this
    # goal), noise to quant (plain quantization is the smallest at an error
    # of 0.1), and an 8×8 corner, too small to pay for a factorization's
    # headers, to dense.
    rng = np.random.default_rng(3)
    a = rng.standard_normal((136, 264)).astype(np.float32)
    a[:128, :128] = rng.standard_normal((128, 4)) @ rng.standard_normal((4, 128))
    matrix = lrq.encode(a, tile_shape=(128, 128), scheme="auto", rel_error=0.1)
    assert matrix.scheme == "mixed"
    schemes = {origin: scheme for origin, _, scheme, *_ in matrix.tiles}
    assert schemes[(0, 0)] == "lplr"
    assert schemes[(0, 128)] == "quant"
    assert schemes[(128, 256)] == "dense"
    assert matrix.rel_error <= 0.1
    assert rel_error(a, lrq.decode(matrix)) <= 0.1


@pytest.mark.parametrize("config", ["signcut", "auto"])
def test_tiled_matrix_round_trips(config):
    a, matrix = tiled(config)
    data = lrq.dumps(matrix)
    loaded = lrq.loads(data)
    assert lrq.dumps(loaded) == data
    assert loaded.tiles == matrix.tiles
    np.testing.assert_array_equal(lrq.decode(loaded), lrq.decode(matrix))
    assert lrq.decode(matrix).shape == TILED_SHAPE
    assert matrix.rel_error == pytest.approx(rel_error(a, lrq.decode(matrix)), rel=1e-4, abs=1e-6)
    check_products(TILED_SHAPE, loaded, np.float32)


def test_each_tile_is_the_encoding_of_its_block():
    a, matrix = tiled("signcut")
    out = lrq.decode(matrix)
    for (r, c), (h, w) in zip(TILE_ORIGINS, TILE_SHAPES):
        alone = lrq.encode(a[r : r + h, c : c + w], "signcut", width=3)
        np.testing.assert_array_equal(out[r : r + h, c : c + w], lrq.decode(alone))


@pytest.mark.parametrize("scheme", ["signcut", "lplr", "auto"])
@pytest.mark.parametrize("bits", [8.0, 12.0])
def test_bits_budget_holds_with_tiles(scheme, bits):
    a = random_matrix((64, 96), seed=9)
    matrix = lrq.encode(a, scheme, bits=bits, tile_shape=(32, 32))
    assert len(matrix.tiles) == 6
    assert 8 * len(lrq.dumps(matrix)) / a.size <= bits


def test_bits_budget_with_small_edge_tiles():
    a = random_matrix(TILED_SHAPE, seed=9)
    matrix = lrq.encode(a, "signcut", bits=12.0, tile_shape=TILE)
    assert 8 * len(lrq.dumps(matrix)) / a.size <= 12.0


def test_tile_shape_larger_than_the_matrix_is_one_tile():
    matrix = lrq.encode(random_matrix((5, 6)), "signcut", width=2, tile_shape=(100, 100))
    assert matrix.tiles == [((0, 0), (5, 6), "signcut", {"width": 2})]
