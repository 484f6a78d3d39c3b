"""The HDF5 door: lrq-filtered datasets written by lrq.hdf5.write, read back
through the filter plugin by h5py and by Debian's HDF5 tools (h5dump,
h5ls), chunk streams that are complete `.lrq` files, damaged chunks that are
HDF5 errors, and the per-chunk cost of the container (spec/hdf5-filter.md)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrq
from _support import MEMORY_GROWTH_PRELUDE

h5py = pytest.importorskip("h5py", reason="lrq.hdf5 needs h5py (in the test extra)")
import lrq.hdf5  # noqa: E402

RNG_SEED = 20261202


def tool(name: str) -> str:
    """A tool of Debian's hdf5-tools: CI installs them (.ci/run), so there a
    missing one fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing; .ci/run installs hdf5-tools")
        pytest.skip(f"{name} not installed (apt-get install hdf5-tools)")
    return path


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HDF5_PLUGIN_PATH=lrq.hdf5.PLUGIN_PATH)
    return subprocess.run([tool(args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=120)


def matrix(shape, dtype=np.float32, seed=0) -> np.ndarray:
    rng = np.random.default_rng([RNG_SEED, seed])
    return rng.standard_normal(shape).astype(dtype)


def chunk_corners(shape, chunks):
    grids = np.meshgrid(*[np.arange(0, d, c) for d, c in zip(shape, chunks)], indexing="ij")
    return [tuple(int(g.flat[i]) for g in grids) for i in range(grids[0].size)]


def decoded_from_streams(dataset) -> np.ndarray:
    """The dataset as lrq.decode sees its chunks' streams (no filter involved)."""
    out = np.zeros(dataset.shape, dataset.dtype)
    for corner in chunk_corners(dataset.shape, dataset.chunks):
        mask, stream = dataset.id.read_direct_chunk(corner)
        assert mask == 0
        block = lrq.decode(lrq.loads(stream))
        region = tuple(slice(o, o + s) for o, s in
                       zip(corner, (1,) * (len(corner) - block.ndim) + block.shape))
        out[region] = block.reshape(out[region].shape)
    return out


SCHEMES = [
    ("signcut", {"bits": 3}),
    ("signcut", {"bits": 3, "c_storage": "float16"}),
    ("lplr", {"bits": 3}),
    ("dense", {"storage": "float16"}),
    ("dense", {}),
    ("auto", {"rel_error": 0.1}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme,options", SCHEMES, ids=[f"{s}-{'-'.join(map(str, o.values()))}" for s, o in SCHEMES])
def test_h5py_reads_every_scheme_through_the_filter(tmp_path, scheme, options, dtype):
    a = matrix((200, 150), dtype)  # edge chunks on both sides
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", a, chunks=(64, 64), scheme=scheme, **options)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        dataset = f["A"]
        got = dataset[:]
        assert got.dtype == dtype and got.shape == a.shape
        flags, words, _ = dataset.id.get_create_plist().get_filter_by_id(lrq.hdf5.FILTER_ID)
        assert flags & h5py.h5z.FLAG_OPTIONAL
        assert words == lrq.hdf5.filter_parameters(dtype, (64, 64), scheme, **options)
        # The plugin and lrq.decode run the same C decoder: the same bits.
        np.testing.assert_array_equal(got, decoded_from_streams(dataset))
    if scheme == "dense" and not options:
        np.testing.assert_array_equal(got, a)
    else:
        assert 0 < np.linalg.norm(got - a) / np.linalg.norm(a) < 0.7


@pytest.mark.parametrize("request_", [
    {"scheme": "signcut", "bits": 6.0, "seed": 7, "c_storage": "float16"},
    {"scheme": "signcut", "width": 12, "seed": 2**40 + 3, "c_storage": "float32"},
    {"scheme": "dense", "seed": 0, "storage": "bfloat16"},
    {"scheme": "lplr", "rel_error": 0.25, "seed": 1},
    {"scheme": "auto", "seed": 0, "c_storage": "float32"},
])
def test_the_stored_parameters_give_back_the_encoding_request(tmp_path, request_):
    a = matrix((40, 30))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", a, chunks=(40, 30), **request_)
        assert lrq.hdf5.encoding_request(d) == request_
        assert lrq.hdf5.encoding_request(lrq.hdf5.filter_parameters(np.float32, (40, 30), **request_)) == request_
    with pytest.raises(lrq.FormatError):
        lrq.hdf5.encoding_request((1, 2, 3))


def test_every_chunk_is_a_complete_lrq_stream_of_its_part_of_the_dataset(tmp_path):
    a = matrix((300, 520))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", a, chunks=(128, 256), scheme="signcut", rel_error=0.3)
        shapes = {}
        for corner in chunk_corners(a.shape, d.chunks):
            m = lrq.loads(d.id.read_direct_chunk(corner)[1])
            shapes[corner] = m.shape
            tile = a[corner[0]:corner[0] + 128, corner[1]:corner[1] + 256]
            # rel_error holds per chunk, measured on the chunk's own values
            assert np.linalg.norm(lrq.decode(m) - tile) <= 0.3 * np.linalg.norm(tile) * (1 + 1e-6)
    assert shapes[(0, 0)] == (128, 256)
    assert shapes[(256, 512)] == (44, 8)  # an edge chunk holds only the part inside the dataset


def test_edge_chunks_get_the_budget_of_a_full_chunk(tmp_path):
    a = matrix((300, 260))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", a, chunks=(256, 256), scheme="auto", bits=2)
        for corner in chunk_corners(a.shape, d.chunks):
            assert len(d.id.read_direct_chunk(corner)[1]) * 8 <= 2 * 256 * 256
        corner_chunk = lrq.loads(d.id.read_direct_chunk((256, 256))[1])
        # 44 x 4 entries with 2 bits for each of 256 x 256: stored exactly
        assert corner_chunk.shape == (44, 4) and corner_chunk.scheme == "dense"
        np.testing.assert_array_equal(d[256:, 256:], a[256:, 256:])


def test_3d_dataset_of_matrix_chunks(tmp_path):
    a = matrix((3, 100, 90), np.float64)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f["/"], "stack", a, chunks=(1, 64, 64), scheme="lplr", rel_error=0.5)
        assert lrq.loads(d.id.read_direct_chunk((2, 64, 64))[1]).shape == (36, 26)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        got = f["stack"][:]
        np.testing.assert_array_equal(got, decoded_from_streams(f["stack"]))
    for k in range(3):
        assert np.linalg.norm(got[k] - a[k]) / np.linalg.norm(a[k]) <= 0.5


def test_1d_and_nd_chunks_store_dense(tmp_path):
    v = matrix((1000,), seed=1)
    cube = matrix((4, 6, 10), seed=2)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "v", v, chunks=(300,), scheme="dense")
        lrq.hdf5.write(f, "cube", cube, chunks=(2, 3, 10), scheme="dense", storage="float16")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        np.testing.assert_array_equal(f["v"][:], v)
        np.testing.assert_array_equal(f["cube"][:], cube.astype(np.float16).astype(np.float32))


def test_default_chunks_are_256_square_matrices(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        assert lrq.hdf5.write(f, "A", matrix((600, 100)), bits=4).chunks == (256, 100)
        assert lrq.hdf5.write(f, "S", matrix((2, 300, 40)), scheme="signcut", bits=4).chunks == (1, 256, 40)


def test_the_plugin_folder_holds_only_the_plugin():
    # HDF5 loads every library in a plugin folder: it must be one of its own.
    assert sorted(os.listdir(lrq.hdf5.PLUGIN_PATH)) == [lrq.hdf5.PLUGIN_FILE]


def test_the_plugin_links_no_hdf5():
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("ldd not available")
    needed = subprocess.run([ldd, os.path.join(lrq.hdf5.PLUGIN_PATH, lrq.hdf5.PLUGIN_FILE)],
                            capture_output=True, text=True, check=True).stdout
    assert "hdf5" not in needed


# ---------------------------------------------------------------- refusals


def damaged_copies(stream: bytes, positions):
    for i in positions:
        bad = bytearray(stream)
        bad[i] ^= 0xA5
        yield i, bytes(bad)


SMALL_CHUNKS = [
    ("signcut", {"width": 20}),
    ("signcut", {"width": 20, "c_storage": "float16"}),
    ("lplr", {"rank": 6, "bits_l": 2, "bits_r": 5}),  # bit-planes and byte codes
    ("dense", {"storage": "bfloat16"}),
]


@pytest.mark.parametrize("scheme,options", SMALL_CHUNKS, ids=["signcut", "signcut-c16", "lplr", "dense-bf16"])
def test_every_single_byte_change_of_a_chunk_is_an_hdf5_error(tmp_path, scheme, options):
    a = matrix((40, 48))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", a, chunks=(40, 48), scheme=scheme, **options)
    # no chunk cache: every read runs the filter on the stored bytes
    with h5py.File(tmp_path / "a.h5", "r+", rdcc_nbytes=0) as f:
        d = f["A"]
        stream = d.id.read_direct_chunk((0, 0))[1]
        for i, bad in damaged_copies(stream, range(len(stream))):
            d.id.write_direct_chunk((0, 0), bad)
            with pytest.raises(OSError, match="filter returned failure"):
                d[:]
        for bad in (b"\0", stream[:64], stream[:-1], stream + b"\0", b"\x89LRQ" + bytes(200)):
            d.id.write_direct_chunk((0, 0), bad)
            with pytest.raises(OSError):
                d[:]
        d.id.write_direct_chunk((0, 0), stream)
        np.testing.assert_array_equal(d[:], lrq.decode(lrq.loads(stream)))


@given(st.binary(min_size=1, max_size=600), st.integers(0, 3))
@settings(max_examples=100)
def test_arbitrary_bytes_as_a_chunk_are_an_hdf5_error(tmp_path_factory, junk, keep):
    """Junk alone, or a valid stream's first bytes followed by junk."""
    path = tmp_path_factory.mktemp("junk") / "a.h5"
    stream = lrq.dumps(lrq.encode(matrix((40, 48)), "signcut", width=4, name="chunk"))
    bad = stream[:(0, 8, 64, len(stream) // 2)[keep]] + junk
    stored_with_parameters(path, lrq.hdf5.filter_parameters(np.float32, (40, 48), "signcut", width=4), bad)
    with h5py.File(path, "r") as f, pytest.raises(OSError):
        f["A"][:]


def test_larger_chunks_sampled_byte_changes_are_errors(tmp_path):
    a = matrix((256, 256), seed=3)
    rng = np.random.default_rng(RNG_SEED)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", a, chunks=(256, 256), scheme="lplr", bits=2)
    with h5py.File(tmp_path / "a.h5", "r+", rdcc_nbytes=0) as f:
        d = f["A"]
        stream = d.id.read_direct_chunk((0, 0))[1]
        for i, bad in damaged_copies(stream, rng.choice(len(stream), 300, replace=False)):
            d.id.write_direct_chunk((0, 0), bad)
            with pytest.raises(OSError):
                d[:]


def stored_with_parameters(path, words, stream, dtype=np.float32, shape=(40, 48)):
    """A dataset with any filter parameters: made while the filter is not
    registered, since the filter itself refuses to create such datasets."""
    h5py.h5z.unregister_filter(lrq.hdf5.FILTER_ID)
    try:
        with h5py.File(path, "w") as f:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk(shape)
            dcpl.set_filter(lrq.hdf5.FILTER_ID, h5py.h5z.FLAG_OPTIONAL, tuple(words))
            d = f.create_dataset("A", shape=shape, dtype=dtype, dcpl=dcpl)
            d.id.write_direct_chunk((0,) * len(shape), stream)
    finally:
        lrq.hdf5.register()


@pytest.mark.parametrize("change", ["marker", "layout", "dtype", "rank", "dims", "short", "tensor dtype", "too big"])
def test_chunks_that_do_not_match_the_parameters_are_errors(tmp_path, change):
    a = matrix((40, 48))
    stream = lrq.dumps(lrq.encode(a, "signcut", width=8, name="chunk"))
    words = list(lrq.hdf5.filter_parameters(np.float32, (40, 48), "signcut", width=8))
    dtype, shape = np.float32, (40, 48)
    if change == "marker":
        words[0] = 7
    elif change == "layout":
        words[0] += 1
    elif change == "dtype":
        words[1] = 5  # int64
    elif change == "rank":
        words[2] = 40
    elif change == "dims":
        words[3] = 0
    elif change == "short":
        words = words[:4]
    elif change == "tensor dtype":
        stream = lrq.dumps(lrq.encode(a.astype(np.float64), "signcut", width=8))
    else:
        stream = lrq.dumps(lrq.encode(matrix((40, 50)), "signcut", width=8))
    stored_with_parameters(tmp_path / "a.h5", words, stream, dtype, shape)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        with pytest.raises(OSError):
            f["A"][:]


def test_a_chunk_with_two_tensors_is_an_error(tmp_path):
    path = tmp_path / "two.lrq"
    lrq.save(path, {"a": matrix((40, 48)), "b": matrix((2, 2))})
    stored_with_parameters(tmp_path / "a.h5", lrq.hdf5.filter_parameters(np.float32, (40, 48)),
                           path.read_bytes())
    with h5py.File(tmp_path / "a.h5", "r") as f, pytest.raises(OSError):
        f["A"][:]


def test_a_later_write_through_hdf5_is_stored_exactly(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", matrix((64, 64)), chunks=(32, 32), scheme="signcut", width=4)
        expected = d[:]
        expected[:32, :40] = 1.5
        d[:32, :40] = 1.5
    with h5py.File(tmp_path / "a.h5", "r") as f:
        d = f["A"]
        np.testing.assert_array_equal(d[:], expected)
        # the chunks written through HDF5 are stored unfiltered, marked so
        assert d.id.read_direct_chunk((0, 0))[0] == 1 and d.id.read_direct_chunk((0, 32))[0] == 1
        assert d.id.read_direct_chunk((32, 0))[0] == 0


def test_a_chunk_that_cannot_be_encoded_leaves_no_dataset(tmp_path):
    a = matrix((40, 64))
    a[:, 32:] = np.inf  # the second chunk
    with h5py.File(tmp_path / "a.h5", "w") as f:
        with pytest.raises(lrq.ArgumentError):
            lrq.hdf5.write(f, "A", a, chunks=(40, 32), scheme="signcut", width=2)
        assert "A" not in f


@pytest.mark.parametrize("bad", [
    {"data": np.ones((4, 4), np.int32)},
    {"data": np.ones((4, 4), np.float16)},
    {"data": np.ones((4, 4), np.float32), "chunks": (5, 4)},
    {"data": np.ones((4, 4), np.float32), "chunks": (4,)},
    {"data": np.ones((4, 4), np.float32), "bits": 2, "width": 3},
    {"data": np.ones((4, 4), np.float32), "scheme": "zip"},
    {"data": np.ones((4, 4), np.float32), "seed": -1},
])
def test_write_refuses_bad_arguments(tmp_path, bad):
    with h5py.File(tmp_path / "a.h5", "w") as f, pytest.raises(lrq.ArgumentError):
        lrq.hdf5.write(f, "A", **bad)


# ---------------------------------------------------------------- HDF5 tools


def h5dump_values(path, name) -> np.ndarray:
    out = run_tool("h5dump", "-m", "%.17g", "-d", name, "-w", "0", str(path))
    assert out.returncode == 0, out.stderr
    data = out.stdout.split("DATA {", 1)[1]
    rows = re.findall(r"^\s*\([\d,]+\):\s*(.*)$", data, re.M)
    return np.array([float(v) for row in rows for v in row.replace(",", " ").split()])


H5DUMP_SCHEMES = [
    ("signcut", {"width": 12}),
    ("signcut", {"width": 12, "c_storage": "float16"}),
    ("lplr", {"rank": 4}),
    ("dense", {"storage": "float16"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme,options", H5DUMP_SCHEMES, ids=["signcut", "signcut-c16", "lplr", "dense-f16"])
def test_h5dump_prints_the_values_h5py_reads(tmp_path, scheme, options, dtype):
    a = matrix((40, 30), dtype, seed=4)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", a, chunks=(16, 16), scheme=scheme, **options)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        expected = f["A"][:].astype(np.float64).ravel()
    # %.17g prints every binary32 and binary64 exactly
    np.testing.assert_array_equal(h5dump_values(tmp_path / "a.h5", "A"), expected)


def test_h5dump_reports_a_damaged_chunk_with_the_rule(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", matrix((40, 30)), chunks=(40, 30), scheme="signcut", width=10)
        stream = bytearray(d.id.read_direct_chunk((0, 0))[1])
        stream[-1] ^= 1  # inside the last section
        d.id.write_direct_chunk((0, 0), bytes(stream))
    out = run_tool("h5dump", "--enable-error-stack", "-d", "A", str(tmp_path / "a.h5"))
    assert out.returncode != 0
    assert "lrq: [SEC-6]" in out.stderr and "section 's'" in out.stderr


def test_h5ls_shows_the_filter(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", matrix((40, 30)), chunks=(20, 30), scheme="signcut", width=10)
    out = run_tool("h5ls", "-v", str(tmp_path / "a.h5") + "/A")
    assert out.returncode == 0, out.stderr
    words = ", ".join(map(str, lrq.hdf5.filter_parameters(np.float32, (20, 30), "signcut", width=10)))
    assert f"Filter-0:  lrq: low-rank and 1-bit matrix chunks (.lrq streams)-335 OPT {{{words}}}" in out.stdout, out.stdout


def test_h5py_loads_the_plugin_from_hdf5_plugin_path(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", matrix((40, 30)), chunks=(20, 30), scheme="signcut", width=10)
        expected = f["A"][:]
    np.save(tmp_path / "expected.npy", expected)
    script = ("import h5py, numpy as np, sys; f = h5py.File(sys.argv[1], 'r');"
              "np.testing.assert_array_equal(f['A'][:], np.load(sys.argv[2])); print('ok')")
    env = dict(os.environ, HDF5_PLUGIN_PATH=lrq.hdf5.PLUGIN_PATH)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.h5"), str(tmp_path / "expected.npy")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------- cost


@pytest.mark.parametrize("scheme", ["signcut", "lplr"])
def test_a_256_chunk_costs_within_5_percent_of_its_tile_in_a_large_file(tmp_path, scheme):
    """At 2 bits/entry: a 256 x 256 chunk of its own, with the parameters its
    tile got in a 1024 x 1024 file of 256 x 256 tiles, against that file's
    bits per entry (its header, alignment and every tile shared)."""
    a = matrix((1024, 1024), seed=5)
    large = lrq.encode(a, scheme, bits=2, tile_shape=(256, 256))
    large_bits = len(lrq.dumps(large)) * 8 / a.size
    assert large_bits <= 2
    chunk_bytes = []
    with h5py.File(tmp_path / "a.h5", "w") as f:
        for index, (origin, shape, _, params) in enumerate(large.tiles):
            if scheme == "signcut":
                args = {"width": params["width"]}
            else:
                args = {k: params[k] for k in ("rank", "bits_l", "bits_r")}
            d = lrq.hdf5.write(f, f"t{index}", a[origin[0]:origin[0] + 256, origin[1]:origin[1] + 256],
                               chunks=(256, 256), scheme=scheme, **args)
            chunk_bytes.append(len(d.id.read_direct_chunk((0, 0))[1]))
    chunk_bits = sum(chunk_bytes) * 8 / a.size
    assert large_bits < chunk_bits <= 1.05 * large_bits


# ---------------------------------------------------------------- products


def close_to(y, expected, a_abs, x_abs):
    """Within spec §11's tolerance for a product: 1e-5 times the sum of the
    magnitudes of its terms (bounded by |A| |x| of the decoded values) and
    the rounding of the output."""
    bound = 1e-4 * (a_abs @ x_abs) + 1e-6 * np.abs(expected) + 1e-30
    assert np.all(np.abs(y - expected) <= bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_over_the_chunks_equal_the_decoded_dataset(tmp_path, dtype):
    a = matrix((300, 520), dtype, seed=6)
    rng = np.random.default_rng([RNG_SEED, 7])
    x, y, X = (rng.standard_normal(n).astype(dtype) for n in (520, 300, (520, 5)))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", a, chunks=(128, 256), scheme="auto", bits=3)
        d[290:, :10] = 0.25  # one chunk now stored unfiltered by HDF5
        dense = d[:].astype(np.float64)
        m = lrq.hdf5.Matrix(d)
        assert m.shape == (300, 520) and m.T.shape == (520, 300)
        for got, expected, a_abs, v in ((m @ x, dense @ x, np.abs(dense), x),
                                        (m.T @ y, dense.T @ y, np.abs(dense.T), y),
                                        (m @ X, dense @ X, np.abs(dense), X)):
            assert got.dtype == dtype and got.shape == expected.shape
            close_to(got, expected, a_abs, np.abs(v))
        assert (m @ x.astype(np.float64)).dtype == np.float64


def test_products_refuse_what_they_cannot_multiply(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = lrq.hdf5.write(f, "A", matrix((64, 48)), chunks=(32, 32), scheme="signcut", width=4)
        plain = f.create_dataset("P", data=np.ones((4, 4), np.float32), chunks=(2, 2))
        stack = lrq.hdf5.write(f, "S", matrix((2, 8, 8)), chunks=(1, 8, 8), scheme="dense")
        for bad in (plain, stack, np.ones((4, 4))):
            with pytest.raises(lrq.ArgumentError):
                lrq.hdf5.Matrix(bad)
        m = lrq.hdf5.Matrix(d)
        with pytest.raises(lrq.ArgumentError, match="do not multiply"):
            m @ np.ones(64, np.float32)
        stream = bytearray(d.id.read_direct_chunk((32, 32))[1])
        stream[-1] ^= 1
        d.id.write_direct_chunk((32, 32), bytes(stream))
        with pytest.raises(lrq.ChecksumError, match=r"chunk at \(32, 32\)"):
            m @ np.ones(48, np.float32)


@pytest.mark.slow
def test_streaming_a_large_dataset_stays_within_a_few_chunks_of_memory(tmp_path):
    # 4608 x 8192 float32: 144 MiB dense, a few MiB stored.  The products
    # run in a fresh interpreter; reading the dataset dense afterwards
    # shows that the measurement sees such growth.
    rows, cols, edge = 4608, 8192, 512
    with h5py.File(tmp_path / "big.h5", "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((edge, edge))
        dcpl.set_filter(lrq.hdf5.FILTER_ID, h5py.h5z.FLAG_OPTIONAL,
                        lrq.hdf5.filter_parameters(np.float32, (edge, edge), "signcut", width=2))
        d = f.create_dataset("A", shape=(rows, cols), dtype=np.float32, dcpl=dcpl)
        for r0 in range(0, rows, edge):
            for c0 in range(0, cols, edge):
                block = matrix((edge, edge), seed=r0 * cols + c0)
                d.id.write_direct_chunk((r0, c0), lrq.dumps(lrq.encode(block, "signcut", width=2, name="chunk")))
    assert rows * cols * 4 > 128 * 2**20
    script = MEMORY_GROWTH_PRELUDE + """
import sys, h5py, numpy as np, lrq.hdf5

with h5py.File(sys.argv[1], "r") as f:
    m = lrq.hdf5.Matrix(f["A"])
    x = np.ones(m.shape[1], np.float32)
    m @ x  # warm up: imports, kernels, scratch
    products, _ = growth(lambda: m.T @ (m @ x))
    dense, _ = growth(lambda: f["A"][:])
print(products, dense)
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.h5")], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    growth, dense_growth = (int(v) for v in out.stdout.split()[:2])
    assert growth < 32 * 2**20 and dense_growth > 64 * 2**20, (growth, dense_growth)
