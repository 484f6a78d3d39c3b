"""The filter encodes in C (spec/hdf5-filter.md [H5-6]-[H5-10]): datasets made
with lrq.hdf5.LRQ, h5py's compression= or h5repack's request form get chunks
the plugin encodes, byte for byte the streams lrq.encode + lrq.dumps make;
parameters the filter cannot honour fail the dataset's creation; damaged
C-encoded chunks are HDF5 errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import struct
import sys

import numpy as np
import pytest

import lrq

h5py = pytest.importorskip("h5py", reason="lrq.hdf5 needs h5py (in the test extra)")
import lrq.hdf5  # noqa: E402

RNG_SEED = 20261203


def matrix(shape, dtype=np.float32, seed=0) -> np.ndarray:
    rng = np.random.default_rng([RNG_SEED, seed])
    return rng.standard_normal(shape).astype(dtype)


def low_rank_plus_noise(shape, rank=3, dtype=np.float32, seed=0) -> np.ndarray:
    rng = np.random.default_rng([RNG_SEED, seed, 1])
    m, n = shape[-2:]
    lead = shape[:-2]
    a = rng.standard_normal(lead + (m, rank)) @ rng.standard_normal(lead + (rank, n))
    return (a + 0.05 * rng.standard_normal(shape)).astype(dtype)


def corners(shape, chunks):
    grid = np.meshgrid(*[np.arange(0, d, c) for d, c in zip(shape, chunks)], indexing="ij")
    return [tuple(int(g.flat[i]) for g in grid) for i in range(grid[0].size)]


def padded_chunk(data, corner, chunks) -> np.ndarray:
    """The chunk as HDF5 hands it to the filter: the full chunk shape, the
    part past the dataset's edge holding the fill value (0)."""
    region = tuple(slice(o, min(o + c, d)) for o, c, d in zip(corner, chunks, data.shape))
    block = np.zeros(chunks, data.dtype)
    block[tuple(slice(0, r.stop - r.start) for r in region)] = data[region]
    return block


def matrix_view(block: np.ndarray) -> np.ndarray:
    """[H5-3]: leading dimensions of extent 1 dropped while more than two remain."""
    while block.ndim > 2 and block.shape[0] == 1:
        block = block[0]
    return block


def binary32(x: float) -> float:
    return float(np.float32(x))


def expected_stream(block, scheme, seed, options) -> bytes:
    """What lrq.encode writes for the chunk HDF5 hands the filter."""
    args = {k: binary32(v) if k in ("bits", "rel_error") else v for k, v in options.items()}
    return lrq.dumps(lrq.encode(matrix_view(block), scheme, seed=seed, name=lrq.hdf5.CHUNK_TENSOR_NAME, **args))


# (scheme, options): every target kind, both c storages, searched and given dense storage
REQUESTS = [
    ("signcut", {}),
    ("signcut", {"bits": 2}),
    ("signcut", {"bits": 1.75}),
    ("signcut", {"bits": 3, "c_storage": "float16"}),
    ("signcut", {"width": 9}),
    ("signcut", {"width": 300}),  # past m + n cuts: the stopping rule of deep cuts
    ("signcut", {"bits": 9}),
    ("signcut", {"rel_error": 0.45}),
    ("dense", {}),
    ("dense", {"bits": 18.5}),
    ("dense", {"rel_error": 0.004}),
    ("dense", {"bits": 40, "storage": "float32"}),
]
# (dataset shape, chunk shape): whole chunks, edge chunks on both sides, a
# stack of matrices with chunks (1, r, c)
LAYOUTS = [((64, 56), (64, 56)), ((100, 70), (64, 48)), ((3, 100, 50), (1, 64, 50))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda v: "x".join(map(str, v[0])))
@pytest.mark.parametrize("scheme, options", REQUESTS)
def test_the_filter_writes_the_bytes_lrq_encode_writes(tmp_path, scheme, options, layout, dtype):
    shape, chunks = layout
    a = low_rank_plus_noise(shape, dtype=dtype) * 3
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("A", shape=shape, dtype=dtype, chunks=chunks,
                             compression=lrq.hdf5.LRQ(scheme=scheme, seed=11, **options))
        d[...] = a
    with h5py.File(tmp_path / "a.h5", "r") as f:
        d = f["A"]
        for corner in corners(shape, chunks):
            mask, stream = d.id.read_direct_chunk(corner)
            assert mask == 0, "stored unfiltered"
            assert stream == expected_stream(padded_chunk(a, corner, chunks), scheme, 11, options), corner
        back = d[:]
    assert back.dtype == dtype
    reference = np.zeros(shape, dtype)
    for corner in corners(shape, chunks):
        region = tuple(slice(o, min(o + c, s)) for o, c, s in zip(corner, chunks, shape))
        decoded = lrq.decode(lrq.loads(expected_stream(padded_chunk(a, corner, chunks), scheme, 11, options)))
        reference[region] = decoded.reshape(chunks)[tuple(slice(0, r.stop - r.start) for r in region)]
    np.testing.assert_array_equal(back, reference)


def random_request(rng) -> tuple:
    scheme = ("signcut", "dense")[int(rng.integers(2))]
    kind = rng.choice(["default", "bits", "rel_error"] + (["width"] if scheme == "signcut" else []))
    options = {"bits": binary32(rng.uniform(1, 10) if scheme == "signcut" else rng.uniform(8, 70)),
               "rel_error": binary32(rng.uniform(0.2, 0.9) if scheme == "signcut" else 10 ** rng.uniform(-8, -1)),
               "width": int(rng.integers(1, 400)), "default": None}
    chosen = {} if kind == "default" else {str(kind): options[str(kind)]}
    if scheme == "signcut" and rng.random() < 0.3:
        chosen["c_storage"] = "float16"
    if scheme == "dense" and rng.random() < 0.3:
        chosen["storage"] = str(rng.choice(["float16", "bfloat16", "float32", "float64"]))
    return scheme, chosen


def test_random_chunks_requests_and_magnitudes_give_lrq_encodes_bytes(tmp_path):
    rng = np.random.default_rng([RNG_SEED, 99])
    compared = 0
    for case in range(150):
        shape = (int(rng.integers(1, 200)), int(rng.integers(1, 200)))
        dtype = (np.float32, np.float64)[case % 2]
        scale = 10.0 ** rng.uniform(-30, 30)
        a = (low_rank_plus_noise(shape, rank=int(rng.integers(1, 5)), dtype=np.float64, seed=case) * scale).astype(dtype)
        scheme, options = random_request(rng)
        try:
            expected = expected_stream(a, scheme, case, options)
        except lrq.LrqError:
            continue  # the filter refuses these too; test_a_budget... and the refusal tests cover it
        with h5py.File(tmp_path / "a.h5", "w") as f:
            d = f.create_dataset("A", data=a, chunks=shape, compression=lrq.hdf5.LRQ(scheme=scheme, seed=case, **options))
            f.flush()
            assert d.id.read_direct_chunk((0, 0))[1] == expected, (case, shape, dtype, scale, scheme, options)
        compared += 1
    assert compared >= 100


def test_full_chunks_equal_lrq_hdf5_write_and_edge_chunks_differ_as_documented(tmp_path):
    a = matrix((100, 70), seed=1)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        by_c = f.create_dataset("C", data=a, chunks=(64, 48), compression=lrq.hdf5.LRQ(bits=2, seed=4))
        by_python = lrq.hdf5.write(f, "P", a, chunks=(64, 48), scheme="signcut", bits=2, seed=4)
        f.flush()
        assert by_c.id.read_direct_chunk((0, 0))[1] == by_python.id.read_direct_chunk((0, 0))[1]
        # the edge chunk: write() encodes the part inside the dataset, the
        # filter the padded chunk HDF5 hands it
        assert lrq.loads(by_python.id.read_direct_chunk((64, 48))[1]).shape == (36, 22)
        assert lrq.loads(by_c.id.read_direct_chunk((64, 48))[1]).shape == (64, 48)


def test_stored_parameters_are_the_full_form_and_give_back_the_filter(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        for name, filt, shape, chunks in [
            ("A", lrq.hdf5.LRQ(bits=2.5, seed=2**40 + 1), (50, 60), (50, 60)),
            ("B", lrq.hdf5.LRQ(rel_error=0.3, c_storage="float16"), (4, 20, 20), (1, 20, 20)),
            ("C", lrq.hdf5.LRQ(scheme="dense", width=None, storage="bfloat16"), (7, 8, 9), (7, 8, 9)),
            ("D", lrq.hdf5.LRQ(scheme="dense", bits=20), (30, 30), (30, 30)),
        ]:
            d = f.create_dataset(name, shape=shape, dtype=np.float64, chunks=chunks, **filt)
            flags, words = d.id.get_create_plist().get_filter_by_id(lrq.hdf5.FILTER_ID)[:2]
            assert flags == h5py.h5z.FLAG_OPTIONAL  # h5py's choice, which set_local keeps [H5-10]
            assert words == (lrq.hdf5.CD_WORD0, 1, len(chunks), *chunks, lrq.hdf5.ENCODED_BY_FILTER,
                             *filt.filter_options)
            assert lrq.hdf5.LRQ.from_dataset(d) == filt
            assert repr(lrq.hdf5.LRQ.from_dataset(d)) == repr(filt)
    assert dict(lrq.hdf5.LRQ(bits=2)) == {"compression": 335, "compression_opts": (1, 1, 0x40000000, 0, 0, 0)}


def test_rel_error_holds_for_every_chunk(tmp_path):
    a = low_rank_plus_noise((96, 120), seed=5)
    a[:, 60:] = matrix((96, 60), seed=6)  # chunks of different difficulty
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("A", data=a, chunks=(48, 60), compression=lrq.hdf5.LRQ(rel_error=0.5))
        f.flush()
        widths = []
        for r0, c0 in corners(a.shape, d.chunks):
            m = lrq.loads(d.id.read_direct_chunk((r0, c0))[1])
            block = a[r0:r0 + 48, c0:c0 + 60]
            err = np.linalg.norm(d[r0:r0 + 48, c0:c0 + 60] - block) / np.linalg.norm(block)
            assert err <= 0.5 * (1 + 1e-6), (r0, c0)
            assert abs(m.rel_error - err) < 1e-4
            widths.append(m._record.tiles[0].params["width"])
    # the noise chunks needed more cuts than the low-rank ones for the same error
    assert min(widths[1], widths[3]) > max(widths[0], widths[2])


def test_writing_through_h5py_encodes_in_c(tmp_path):
    a = matrix((64, 64), np.float64, seed=7)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("A", shape=a.shape, dtype=a.dtype, chunks=(32, 64),
                             compression=lrq.hdf5.LRQ(width=5, seed=1))
        d[:32] = a[:32]
        d[32:] = a[32:]
        d[40:48, :10] = 0.25  # a second write of the second chunk re-encodes it
        a[40:48, :10] = 0.25
    with h5py.File(tmp_path / "a.h5", "r") as f:
        d = f["A"]
        for corner in [(0, 0), (32, 0)]:
            mask, stream = d.id.read_direct_chunk(corner)
            assert mask == 0
            assert stream == expected_stream(a[corner[0]:corner[0] + 32], "signcut", 1, {"width": 5})


# ---------------------------------------------------------------- refusals


def create(tmp_path, words, dtype=np.float32, chunks=(40, 30), shape=(40, 30)):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("A", shape=shape, dtype=dtype, chunks=chunks,
                         compression=lrq.hdf5.FILTER_ID, compression_opts=tuple(words))


def word(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


@pytest.mark.parametrize("words, message", [
    ((0,), "scheme auto has no C encoder"),
    ((2, 1, word(2.0)), "scheme lplr has no C encoder"),
    ((7,), "scheme code 7"),
    ((1, 5, 0), "target code 5"),
    ((1, 1, word(0.0)), "bits must be in"),
    ((1, 1, word(float("nan"))), "bits must be in"),
    ((1, 3, word(1.0)), "rel_error must be in"),
    ((1, 2, 0), "width must be in"),
    ((3, 2, 4), "target width applies to scheme signcut"),
    ((1, 0, 0, 0, 1 << 31), "seed must be below"),
    ((1, 0, 0, 0, 0, 2), "signcut option 2"),
    ((3, 0, 0, 0, 0, 9), "dense option 9"),
    ((), "has 1 to 6 words"),
    ((1, 0, 0, 0, 0, 0, 0), "has 1 to 6 words"),
    ((1, 1, word(0.05)), "cannot be stored in 0.05 bits/entry"),
    (lrq.hdf5.filter_parameters(np.float32, (2, 2), "signcut"), "describe another chunk shape"),
    (lrq.hdf5.filter_parameters(np.float64, (40, 30), "signcut"), "another chunk shape or element type"),
    (lrq.hdf5.filter_parameters(np.float32, (40, 30), "signcut", encoded_by=0)[:-1], "the stored form of a rank-2"),
    (lrq.hdf5.filter_parameters(np.float32, (40, 30), "lplr", bits=2, encoded_by=0), "scheme lplr has no C encoder"),
    (lrq.hdf5.filter_parameters(np.float32, (40, 30), encoded_by=2), "neither 0 nor 1"),
    (lrq.hdf5.filter_parameters(np.float32, (40, 30)) + (0,) * 40, "at most"),
])
def test_parameters_the_filter_cannot_honour_fail_the_creation(tmp_path, words, message):
    with pytest.raises(ValueError, match=message):
        create(tmp_path, words)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert "A" not in f


# Each pair straddles the smallest budget lrq.encode meets for this chunk.
@pytest.mark.parametrize("scheme, bits, c_storage", [("signcut", 1.374, None), ("signcut", 1.375, None),
                                                     ("signcut", 1.399, "float16"), ("signcut", 1.4, "float16"),
                                                     ("dense", 16.732, None), ("dense", 16.733, None)])
def test_a_budget_is_refused_at_creation_exactly_when_lrq_encode_refuses_it(tmp_path, scheme, bits, c_storage):
    a = matrix((64, 56))
    options = {"c_storage": c_storage} if c_storage else {}
    try:
        expected = lrq.dumps(lrq.encode(a, scheme, bits=bits, name="chunk", **options))
    except lrq.BudgetError:
        expected = None
    filt = lrq.hdf5.LRQ(scheme=scheme, bits=bits, **options)
    assert (expected is None) == (bits in (1.374, 1.399, 16.732))
    if expected is None:
        with pytest.raises(ValueError, match="alone take more than"):
            create(tmp_path, filt.filter_options, chunks=(64, 56), shape=(64, 56))
        return
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("A", data=a, chunks=(64, 56), compression=filt)
        f.flush()
        assert d.id.read_direct_chunk((0, 0))[1] == expected


@pytest.mark.parametrize("dtype, chunks, shape, message", [
    (np.int32, (40, 30), (40, 30), "float32 and float64 datasets only"),
    (">f4", (40, 30), (40, 30), "float32 and float64 datasets only"),
    (np.float16, (40, 30), (40, 30), "float32 and float64 datasets only"),
    (np.float32, (2, 40, 30), (2, 40, 30), "signcut encodes matrices"),
    (np.float32, (30,), (30,), "signcut encodes matrices"),
    (np.float32, (5000, 2), (5000, 2), "up to 4096 x 4096"),
])
def test_datasets_the_encoder_does_not_take_fail_the_creation(tmp_path, dtype, chunks, shape, message):
    with pytest.raises(ValueError, match=message):
        create(tmp_path, (1,), dtype=dtype, chunks=chunks, shape=shape)


def test_the_filter_must_come_first_in_the_pipeline(tmp_path):
    a = low_rank_plus_noise((64, 64))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        with pytest.raises(ValueError, match="must come first in the filter pipeline, before filter 2"):
            f.create_dataset("S", data=a, chunks=(64, 64), shuffle=True, compression=lrq.hdf5.LRQ())
        d = f.create_dataset("F", data=a, chunks=(64, 64), fletcher32=True, compression=lrq.hdf5.LRQ(seed=3))
        f.flush()
        plist = d.id.get_create_plist()
        assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == [lrq.hdf5.FILTER_ID, 3]
        expected = lrq.decode(lrq.loads(expected_stream(a, "signcut", 3, {})))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        np.testing.assert_array_equal(f["F"][:], expected)


def test_dense_takes_any_chunk_shape(tmp_path):
    a = matrix((2, 6, 5), np.float64)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("A", data=a, chunks=(2, 3, 5), compression=lrq.hdf5.LRQ(scheme="dense"))
        f.flush()
        assert d.id.read_direct_chunk((0, 3, 0))[1] == expected_stream(a[:, 3:], "dense", 0, {})
        np.testing.assert_array_equal(d[:], a)


@pytest.mark.parametrize("kwargs, message", [
    ({"scheme": "lplr"}, "has a Python encoder only"),
    ({"scheme": "auto", "bits": 2}, "has a Python encoder only"),
    ({"bits": 2, "width": 3}, "at most one of"),
    ({"bits": 0}, "bits must be in"),
    ({"rel_error": 1.0}, "rel_error must be in"),
    ({"width": 2.5}, "width must be an integer"),
    ({"scheme": "dense", "width": 3}, "width= applies to scheme='signcut'"),
    ({"seed": -1}, "seed must be"),
    ({"c_storage": "bfloat16"}, "c_storage must be one of"),
    ({"scheme": "dense", "storage": "int8"}, "storage must be one of"),
    ({"scheme": "dense", "c_storage": "float16"}, "c_storage= applies to scheme='signcut'"),
    ({"storage": "float16"}, "storage= applies to scheme='dense'"),
])
def test_lrq_refuses_bad_options_in_python(kwargs, message):
    with pytest.raises(lrq.ArgumentError, match=message):
        lrq.hdf5.LRQ(**kwargs)


def test_from_dataset_names_datasets_it_cannot_describe(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        plain = f.create_dataset("plain", data=np.ones((4, 4)), chunks=(2, 2), compression="gzip")
        by_python = lrq.hdf5.write(f, "lplr", matrix((64, 64)), chunks=(64, 64), scheme="lplr", bits=3)
        with pytest.raises(lrq.ArgumentError, match="not lrq-filtered"):
            lrq.hdf5.LRQ.from_dataset(plain)
        with pytest.raises(lrq.ArgumentError, match="scheme 'lplr'"):
            lrq.hdf5.LRQ.from_dataset(by_python)


REFUSED_CHUNKS_SCRIPT = """
import sys
import numpy as np, h5py, lrq.hdf5
a = np.load(sys.argv[2])
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("A", data=a, chunks=(64, 64), compression=lrq.hdf5.LRQ(bits=2))
    f.create_dataset("B", data=a[:64], chunks=(64, 64), compression=lrq.hdf5.LRQ(rel_error=1e-6))
    d = f.create_dataset("C", shape=a.shape, dtype=a.dtype, chunks=(64, 64), compression=lrq.hdf5.LRQ(bits=2))
    d[...] = a  # through HDF5's chunk cache: the filter runs at close
print("closed")
"""


def test_a_chunk_the_encoder_refuses_is_stored_unfiltered_and_exact(tmp_path):
    # [H5-10]: h5py makes the filter optional and the plugin keeps that, so
    # a NaN chunk, or one whose rel_error= signcut cannot reach, is stored
    # by HDF5 as given -- at creation and when the cache is flushed at close,
    # where a failing filter used to lose the chunk and crash the process
    # at exit (HDF5 2.0) -- while the other chunks are encoded.
    a = matrix((128, 64))
    a[3, 3] = np.nan
    np.save(tmp_path / "a.npy", a)
    run = subprocess.run([sys.executable, "-c", REFUSED_CHUNKS_SCRIPT, str(tmp_path / "a.h5"), str(tmp_path / "a.npy")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "closed", run.stderr
    with h5py.File(tmp_path / "a.h5", "r") as f:
        for name in ("A", "C"):
            d = f[name]
            assert d.id.get_create_plist().get_filter_by_id(lrq.hdf5.FILTER_ID)[0] == h5py.h5z.FLAG_OPTIONAL
            mask, raw = d.id.read_direct_chunk((0, 0))
            assert mask != 0
            np.testing.assert_array_equal(np.frombuffer(raw, np.float32).reshape(64, 64), a[:64])
            mask, stream = d.id.read_direct_chunk((64, 0))
            assert mask == 0 and stream == expected_stream(a[64:], "signcut", 0, {"bits": 2})
            np.testing.assert_array_equal(d[:64], a[:64])  # the NaN included
        b = f["B"]
        assert b.id.read_direct_chunk((0, 0))[0] != 0
        np.testing.assert_array_equal(b[:], a[:64])
        x = matrix((64,), seed=5)
        finite = a[64:]
        with h5py.File(tmp_path / "finite.h5", "w") as g:
            g.create_dataset("B", data=finite, chunks=(64, 64), compression=lrq.hdf5.LRQ(rel_error=1e-6))
            np.testing.assert_allclose(lrq.hdf5.Matrix(g["B"]) @ x, finite @ x, rtol=1e-5, atol=1e-5)
    info = subprocess.run([sys.executable, "-m", "lrq", "info", str(tmp_path / "a.h5")],
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert info.stdout.count("1 chunk stored unfiltered") == 3, info.stdout


# ---------------------------------------------------------------- h5repack


def h5repack() -> str:
    """Debian's h5repack: CI installs hdf5-tools (.ci/run), so there a
    missing one fails instead of skipping."""
    path = shutil.which("h5repack")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("h5repack is missing; .ci/run installs hdf5-tools")
        pytest.skip("h5repack not installed (apt-get install hdf5-tools)")
    return path


def run_h5repack(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, HDF5_PLUGIN_PATH=lrq.hdf5.PLUGIN_PATH)
    return subprocess.run([h5repack(), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_h5repack_request_form_makes_an_lrq_copy_h5py_reads(tmp_path):
    a = low_rank_plus_noise((300, 200), seed=8)
    b = matrix((2, 100, 90), np.float64, seed=9)
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["A"] = a
        f["B"] = b
    request = lrq.hdf5.LRQ(bits=2, seed=3).filter_options
    out = run_h5repack("-l", "A:CHUNK=128x128", "-l", "B:CHUNK=1x100x90",
                       "-f", f"UD={lrq.hdf5.FILTER_ID},0,{len(request)},{','.join(map(str, request))}",
                       tmp_path / "in.h5", tmp_path / "out.h5")
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "out.h5", "r") as f:
        for name, data, chunks in (("A", a, (128, 128)), ("B", b, (1, 100, 90))):
            d = f[name]
            assert d.chunks == chunks and d.dtype == data.dtype
            assert d.id.get_create_plist().get_filter_by_id(lrq.hdf5.FILTER_ID)[1] == lrq.hdf5.filter_parameters(
                data.dtype, chunks, "signcut", bits=2, seed=3, encoded_by=0)
            assert lrq.hdf5.LRQ.from_dataset(d) == lrq.hdf5.LRQ(bits=2, seed=3)
            for corner in corners(data.shape, chunks):
                assert d.id.read_direct_chunk(corner)[1] == expected_stream(
                    padded_chunk(data, corner, chunks), "signcut", 3, {"bits": 2}), corner
            back = d[:]
            assert np.linalg.norm(back - data) / np.linalg.norm(data) < 0.8
    assert os.path.getsize(tmp_path / "out.h5") < os.path.getsize(tmp_path / "in.h5") / 8


def test_h5repack_copies_an_lrq_dataset_into_a_new_layout_with_the_same_request(tmp_path):
    a = low_rank_plus_noise((128, 96), seed=12)
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f.create_dataset("A", data=a, chunks=(128, 96), compression=lrq.hdf5.LRQ(bits=3, seed=2))
    out = run_h5repack("-l", "A:CHUNK=64x48", tmp_path / "in.h5", tmp_path / "out.h5")
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "in.h5", "r") as f:
        decoded = f["A"][:]
    with h5py.File(tmp_path / "out.h5", "r") as f:
        d = f["A"]
        assert d.chunks == (64, 48) and lrq.hdf5.LRQ.from_dataset(d) == lrq.hdf5.LRQ(bits=3, seed=2)
        for corner in corners(a.shape, d.chunks):  # the copy encodes what it read
            assert d.id.read_direct_chunk(corner)[1] == expected_stream(
                decoded[corner[0]:corner[0] + 64, corner[1]:corner[1] + 48], "signcut", 2, {"bits": 3})


def test_h5dump_prints_what_h5py_reads_of_c_encoded_chunks(tmp_path):
    from test_hdf5 import h5dump_values  # Debian's h5dump through the plugin (fails under CI=true if absent)

    a = low_rank_plus_noise((70, 50), dtype=np.float64, seed=13)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("A", data=a, chunks=(40, 50), compression=lrq.hdf5.LRQ(bits=3, c_storage="float16"))
        f.create_dataset("B", data=a, chunks=(40, 50), compression=lrq.hdf5.LRQ(scheme="dense", bits=20))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        expected = {name: f[name][:] for name in ("A", "B")}
    for name, values in expected.items():
        np.testing.assert_array_equal(h5dump_values(tmp_path / "a.h5", name).reshape(a.shape), values)


def test_h5repack_with_parameters_the_filter_refuses_makes_no_lrq_dataset(tmp_path):
    # The filter fails the dataset's creation; h5repack then copies the
    # dataset with its original settings and says so (-v), a choice of
    # h5repack's the filter cannot change: no chunk is ever stored
    # unfiltered under the lrq filter's name.
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["A"] = matrix((64, 64))
    out = run_h5repack("-v", "-l", "A:CHUNK=64x64", "-f", f"A:UD={lrq.hdf5.FILTER_ID},0,1,2",
                       tmp_path / "in.h5", tmp_path / "out.h5")
    assert "could not create dataset </A>" in out.stdout + out.stderr
    with h5py.File(tmp_path / "out.h5", "r") as f:
        plist = f["A"].id.get_create_plist()
        assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == []
        np.testing.assert_array_equal(f["A"][:], matrix((64, 64)))


def test_h5repack_of_a_chunk_the_encoder_refuses_fails_when_mandatory_and_keeps_it_when_optional(tmp_path):
    a = matrix((128, 64))
    a[3, 3] = np.inf
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["A"] = a
    request = ",".join(map(str, lrq.hdf5.LRQ(bits=2).filter_options))
    out = run_h5repack("-l", "A:CHUNK=64x64", "-f", f"A:UD={lrq.hdf5.FILTER_ID},0,6,{request}",
                       tmp_path / "in.h5", tmp_path / "mandatory.h5")
    assert out.returncode > 0  # an error, not a crash
    with h5py.File(tmp_path / "mandatory.h5", "r") as f:
        assert f["A"].id.get_num_chunks() < 2
    out = run_h5repack("-l", "A:CHUNK=64x64", "-f", f"A:UD={lrq.hdf5.FILTER_ID},1,6,{request}",
                       tmp_path / "in.h5", tmp_path / "optional.h5")
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "optional.h5", "r") as f:
        d = f["A"]
        assert [d.id.read_direct_chunk(c)[0] != 0 for c in ((0, 0), (64, 0))] == [True, False]
        np.testing.assert_array_equal(d[:64], a[:64])


# ---------------------------------------------------------------- damage


@pytest.mark.parametrize("filt", [lrq.hdf5.LRQ(bits=2), lrq.hdf5.LRQ(bits=3, c_storage="float16"),
                                  lrq.hdf5.LRQ(scheme="dense", bits=20)], ids=repr)
def test_sampled_byte_changes_of_c_encoded_chunks_are_os_errors(tmp_path, filt):
    a = matrix((96, 80), seed=10)
    rng = np.random.default_rng([RNG_SEED, 10])
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("A", data=a, chunks=(96, 80), compression=filt)
    with h5py.File(tmp_path / "a.h5", "r+", rdcc_nbytes=0) as f:
        d = f["A"]
        stream = d.id.read_direct_chunk((0, 0))[1]
        positions = np.unique(np.concatenate([np.arange(min(len(stream), 400)),
                                              rng.choice(len(stream), min(len(stream), 300), replace=False)]))
        for i in positions:
            bad = bytearray(stream)
            bad[i] ^= int(rng.integers(1, 256))
            d.id.write_direct_chunk((0, 0), bytes(bad))
            with pytest.raises(OSError):
                d[:]
        d.id.write_direct_chunk((0, 0), stream)
        np.testing.assert_array_equal(d[:], lrq.decode(lrq.loads(stream)))
