"""``lrq compress`` / ``decompress`` / ``info`` on HDF5 files: an lrq-filtered
copy of an HDF5 file (groups, attributes, links and the other datasets kept),
decoding it back to plain datasets or other formats, and listing its
lrq-filtered datasets."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import lrq
from lrq import cli

h5py = pytest.importorskip("h5py", reason="HDF5 files need h5py (in the test extra)")
import lrq.hdf5  # noqa: E402

from test_cli_scripting import lrq_command  # noqa: E402

RNG_SEED = 20261203


def values(shape, dtype=np.float32, seed=0) -> np.ndarray:
    rng = np.random.default_rng([RNG_SEED, seed])
    # a decaying spectrum, so that a few bits per entry give a useful error
    left, right = rng.standard_normal((shape[0], 24)), rng.standard_normal((24, shape[1]))
    scales = 0.7 ** np.arange(24)
    return ((left * scales) @ right + 0.05 * rng.standard_normal(shape)).astype(dtype)


@pytest.fixture
def source(tmp_path):
    """An HDF5 file of every kind of member the copy must keep."""
    path = tmp_path / "in.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "run 7"
        f.attrs["steps"] = np.int32(3)
        layer = f.create_group("layer")
        layer.attrs["kind"] = "dense"
        weight = layer.create_dataset("W", data=values((300, 500)).astype(">f4"), compression="gzip")
        weight.attrs["units"] = "V"
        f["D"] = values((130, 90), np.float64, seed=1)
        f.create_dataset("bias", data=np.arange(500, dtype=np.float32), compression="gzip", chunks=(100,))
        f["count"] = np.arange(12).reshape(3, 4)
        f["half"] = values((64, 64), np.float16, seed=2)
        f["stack"] = values((40, 20), seed=3).reshape(2, 20, 20)
        f["alias"] = h5py.SoftLink("/layer/W")
    return path


def run(*args):
    """``lrq ARGS`` in this process: (status, stdout, stderr)."""
    return cli.main([str(a) for a in args])


def test_compress_h5_to_h5_filters_every_2d_float_dataset_and_keeps_the_rest(tmp_path, source, capsys):
    out = tmp_path / "out.h5"
    assert run("compress", source, out, "--bits", "2", "-v") == cli.EXIT_OK
    err = capsys.readouterr().err
    with h5py.File(source) as f, h5py.File(out) as g:
        for name in ("layer/W", "D"):
            d = g[name]
            assert lrq.hdf5.encoding_request(d)["bits"] == 2.0
            assert d.dtype == np.dtype(f[name].dtype.name)  # native byte order
            a = f[name][:].astype(np.float64)
            error = np.linalg.norm(g[name][:] - a) / np.linalg.norm(a)
            assert error < 0.5
            # the reported error is the dataset's, combined from the chunks' own
            reported = float(err.split(f"\n  {name}: ")[1].split("rel_error ")[1].split(",")[0])
            assert reported == pytest.approx(error, rel=1e-3)
            # even chunks: every chunk holds at most 2 bits per entry, so the dataset does
            assert d.id.get_storage_size() * 8 <= 2 * a.size
        # 300 x 500 in 256-at-most chunks split evenly; 130 x 90 is one chunk
        assert g["layer/W"].chunks == (150, 250) and g["D"].chunks == (130, 90)
        assert dict(g.attrs) == dict(f.attrs) and g["layer"].attrs["kind"] == "dense"
        assert g["layer/W"].attrs["units"] == "V"
        assert g.get("alias", getlink=True).path == "/layer/W"
        for name in ("bias", "count", "half", "stack"):
            assert g[name].dtype == f[name].dtype and g[name].compression == f[name].compression
            np.testing.assert_array_equal(g[name][()], f[name][()])
    for name, reason in (("bias", "1-D"), ("count", "int64"), ("half", "float16"), ("stack", "3-D")):
        assert reason in err.split(f"\n  {name}: ")[1].splitlines()[0]
    assert "6 datasets (2 lrq-filtered)" in err


def test_dimension_scales_and_object_references_point_into_the_copy(tmp_path, capsys):
    src, out, plain = tmp_path / "in.h5", tmp_path / "out.h5", tmp_path / "plain.h5"
    with h5py.File(src, "w") as f:
        f["x"], f["y"] = np.arange(100.0), np.arange(80.0)
        f["A"] = values((100, 80))
        f["x"].make_scale("x")
        f["y"].make_scale("y")
        f["A"].dims[0].attach_scale(f["x"])
        f["A"].dims[1].attach_scale(f["y"])
        f["A"].dims[0].label = "time"
        f.attrs["first"] = f["x"].ref
        f.attrs["both"] = np.array([f["A"].ref, f["y"].ref], dtype=h5py.ref_dtype)
        f.attrs["region"] = f["A"].regionref[0:3, 0:2]
    assert run("compress", src, out, "--bits", "4") == 0
    assert "attribute 'region' of '/' holds references of a kind the copy cannot carry over" in capsys.readouterr().err
    assert run("decompress", out, plain, "-q") == 0
    for path in (out, plain):
        with h5py.File(path) as g:
            a = g["A"]
            assert [s.name for s in a.dims[0].values()] == ["/x"] and [s.name for s in a.dims[1].values()] == ["/y"]
            assert a.dims[0].label == "time" and g["x"].is_scale
            assert g[g.attrs["first"]].name == "/x" and [g[r].name for r in g.attrs["both"]] == ["/A", "/y"]
            assert "region" not in g.attrs
    with h5py.File(out) as g:
        assert lrq.hdf5.encoding_request(g["A"])["bits"] == 4.0


def test_tile_gives_the_chunk_shape(tmp_path, source):
    out = tmp_path / "out.h5"
    assert run("compress", source, out, "--bits", "3", "--tile", "128", "100", "-q", "--include", "layer/*") == 0
    with h5py.File(out) as g:
        assert g["layer/W"].chunks == (128, 100)
        assert g["D"].id.get_create_plist().get_nfilters() == 0  # left out by --include
        m = lrq.hdf5.Matrix(g["layer/W"])
        x = np.ones(500, np.float32)
        np.testing.assert_allclose(m @ x, g["layer/W"][:] @ x, rtol=1e-3, atol=1e-2)


def test_a_dataset_too_small_for_the_target_is_copied_with_the_reason(tmp_path, capsys):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    with h5py.File(src, "w") as f:
        f["tiny"] = values((4, 4))
    assert run("compress", src, out, "--bits", "1") == 0
    assert "tiny: too small for the target" in capsys.readouterr().err
    with h5py.File(out) as g:
        np.testing.assert_array_equal(g["tiny"][:], values((4, 4)))


def test_decompress_a_filtered_file_to_plain_datasets(tmp_path, source):
    filtered, plain = tmp_path / "f.h5", tmp_path / "plain.h5"
    assert run("compress", source, filtered, "--bits", "2", "-q") == 0
    assert run("decompress", filtered, plain, "-q") == 0
    with h5py.File(filtered) as f, h5py.File(plain) as g:
        for name in ("layer/W", "D"):
            assert g[name].id.get_create_plist().get_nfilters() == 0
            np.testing.assert_array_equal(g[name][:], f[name][:])
        assert g["layer/W"].attrs["units"] == "V" and dict(g.attrs) == dict(f.attrs)
        np.testing.assert_array_equal(g["bias"][:], np.arange(500, dtype=np.float32))
    # the plain copy reads without the plugin (a fresh interpreter that never imports lrq.hdf5)
    status, out, err = _python(f"import h5py; print(h5py.File({str(plain)!r})['layer/W'][:].sum())")
    assert status == 0, err


def _python(code: str):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_decompress_a_filtered_file_to_other_formats(tmp_path, source, suffix):
    filtered, out = tmp_path / "f.h5", tmp_path / ("out" + suffix)
    assert run("compress", source, filtered, "--bits", "2", "-q") == 0
    assert run("decompress", filtered, out, "-q") == 0
    with h5py.File(filtered) as f:
        if suffix == ".npz":
            with np.load(out) as restored:
                np.testing.assert_array_equal(restored["layer/W"], f["layer/W"][:])
                np.testing.assert_array_equal(restored["count"], f["count"][:])
        else:
            from lrq import safetensors_file

            tensors = {t.name: t.values for t in safetensors_file.read(str(out))[0]}
            np.testing.assert_array_equal(tensors["D"], f["D"][:])


def test_compress_a_filtered_file_to_lrq_reads_the_decoded_values(tmp_path, source):
    filtered, out = tmp_path / "f.h5", tmp_path / "out.lrq"
    assert run("compress", source, filtered, "--bits", "2", "-q") == 0
    assert run("compress", filtered, out, "--scheme", "dense", "-q") == 0
    with h5py.File(filtered) as f, lrq.open(out) as g:
        np.testing.assert_array_equal(lrq.decode(g["layer/W"]), f["layer/W"][:])


def test_decompress_lrq_to_h5_writes_plain_datasets_and_the_metadata(tmp_path):
    a, b = values((60, 40)), np.arange(10, dtype=np.int16)
    src, out = tmp_path / "m.lrq", tmp_path / "m.h5"
    lrq.save(src, {"block/weight": lrq.encode(a, "signcut", bits=4), "steps": b}, metadata={"origin": "test"})
    assert run("decompress", src, out, "-q") == 0
    with h5py.File(out) as g, lrq.open(src) as f:
        assert isinstance(g["block"], h5py.Group)
        np.testing.assert_array_equal(g["block/weight"][:], lrq.decode(f["block/weight"]))
        assert g["block/weight"].id.get_create_plist().get_nfilters() == 0
        np.testing.assert_array_equal(g["steps"][:], b) and g["steps"].dtype == np.int16
        assert g.attrs["origin"] == "test"


def test_info_lists_the_lrq_filtered_datasets(tmp_path, source, capsys):
    filtered = tmp_path / "f.h5"
    assert run("compress", source, filtered, "--bits", "2", "--scheme", "signcut", "-q") == 0
    capsys.readouterr()
    assert run("info", filtered, "-v") == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("layer/W "))
    assert "300×500" in row and "signcut" in row and "bits=2" in row and "150×250" in row
    assert "not lrq-filtered: bias: 500 float32, chunks 100, filters: deflate" in out
    assert run("info", filtered, "--json") == 0
    (record,) = json.loads(capsys.readouterr().out)
    described = {d["name"]: d for d in record["datasets"]}
    assert set(described) == {"layer/W", "D"}
    with h5py.File(filtered) as f:
        d = f["layer/W"]
        streams = [lrq.loads(d.id.read_direct_chunk(d.id.get_chunk_info(i).chunk_offset)[1])
                   for i in range(d.id.get_num_chunks())]
        w = described["layer/W"]
        assert w["worst_chunk_rel_error"] == max(s.rel_error for s in streams)
        assert w["chunk_schemes"] == {"signcut": 4} and w["chunks"] == [150, 250]
        assert w["bits_per_entry"] == pytest.approx(d.id.get_storage_size() * 8 / d.size)
    assert {o["name"] for o in record["other_datasets"]} == {"bias", "count", "half", "stack"}


def test_info_of_a_file_without_lrq_datasets(source, capsys):
    assert run("info", source) == 0
    assert "0 lrq-filtered datasets (of 6)" in capsys.readouterr().out


def listing(folder):
    return sorted(os.listdir(folder))


def test_errors(tmp_path, source, capsys):
    before = source.read_bytes()
    # the output is the input, also through a link
    (tmp_path / "link.h5").symlink_to(source)
    for out in (source, tmp_path / "link.h5"):
        assert run("compress", source, out) == cli.EXIT_USAGE
    assert source.read_bytes() == before
    # an HDF5 output needs an HDF5 input
    np.save(tmp_path / "a.npy", values((8, 8)))
    assert run("compress", tmp_path / "a.npy", tmp_path / "a.h5") == cli.EXIT_USAGE
    assert "write a .lrq file instead" in capsys.readouterr().err
    # not an HDF5 file, a missing one
    (tmp_path / "junk.h5").write_bytes(b"not hdf5" * 10)
    assert run("compress", tmp_path / "junk.h5", tmp_path / "o.h5") == cli.EXIT_BAD_INPUT
    assert run("info", tmp_path / "junk.h5") == cli.EXIT_BAD_INPUT
    assert run("compress", tmp_path / "missing.h5", tmp_path / "o.h5") == cli.EXIT_FILE
    assert "not a readable HDF5 file" in capsys.readouterr().err
    # --tensor does not apply to an HDF5 copy
    assert run("decompress", source, tmp_path / "o.h5", "--tensor", "D") == cli.EXIT_USAGE
    assert listing(tmp_path) == ["a.npy", "in.h5", "junk.h5", "link.h5"]


def test_nan_in_a_dataset_leaves_no_output(tmp_path, capsys):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    a = values((100, 80))
    a[70, 33] = np.nan
    with h5py.File(src, "w") as f:
        f["ok"] = values((50, 50))
        f["g/bad"] = a
    assert run("compress", src, out, "--bits", "2") == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "dataset 'g/bad' holds NaN or infinity (first at index [70, 33])" in err
    assert listing(tmp_path) == ["in.h5"]


def test_a_damaged_chunk_is_a_bad_input_naming_the_chunk(tmp_path, source, capsys):
    filtered = tmp_path / "f.h5"
    assert run("compress", source, filtered, "--bits", "2", "-q") == 0
    with h5py.File(filtered, "r+") as f:
        d = f["layer/W"]
        stream = bytearray(d.id.read_direct_chunk((150, 0))[1])
        stream[len(stream) // 2] ^= 0x40
        d.id.write_direct_chunk((150, 0), bytes(stream))
    capsys.readouterr()
    assert run("decompress", filtered, tmp_path / "plain.h5") == cli.EXIT_BAD_INPUT
    assert "dataset 'layer/W' chunk at (150, 0)" in capsys.readouterr().err
    assert run("info", filtered) == cli.EXIT_BAD_INPUT
    assert "chunk at (150, 0)" in capsys.readouterr().err
    assert not (tmp_path / "plain.h5").exists()


def test_verify_checks_every_chunk_of_the_lrq_filtered_datasets(tmp_path, source, capsys):
    filtered = tmp_path / "f.h5"
    assert run("compress", source, filtered, "--bits", "2", "-q") == 0
    assert run("verify", filtered, "--reference", "--json") == cli.EXIT_OK
    (result,) = json.loads(capsys.readouterr().out)
    # layer/W in 2 x 2 chunks, D in one
    assert (result["datasets"], result["chunks"], result["reference"]["tensors"]) == (2, 5, 5)
    with h5py.File(filtered, "r+") as f:
        d = f["D"]
        stream = bytearray(d.id.read_direct_chunk((0, 0))[1])
        stream[-3] ^= 0x01
        d.id.write_direct_chunk((0, 0), bytes(stream))
    assert run("verify", filtered) == cli.EXIT_VERIFY_FAILED
    assert "dataset 'D' chunk at (0, 0): FAILED" in capsys.readouterr().err
    assert run("verify", source) == cli.EXIT_USAGE  # nothing lrq-filtered to verify


def test_the_commands_run_as_a_user_runs_them(tmp_path, source):
    """The installed entry point, end to end: compress, info, decompress."""
    filtered, plain = tmp_path / "f.h5", tmp_path / "p.h5"
    status, _, err = lrq_command("compress", source, filtered, "--bits", "2")
    assert status == 0, err
    assert "-> " + str(filtered) in err and "lrq-filtered" in err
    status, out, err = lrq_command("info", filtered)
    assert status == 0 and b"layer/W" in out, err
    status, _, err = lrq_command("decompress", filtered, plain)
    assert status == 0, err
    status, out, err = lrq_command("compress", "--help")
    assert b".h5" in out
