"""lrq.dask: matrices of compressed tiles whose products run blockwise on Dask,
the same bits on the threaded scheduler and on a dask.distributed cluster of
worker processes, and encoding on the workers with lrq.encode's bytes, also
when a worker is killed mid-way."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import lrq
from _support import assert_product_close

dask = pytest.importorskip("dask", reason="lrq.dask needs dask (in the test extra)")
da = pytest.importorskip("dask.array", reason="lrq.dask needs dask.array (in the test extra)")
distributed = pytest.importorskip("distributed", reason="the cluster tests need dask.distributed (in the test extra)")
h5py = pytest.importorskip("h5py", reason="from_hdf5 needs h5py (in the test extra)")
zarr = pytest.importorskip("zarr", reason="from_zarr needs zarr (in the test extra)")
import lrq.dask  # noqa: E402
import lrq.hdf5  # noqa: E402
import lrq.zarr  # noqa: E402


def matrix(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture(scope="module")
def client():
    """A real cluster: 2 worker processes of one thread each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One matrix as a tiled .lrq file, an lrq Zarr array and an lrq HDF5 dataset."""
    folder = tmp_path_factory.mktemp("stored")
    a = matrix((700, 530), seed=1)
    m = lrq.encode(a, "auto", bits=3, tile_shape=(256, 200))
    lrq.save(folder / "a.lrq", {"W": m, "other": np.arange(3.0)})
    z = zarr.create_array(str(folder / "a.zarr"), shape=a.shape, chunks=(256, 200), dtype=a.dtype,
                          serializer=lrq.zarr.LRQ(bits=3))
    z[:] = a
    with h5py.File(folder / "a.h5", "w") as f:
        lrq.hdf5.write(f, "A", a, chunks=(256, 200), scheme="signcut", bits=3)
    return {"dense": a, "matrix": m, "lrq": folder / "a.lrq", "zarr": z, "h5": folder / "a.h5"}


def sources(stored):
    with h5py.File(stored["h5"], "r") as f:
        h5_dense = f["A"][:]
    return [
        ("lrq", lrq.dask.from_lrq(stored["lrq"], "W"), lrq.decode(stored["matrix"])),
        ("zarr", lrq.dask.from_zarr(stored["zarr"]), stored["zarr"][:]),
        ("hdf5", lrq.dask.from_hdf5(stored["h5"], "A"), h5_dense),
    ]


def products(a, rows, cols):
    x, y, X = matrix(cols, 2), matrix(rows, 3), matrix((cols, 5), 4)
    return x, y, X, [a @ x, a.T @ y, a @ X, a @ da.from_array(X, chunks=(100, 2))]


def test_products_are_dask_arrays_of_the_tiles_partial_products(stored):
    for label, a, dense in sources(stored):
        assert a.shape == dense.shape and a.chunks == ((256, 256, 188), (200, 200, 130)), label
        x, y, X, results = products(a, *a.shape)
        assert all(isinstance(r, da.Array) for r in results)
        assert results[0].chunks == ((256, 256, 188),)
        got = dask.compute(*results, scheduler="threads")
        assert_product_close(got[0], dense, x, np.float32)
        assert_product_close(got[1], dense.T, y, np.float32)
        assert_product_close(got[2], dense, X, np.float32)
        assert np.array_equal(got[3], got[2]), label
        assert np.array_equal(a.decode().compute(), dense), label


def test_with_three_tiles_a_row_the_products_are_those_of_the_lrq_matrix(stored):
    # Dask sums up to split_every partials in one step, in order: the sum
    # lrq.Matrix makes over a block row of tiles.
    a, m = lrq.dask.from_lrq(stored["lrq"], "W"), stored["matrix"]
    x, y, X, results = products(a, *a.shape)
    got = dask.compute(*results[:3], scheduler="threads")
    assert np.array_equal(got[0], m @ x) and np.array_equal(got[1], m.T @ y) and np.array_equal(got[2], m @ X)


def test_the_cluster_computes_the_same_bits_as_the_threaded_scheduler(stored, client):
    for label, a, _ in sources(stored):
        _, _, _, results = products(a, *a.shape)
        here = dask.compute(*results, scheduler="threads")
        there = client.compute(results, sync=True)
        for h, t in zip(here, there):
            assert h.dtype == t.dtype and np.array_equal(h, t), label
    persisted = lrq.dask.from_lrq(stored["lrq"], "W").persist()
    x = matrix(530, 9)
    assert np.array_equal(client.compute(persisted @ x, sync=True), (lrq.dask.from_lrq(stored["lrq"], "W") @ x).compute())


def test_product_operands_are_checked(stored):
    a = lrq.dask.from_lrq(stored["lrq"], "W")
    with pytest.raises(lrq.ArgumentError, match="do not multiply"):
        a @ np.ones(3)
    with pytest.raises(lrq.ArgumentError, match="real vector or matrix"):
        a @ da.ones((530, 2, 2))
    with pytest.raises(lrq.ArgumentError, match="pass name="):
        lrq.dask.from_lrq(stored["lrq"])
    with pytest.raises(lrq.ArgumentError, match="not a matrix"):
        lrq.dask.from_lrq(stored["lrq"], "other")


def test_a_corrupt_tile_fails_the_computation_with_an_lrq_error(tmp_path):
    a = matrix((64, 64))
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=a.shape, chunks=(32, 32), dtype=a.dtype,
                          serializer=lrq.zarr.LRQ(width=4), compressors=None)
    z[:] = a
    chunk = tmp_path / "a.zarr" / "c" / "1" / "1"
    bad = bytearray(chunk.read_bytes())
    bad[-1] ^= 1
    chunk.write_bytes(bytes(bad))
    with pytest.raises(lrq.LrqError, match=r"chunk \(1, 1\)"):
        (lrq.dask.from_zarr(str(tmp_path / "a.zarr")) @ np.ones(64, np.float32)).compute()


@pytest.mark.parametrize("scheme,options", [("signcut", {"bits": 2}), ("auto", {"bits": 3}),
                                            ("lplr", {"rel_error": 0.5}), ("dense", {"storage": "float16"})])
def test_encoding_on_dask_writes_the_bytes_of_lrq_encode(tmp_path, scheme, options):
    a = matrix((500, 300), seed=5, dtype=np.float64) * 1e-3
    want = lrq.dumps(lrq.encode(a, scheme, tile_shape=(128, 128), seed=3, name="W", **options))
    seen = []
    got = lrq.dask.encode(da.from_array(a, chunks=(90, 170)), tmp_path / "a.lrq", scheme, tile_shape=(128, 128),
                          seed=3, name="W", progress=lambda f, m: seen.append((f, m)), **options)
    assert (tmp_path / "a.lrq").read_bytes() == want and lrq.dumps(got) == want
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) == 4 * 3 + 1
    assert seen[0][1] == "tile 1/12 encoded"


def test_encoding_checks_the_input_as_lrq_encode_does(tmp_path):
    a = matrix((40, 40))
    a[3, 4] = np.nan
    with pytest.raises(lrq.ArgumentError, match="1 NaN or infinite"):
        lrq.dask.encode(da.from_array(a, chunks=20), tmp_path / "a.lrq", "signcut", width=2)
    with pytest.raises(lrq.ArgumentError, match="floating-point"):
        lrq.dask.encode(da.ones((4, 4), dtype=np.int32, chunks=2), tmp_path / "a.lrq")
    with pytest.raises(lrq.BudgetError):
        lrq.dask.encode(da.ones((4, 4), chunks=2), tmp_path / "a.lrq", "signcut", bits=1)
    assert not os.listdir(tmp_path)


def test_a_failing_tile_leaves_no_file(tmp_path):
    # rel_error far below what 3 cuts reach on a tile: the tile's encoder fails.
    a = matrix((256, 256))
    with pytest.raises(lrq.BudgetError, match="cannot reach"):
        lrq.dask.encode(da.from_array(a, chunks=128), tmp_path / "a.lrq", "lplr", rel_error=1e-6, rank=1,
                        tile_shape=(128, 128))
    assert not os.listdir(tmp_path)


def test_the_cluster_encodes_the_bytes_of_lrq_encode(tmp_path, client):
    a = matrix((600, 520), seed=6)
    want = lrq.dumps(lrq.encode(a, "auto", bits=2.5, tile_shape=(128, 128), name="W"))
    got = lrq.dask.encode(da.from_array(a, chunks=(256, 256)), tmp_path / "a.lrq", "auto", bits=2.5,
                          tile_shape=(128, 128), name="W", client=client)
    assert (tmp_path / "a.lrq").read_bytes() == want and lrq.dumps(got) == want


def test_to_zarr_on_the_cluster_writes_the_chunks_the_codec_writes_in_one_process(tmp_path, client):
    a = matrix((300, 260), seed=7)
    here = zarr.create_array(str(tmp_path / "here.zarr"), shape=a.shape, chunks=(128, 128), dtype=a.dtype,
                             serializer=lrq.zarr.LRQ(bits=2), fill_value=0)
    here[:] = a
    lrq.dask.to_zarr(da.from_array(a, chunks=(100, 100)), str(tmp_path / "there.zarr"), chunks=(128, 128), bits=2,
                     client=client)
    for i in range(3):
        for j in range(3):
            assert lrq.zarr.read_chunk(zarr.open_array(str(tmp_path / "there.zarr")), (i, j)) == \
                lrq.zarr.read_chunk(here, (i, j))


@pytest.mark.slow
def test_killing_a_worker_during_an_encode_still_writes_the_bytes_of_lrq_encode(tmp_path, client):
    a = matrix((1024, 768), seed=8)
    want = lrq.dumps(lrq.encode(a, "signcut", bits=4, tile_shape=(256, 128), name="W"))
    before = client.run(os.getpid)
    killed = []

    def progress(fraction, message):
        if not killed and message.startswith("tile "):
            victim = next(iter(before.values()))
            os.kill(victim, signal.SIGKILL)
            killed.append((victim, fraction))

    got = lrq.dask.encode(da.from_array(a, chunks=(256, 256)), tmp_path / "a.lrq", "signcut", bits=4,
                          tile_shape=(256, 128), name="W", client=client, progress=progress)
    assert killed and killed[0][1] < 0.5  # most tiles were still to come when the worker died
    assert (tmp_path / "a.lrq").read_bytes() == want and lrq.dumps(got) == want
    client.wait_for_workers(2, timeout=60)
    assert killed[0][0] not in client.run(os.getpid).values()


def test_lrq_compress_with_a_scheduler_writes_the_bytes_of_lrq_compress(tmp_path, client):
    from lrq.cli import main

    np.save(tmp_path / "a.npy", matrix((300, 260), seed=9))
    argv = ["compress", str(tmp_path / "a.npy"), "--scheme", "signcut", "--bits", "2", "--tile", "128", "128", "--quiet"]
    assert main(argv + [str(tmp_path / "here.lrq")]) == 0
    assert main(argv + [str(tmp_path / "there.lrq"), "--scheduler", client.scheduler.address]) == 0
    assert (tmp_path / "there.lrq").read_bytes() == (tmp_path / "here.lrq").read_bytes()
    assert main(argv + [str(tmp_path / "x.h5"), "--scheduler", client.scheduler.address]) == 2
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main(argv + [str(tmp_path / "y.lrq"), "--scheduler", "tcp://127.0.0.1:9"]) == 3
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.lrq").exists()


def test_a_matrix_of_one_tile_encodes_on_dask_as_in_one_process():
    # lrq.encode gives a lone tile every thread (C and BLAS); a worker one.
    a = matrix((300, 200), seed=10)
    for scheme in ("auto", "lplr", "signcut"):
        want = lrq.dumps(lrq.encode(a, scheme, bits=3))
        assert lrq.dumps(lrq.dask.encode(da.from_array(a, chunks=100), None, scheme, bits=3)) == want, scheme
