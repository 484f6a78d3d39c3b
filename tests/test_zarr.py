"""lrq.zarr: the "lrq" codec of Zarr v3 and numcodecs (spec/zarr-codec.md), found
through its entry points by processes that never import lrq, whose chunks are
`.lrq` streams, and lrq.zarr.Matrix products on the stored chunks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lrq
from _support import MEMORY_GROWTH_PRELUDE, assert_product_close

zarr = pytest.importorskip("zarr", reason="lrq.zarr needs zarr (in the test extra)")
numcodecs = pytest.importorskip("numcodecs", reason="lrq.zarr needs numcodecs (in the test extra)")
import lrq.zarr  # noqa: E402


def matrix(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def v3_array(path, a, chunks, codec, **kwargs):
    z = zarr.create_array(str(path), shape=a.shape, chunks=chunks, dtype=a.dtype, serializer=codec, **kwargs)
    z[:] = a
    return z


def fresh_python(script: str, *args) -> str:
    """Runs ``script`` in a new interpreter that must not import lrq by hand
    (it may only come in through an entry point)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_v3_array_round_trips_through_the_entry_point_in_a_fresh_interpreter(tmp_path):
    a = matrix((150, 100))
    z = v3_array(tmp_path / "a.zarr", a, (64, 64), lrq.zarr.LRQ(bits=2))
    here = z[:]
    assert lrq.zarr.LRQ(bits=2) in z.metadata.codecs
    np.save(tmp_path / "here.npy", here)
    # Reading, and writing a second array with the codec named by metadata only.
    out = fresh_python("""
        import sys, numpy as np, zarr
        z = zarr.open_array(sys.argv[1], mode="r")
        assert np.array_equal(z[:], np.load(sys.argv[2]))
        assert "lrq" in sys.modules and type(z.metadata.codecs[0]).__module__ == "lrq.zarr"
        codec = zarr.registry.get_codec_class("lrq").from_dict(z.metadata.codecs[0].to_dict())
        w = zarr.create_array(sys.argv[3], shape=(200, 150), chunks=(100, 150), dtype="float64", serializer=codec)
        w[:] = np.arange(30000.0).reshape(200, 150)
        print(type(codec).__name__)
    """, tmp_path / "a.zarr", tmp_path / "here.npy", tmp_path / "w.zarr")
    assert out.split() == ["LRQ"]
    w = zarr.open_array(str(tmp_path / "w.zarr"))
    ramp = np.arange(30000.0).reshape(200, 150)
    assert w.dtype == np.float64 and np.linalg.norm(w[:] - ramp) < 0.1 * np.linalg.norm(ramp)


def test_the_metadata_is_json_that_round_trips(tmp_path):
    codec = lrq.zarr.LRQ(scheme="signcut", rel_error=0.1, seed=7, c_storage="float16")
    stored = json.loads((v3_array(tmp_path / "a.zarr", matrix((40, 40)), (40, 40), codec).store_path.store.root
                         / "zarr.json").read_text())["codecs"][0]
    assert stored == {"name": "lrq", "configuration": {"version": 1, "scheme": "signcut", "rel_error": float(np.float32(0.1)),
                                                       "seed": 7, "c_storage": "float16"}}
    assert lrq.zarr.LRQ.from_dict(stored) == codec and lrq.zarr.LRQ.from_dict(codec.to_dict()).to_dict() == stored
    assert hash(lrq.zarr.LRQ.from_dict(stored)) == hash(codec)
    for options in ({"scheme": "dense", "storage": "float16"}, {"scheme": "lplr", "bits": 3}, {"width": 5}, {}):
        c = lrq.zarr.LRQ(**options)
        assert lrq.zarr.LRQ.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_bad_options_and_configurations_are_refused():
    with pytest.raises(lrq.ArgumentError, match="at most one"):
        lrq.zarr.LRQ(bits=2, rel_error=0.1)
    with pytest.raises(lrq.ArgumentError, match="scheme must be one of"):
        lrq.zarr.LRQ(scheme="zfp")
    with pytest.raises(lrq.ArgumentError, match="width= applies"):
        lrq.zarr.Numcodec(scheme="dense", width=3)
    with pytest.raises(lrq.UnsupportedError, match="version 2 is newer"):
        lrq.zarr.LRQ.from_dict({"name": "lrq", "configuration": {"version": 2}})
    with pytest.raises(lrq.FormatError, match="positive integer"):
        lrq.zarr.LRQ.from_dict({"name": "lrq", "configuration": {"version": "1"}})
    with pytest.raises(lrq.ArgumentError, match="float32 or float64"):
        zarr.create_array({}, shape=(4, 4), dtype="int32", serializer=lrq.zarr.LRQ())


def test_keys_of_a_newer_writer_are_read_but_not_written(tmp_path):
    z = v3_array(tmp_path / "a.zarr", matrix((40, 40)), (20, 20), lrq.zarr.LRQ(width=4))
    meta_path = tmp_path / "a.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"][0]["configuration"]["future_knob"] = 3
    meta_path.write_text(json.dumps(meta))
    again = zarr.open_array(str(tmp_path / "a.zarr"), mode="a")
    assert np.array_equal(again[:], z[:])
    with pytest.raises(lrq.UnsupportedError, match="future_knob"):
        again[:20, :20] = 1.0


def raw_chunk(zarray, coords) -> bytes:
    return lrq.zarr.read_chunk(zarray, coords)


def test_chunks_are_lrq_streams_with_the_bytes_of_lrq_encode(tmp_path):
    a = matrix((200, 180), seed=3)
    z = v3_array(tmp_path / "a.zarr", a, (128, 128), lrq.zarr.LRQ(bits=2, seed=5), compressors=None)
    stored = (tmp_path / "a.zarr" / "c" / "0" / "0").read_bytes()
    assert stored == lrq.dumps(lrq.encode(a[:128, :128], "signcut", bits=2, seed=5, c_storage="float32", name="chunk"))
    # Edge chunks are what Zarr hands the codec: padded with the fill value.
    edge = lrq.loads((tmp_path / "a.zarr" / "c" / "1" / "1").read_bytes())
    assert edge.shape == (128, 128)
    padded = np.zeros((128, 128), np.float32)
    padded[:72, :52] = a[128:, 128:]
    assert lrq.dumps(edge) == lrq.dumps(lrq.encode(padded, "signcut", bits=2, seed=5, name="chunk"))
    assert np.array_equal(z[128:, 128:], lrq.decode(edge)[:72, :52])
    # With Zarr's default zstd after it, the stream is what zstd gives back.
    zz = v3_array(tmp_path / "z.zarr", a, (128, 128), lrq.zarr.LRQ(bits=2, seed=5))
    assert raw_chunk(zz, (0, 0)) == stored
    assert (tmp_path / "z.zarr" / "c" / "0" / "0").read_bytes() != stored


def test_every_single_byte_corruption_of_a_chunk_raises_an_lrq_error_from_zarr(tmp_path):
    a = matrix((24, 24), seed=1)
    for codec in (lrq.zarr.LRQ(width=3), lrq.zarr.LRQ(scheme="dense", storage="float16")):
        z = v3_array(tmp_path / "a.zarr", a, (24, 24), codec, compressors=None, overwrite=True)
        chunk = tmp_path / "a.zarr" / "c" / "0" / "0"
        good = chunk.read_bytes()
        reopened = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
        for position in range(len(good)):
            bad = bytearray(good)
            bad[position] ^= 0xFF
            chunk.write_bytes(bytes(bad))
            with pytest.raises(lrq.LrqError):
                reopened[:]
        chunk.write_bytes(good[:-1])
        with pytest.raises(lrq.LrqError):
            reopened[:]
        chunk.write_bytes(good)
        assert np.array_equal(reopened[:], z[:])


def test_a_chunk_of_another_shape_or_type_is_a_format_error(tmp_path):
    z = v3_array(tmp_path / "a.zarr", matrix((40, 40)), (20, 20), lrq.zarr.LRQ(width=2), compressors=None)
    chunk = tmp_path / "a.zarr" / "c" / "0" / "0"
    chunk.write_bytes(lrq.dumps(lrq.encode(matrix((30, 20)), "signcut", width=2)))
    with pytest.raises(lrq.FormatError, match=r"H5-2, H5-3"):
        z[:]
    chunk.write_bytes(lrq.dumps(lrq.encode(matrix((20, 20), dtype=np.float64), "signcut", width=2)))
    with pytest.raises(lrq.FormatError, match="float64 tensor"):
        z[:]
    # A smaller tensor is the chunk's leading corner [H5-4].
    small = lrq.encode(matrix((10, 20)), "signcut", width=2)
    chunk.write_bytes(lrq.dumps(small))
    assert np.array_equal(z[:10, :20], lrq.decode(small)) and not z[10:20, :20].any()


def test_a_numcodecs_round_trip_through_the_entry_point(tmp_path):
    a = matrix((50, 40), seed=2)
    codec = lrq.zarr.Numcodec(bits=3, seed=1)
    stream = codec.encode(a)
    assert stream == lrq.dumps(lrq.encode(a, "signcut", bits=3, seed=1, name="chunk"))
    assert np.array_equal(codec.decode(stream), lrq.decode(lrq.loads(stream)))
    out = np.empty_like(a)
    assert codec.decode(stream, out=out) is out and np.array_equal(out, lrq.decode(lrq.loads(stream)))
    assert lrq.zarr.Numcodec.from_config(codec.get_config()) == codec
    assert codec.get_config() == {"id": "lrq", "version": 1, "scheme": "signcut", "bits": 3.0, "seed": 1,
                                  "c_storage": "float32"}
    with pytest.raises(lrq.ArgumentError, match="needs the chunk's shape"):
        codec.encode(a.tobytes())
    with pytest.raises(lrq.ArgumentError, match="C-contiguous"):
        codec.encode(np.asfortranarray(a))
    with pytest.raises(lrq.ArgumentError, match="out holds"):
        codec.decode(stream, out=np.empty(3, np.float32))
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "stream").write_bytes(stream)
    fresh_python("""
        import sys, numpy as np, numcodecs
        codec = numcodecs.get_codec({"id": "lrq", "bits": 3, "seed": 1})
        a = np.load(sys.argv[1])
        assert codec.encode(a) == open(sys.argv[2], "rb").read()
        assert np.abs(codec.decode(codec.encode(a)) - a).max() < 4
    """, tmp_path / "a.npy", tmp_path / "stream")


def test_a_zarr_v2_array_with_the_numcodecs_codec(tmp_path):
    a = matrix((200, 150), seed=4)
    z = zarr.create_array(str(tmp_path / "v2.zarr"), shape=a.shape, chunks=(128, 128), dtype=a.dtype, zarr_format=2,
                          compressors=lrq.zarr.Numcodec(bits=2), filters=None)
    z[:] = a
    assert json.loads((tmp_path / "v2.zarr" / ".zarray").read_text())["compressor"]["id"] == "lrq"
    np.save(tmp_path / "here.npy", z[:])
    fresh_python("""
        import sys, numpy as np, zarr
        assert np.array_equal(zarr.open_array(sys.argv[1], mode="r")[:], np.load(sys.argv[2]))
    """, tmp_path / "v2.zarr", tmp_path / "here.npy")
    x = matrix(150, seed=5)
    assert_product_close(lrq.zarr.Matrix(z) @ x, z[:], x, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_on_the_stored_chunks_equal_products_with_the_decoded_array(tmp_path, dtype):
    a = matrix((330, 175), seed=6, dtype=dtype)
    z = v3_array(tmp_path / "a.zarr", a, (128, 96), lrq.zarr.LRQ(scheme="auto", bits=4))
    dense = z[:]
    m = lrq.zarr.Matrix(z)
    x, y, X = matrix(175, 1), matrix(330, 2), matrix((175, 4), 3)
    result = m @ x
    assert result.dtype == dtype and (m @ x.astype(np.float64)).dtype == np.float64
    # The factors multiply in float32 (spec [NUM-1]) whatever the result's type.
    assert_product_close(result, dense, x, np.float32)
    assert_product_close(m.T @ y, dense.T, y, np.float32)
    assert_product_close(m @ X, dense, X, np.float32)
    assert_product_close(m @ x.astype(np.float64), dense, x, np.float32)
    with pytest.raises(lrq.ArgumentError, match="do not multiply"):
        m @ np.ones(176)


def test_products_never_decode_a_chunk(tmp_path, monkeypatch):
    a = matrix((64, 64), seed=7)
    z = v3_array(tmp_path / "a.zarr", a, (32, 32), lrq.zarr.LRQ(width=6))
    dense = z[:]

    def refuse(*args, **kwargs):
        raise AssertionError("a chunk was decoded")

    monkeypatch.setattr(lrq.Matrix, "decode", refuse)
    monkeypatch.setattr(lrq.zarr.LRQ, "_decode_sync", refuse)
    x = matrix(64, 1)
    assert_product_close(lrq.zarr.Matrix(z) @ x, dense, x, np.float32)


def test_chunks_the_store_does_not_hold_are_the_fill_value(tmp_path):
    for fill in (0.0, 2.5):
        z = zarr.create_array(str(tmp_path / f"f{fill}.zarr"), shape=(50, 40), chunks=(25, 20), dtype="float32",
                              serializer=lrq.zarr.LRQ(width=4), fill_value=fill)
        z[:25, :20] = matrix((25, 20))
        assert not (tmp_path / f"f{fill}.zarr" / "c" / "1" / "1").exists()
        x = matrix(40, 2)
        assert_product_close(lrq.zarr.Matrix(z) @ x, z[:], x, np.float32)
        y = matrix(50, 3)
        assert_product_close(lrq.zarr.Matrix(z).T @ y, z[:].T, y, np.float32)


def test_arrays_whose_chunks_are_not_lrq_streams_are_refused(tmp_path):
    plain = zarr.create_array(str(tmp_path / "p.zarr"), shape=(8, 8), dtype="float32")
    with pytest.raises(lrq.UnsupportedError, match="lrq serializer first"):
        lrq.zarr.Matrix(plain)
    sharded = zarr.create_array(str(tmp_path / "s.zarr"), shape=(8, 8), chunks=(4, 4), shards=(8, 8), dtype="float32",
                                serializer=lrq.zarr.LRQ(width=1))
    with pytest.raises(lrq.UnsupportedError):
        lrq.zarr.Matrix(sharded)
    with pytest.raises(lrq.ArgumentError, match="zarr.Array"):
        lrq.zarr.Matrix(np.ones((3, 3)))


def test_a_corrupt_chunk_in_a_product_names_the_chunk(tmp_path):
    z = v3_array(tmp_path / "a.zarr", matrix((40, 40)), (20, 20), lrq.zarr.LRQ(width=2), compressors=None)
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0"
    bad = bytearray(chunk.read_bytes())
    bad[-1] ^= 1
    chunk.write_bytes(bytes(bad))
    with pytest.raises(lrq.LrqError, match=r"chunk \(1, 0\)"):
        lrq.zarr.Matrix(z) @ np.ones(40, np.float32)


@pytest.mark.slow
def test_products_over_a_large_array_stay_within_a_few_chunks_of_memory(tmp_path):
    # 4608 x 8192 float32: 144 MiB dense, a few MiB stored, written chunk by
    # chunk.  The products run in a fresh interpreter; reading the array
    # dense afterwards shows that the measurement sees such growth.
    rows, cols, edge = 4608, 8192, 512
    z = zarr.create_array(str(tmp_path / "big.zarr"), shape=(rows, cols), chunks=(edge, edge), dtype="float32",
                          serializer=lrq.zarr.LRQ(width=2))
    for r0 in range(0, rows, edge):
        for c0 in range(0, cols, edge):
            z[r0:r0 + edge, c0:c0 + edge] = matrix((edge, edge), seed=r0 * cols + c0)
    assert rows * cols * 4 > 128 * 2**20
    script = MEMORY_GROWTH_PRELUDE + """
import sys, numpy as np, zarr, lrq.zarr

z = zarr.open_array(sys.argv[1], mode="r")
m = lrq.zarr.Matrix(z)
x = np.ones(m.shape[1], np.float32)
m @ x  # warm up: imports, kernels, scratch
products, _ = growth(lambda: m.T @ (m @ x) + (m @ np.ones((m.shape[1], 4), np.float32)).sum())
dense, _ = growth(lambda: z[:])
print(products, dense)
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.zarr")], capture_output=True,
                         text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    growth, dense_growth = (int(v) for v in out.stdout.split()[:2])
    assert growth < 32 * 2**20 and dense_growth > 64 * 2**20, (growth, dense_growth)


def test_lrq_imports_its_doors_dependencies_only_when_a_door_is_used():
    out = fresh_python("""
        import sys
        import lrq, lrq.chunks, lrq.cli
        doors = ("zarr", "numcodecs", "dask", "distributed", "h5py")
        print(sorted(m for m in doors if m in sys.modules))
        import lrq.zarr
        print("zarr" in sys.modules and "dask" not in sys.modules and "h5py" not in sys.modules)
    """)
    assert out.split("\n")[:2] == ["[]", "True"]
