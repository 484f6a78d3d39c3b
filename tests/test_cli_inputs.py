"""What ``lrq compress`` reads and chooses, and what ``lrq decompress`` gives back."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import lrq
from lrq import cli
from lrq.inputs import read_source

from test_cli_scripting import lrq_command


def _safetensors(path, tensors: dict, metadata=None) -> None:
    """A safetensors file written here, independently of lrq (bf16 given as uint16 bits)."""
    codes = {"float32": "F32", "float16": "F16", "int64": "I64", "bfloat16": "BF16"}
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": codes[dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _bf16(values: np.ndarray) -> np.ndarray:
    return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


@pytest.fixture
def checkpoint(tmp_path):
    rng = np.random.default_rng(11)
    tensors = {
        "encoder.weight": ("float32", rng.standard_normal((64, 48)).astype(np.float32)),
        "encoder.bias": ("float32", rng.standard_normal(48).astype(np.float32)),
        "head.weight": ("bfloat16", _bf16(rng.standard_normal((96, 80)))),
        "norm.weight": ("bfloat16", _bf16(rng.standard_normal(80))),
        "half.weight": ("float16", rng.standard_normal((20, 30)).astype(np.float16)),
        "conv.weight": ("float32", rng.standard_normal((8, 4, 3, 3)).astype(np.float32)),
        "position_ids": ("int64", np.arange(16, dtype=np.int64).reshape(1, 16)),
    }
    path = tmp_path / "model.safetensors"
    _safetensors(path, tensors, metadata={"format": "pt", "note": "ünïcode"})
    return path, tensors


def test_safetensors_round_trip_restores_names_dtypes_shapes_and_metadata(checkpoint, tmp_path):
    src, tensors = checkpoint
    packed, restored = tmp_path / "model.lrq", tmp_path / "restored.safetensors"
    status, _, err = lrq_command("compress", src, packed, "--bits", "6", "--exclude", "head.*")
    assert status == 0, err
    status, _, err = lrq_command("decompress", packed, restored)
    assert status == 0, err
    back = read_source(str(restored))
    assert back.metadata == {"format": "pt", "note": "ünïcode"}
    assert [t.name for t in back.tensors] == list(tensors)
    with lrq.open(packed) as f:
        for t in back.tensors:
            dtype, original = tensors[t.name]
            assert t.dtype == dtype and t.values.shape == original.shape, t.name
            if f[t.name].scheme == "dense":  # stored losslessly: bit for bit
                assert t.values.tobytes() == original.tobytes(), t.name
    # lossless bfloat16 stays 2 bytes an entry: no float32 growth
    assert restored.stat().st_size < src.stat().st_size + 200


def test_lossy_bfloat16_comes_back_as_bfloat16_rounded_from_the_decode(checkpoint, tmp_path):
    src, tensors = checkpoint
    packed, restored = tmp_path / "m.lrq", tmp_path / "r.safetensors"
    assert lrq_command("compress", src, packed, "--bits", "4", "--scheme", "signcut", "-q")[0] == 0
    assert lrq_command("decompress", packed, restored, "--tensor", "head.weight", "-q")[0] == 0
    (t,) = read_source(str(restored)).tensors
    assert t.dtype == "bfloat16"
    with lrq.open(packed) as f:
        decoded = lrq.decode(f["head.weight"])
    # every value within half a bfloat16 ulp of the float32 decode
    np.testing.assert_allclose(t.as_float(), decoded, rtol=2.0**-8, atol=0)


def test_every_tensor_stored_losslessly_is_reported_with_its_reason(checkpoint, tmp_path):
    src, _ = checkpoint
    status, _, err = lrq_command("compress", src, tmp_path / "m.lrq", "--bits", "4", "--exclude", "half.*")
    assert status == 0, err
    err = err[err.index("stored losslessly"):]
    assert "encoder.bias: 1-D" in err
    assert "norm.weight: 1-D" in err
    assert "conv.weight: 4-D (e.g. a convolution kernel)" in err
    assert "position_ids: int64" in err
    assert "half.weight: left out by --include / --exclude" in err
    assert "encoder.weight:" not in err and "head.weight:" not in err


def test_include_selects_what_is_compressed(checkpoint, tmp_path):
    src, tensors = checkpoint
    out = tmp_path / "m.lrq"
    assert lrq_command("compress", src, out, "--include", "encoder.*", "--bits", "4", "-q")[0] == 0
    with lrq.open(out) as f:
        assert f["encoder.weight"].scheme != "dense"
        assert f["head.weight"].scheme == "dense" and f["half.weight"].scheme == "dense"
    status, _, err = lrq_command("compress", src, tmp_path / "n.lrq", "--include", "enocder.*")
    assert status == cli.EXIT_USAGE and "matches no tensor" in err


def test_scheme_options_reach_the_encoder(tmp_path):
    a = np.random.default_rng(2).standard_normal((96, 80)).astype(np.float32)
    src = tmp_path / "a.npy"
    np.save(src, a)
    out = tmp_path / "a.lrq"
    assert lrq_command("compress", src, out, "--scheme", "lplr", "--rank", "3", "--variant", "svd", "--bits", "6",
                       "--threads", "1", "-q")[0] == 0
    with lrq.open(out) as f:
        assert f["a"].tiles[0][3]["rank"] == 3
        assert f["a"]._record.encoder["scheme"] == "lplr"
    assert lrq_command("compress", src, out, "--scheme", "signcut", "--c-storage", "float16", "--refit", "-q")[0] == 0
    with lrq.open(out) as f:
        assert f.format_version == (1, 1)  # float16 c is a format 1.1 feature
        assert "c_scale" in f["a"].tiles[0][3]
    status, _, err = lrq_command("compress", src, out, "--threads", "0")
    assert status == cli.EXIT_USAGE


def test_npz_input(tmp_path):
    a = np.random.default_rng(4).standard_normal((30, 40)).astype(np.float32)
    src = tmp_path / "arrays.npz"
    np.savez(src, weight=a, steps=np.arange(3, dtype=np.int32))
    out = tmp_path / "arrays.lrq"
    assert lrq_command("compress", src, out, "--bits", "8", "-q")[0] == 0
    with lrq.open(out) as f:
        assert set(f) == {"weight", "steps"}
        np.testing.assert_array_equal(np.asarray(f["steps"]), np.arange(3, dtype=np.int32))
    back = tmp_path / "back.npz"
    assert lrq_command("decompress", out, back, "-q")[0] == 0
    with np.load(back) as restored:
        assert restored["steps"].dtype == np.int32 and restored["weight"].shape == (30, 40)


def test_hdf5_input(tmp_path):
    h5py = pytest.importorskip("h5py")
    a = np.random.default_rng(6).standard_normal((80, 60))
    src = tmp_path / "data.h5"
    with h5py.File(src, "w") as f:
        f["layer/kernel"] = a.astype(">f4")  # big-endian on disk
        f["layer/count"] = np.int16(7)
    out = tmp_path / "data.lrq"
    status, _, err = lrq_command("compress", src, out, "--bits", "8")
    assert status == 0, err
    with lrq.open(out) as f:
        assert set(f) == {"layer/kernel", "layer/count"}
        kernel = f["layer/kernel"]
        assert kernel.scheme != "dense"
        error = np.linalg.norm(lrq.decode(kernel) - a.astype(np.float32)) / np.linalg.norm(a)
        assert error == pytest.approx(kernel.rel_error, rel=1e-3)
        assert np.asarray(f["layer/count"]).dtype == np.int16


def test_hdf5_without_h5py_names_the_package(tmp_path):
    src = tmp_path / "data.h5"
    src.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    code = ("import sys; sys.modules['h5py'] = None\n"
            "from lrq.cli import main\n"
            f"sys.exit(main(['compress', {str(src)!r}]))")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == cli.EXIT_UNSUPPORTED
    assert "h5py" in result.stderr and "pip install h5py" in result.stderr and "Traceback" not in result.stderr
