"""The ``lrq`` command line: compress, info, verify, decompress, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lrq
from lrq.cli import main


def _write_safetensors(path, tensors: dict) -> None:
    """A minimal safetensors writer for test inputs (bf16 given as uint16 bits)."""
    names = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64", np.dtype("<u2"): "BF16"}
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


@pytest.fixture
def model_file(tmp_path):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((40, 24)).astype(np.float32)
    bf16_bits = (rng.standard_normal((16, 20)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    tensors = {
        "layer.weight": weight,
        "layer.bias": rng.standard_normal(24).astype(np.float32),
        "position_ids": np.arange(12, dtype=np.int64).reshape(1, 12),
        "half.weight": bf16_bits,
    }
    path = tmp_path / "model.safetensors"
    _write_safetensors(path, tensors)
    return path, tensors


def test_compress_safetensors_then_info_verify_decompress(model_file, tmp_path, capsys):
    src, tensors = model_file
    out = tmp_path / "model.lrq"
    assert main(["compress", str(src), str(out), "--scheme", "signcut", "--bits", "8", "--quiet"]) == 0
    with lrq.open(out) as f:
        assert set(f) == set(tensors)
        assert f["layer.weight"].scheme == "signcut"
        assert f["layer.weight"].bits_per_entry <= 8
        assert f["layer.bias"].scheme == "dense"
        np.testing.assert_array_equal(np.asarray(f["layer.bias"]), tensors["layer.bias"])
        np.testing.assert_array_equal(np.asarray(f["position_ids"]), tensors["position_ids"])
        assert f["half.weight"].source_dtype == "bfloat16"

    assert main(["info", str(out)]) == 0
    listing = capsys.readouterr().out
    assert "format 1.0" in listing and "4 tensors" in listing
    for name in tensors:
        assert name in listing

    assert main(["verify", str(out), "--reference"]) == 0
    assert "OK" in capsys.readouterr().out

    restored = tmp_path / "restored.safetensors"
    assert main(["decompress", str(out), str(restored)]) == 0
    from lrq.inputs import read_safetensors

    back = {t.name: t.values for t in read_safetensors(str(restored))}
    np.testing.assert_array_equal(back["position_ids"], tensors["position_ids"])
    with lrq.open(out) as f:
        np.testing.assert_array_equal(back["layer.weight"], lrq.decode(f["layer.weight"]))


def test_compress_npy_and_decompress_npy(tmp_path):
    a = np.random.default_rng(0).standard_normal((120, 200)).astype(np.float32)
    src, out, back = tmp_path / "a.npy", tmp_path / "a.lrq", tmp_path / "b.npy"
    np.save(src, a)
    assert main(["compress", str(src), str(out), "--scheme", "lplr", "--bits", "4", "--quiet"]) == 0
    assert main(["decompress", str(out), str(back)]) == 0
    with lrq.open(out) as f:
        m = f["a"]
        assert m.scheme == "lplr" and m.bits_per_entry <= 4
        np.testing.assert_array_equal(np.load(back), lrq.decode(m))
        assert m.rel_error == pytest.approx(np.linalg.norm(np.load(back) - a) / np.linalg.norm(a), rel=1e-4)


def test_tiny_tensor_under_budget_is_stored_dense_with_a_note(tmp_path, capsys):
    src, out = tmp_path / "tiny.npy", tmp_path / "tiny.lrq"
    np.save(src, np.ones((2, 3), dtype=np.float32))
    assert main(["compress", str(src), str(out), "--scheme", "signcut", "--bits", "2"]) == 0
    assert "tiny: too small for the target" in capsys.readouterr().err
    with lrq.open(out) as f:
        np.testing.assert_array_equal(np.asarray(f["tiny"]), np.ones((2, 3), dtype=np.float32))


@pytest.mark.parametrize(
    "argv, message, status",
    [
        (["info", "missing.lrq"], "cannot open", 3),
        (["compress", "x.txt", "y.lrq"], "unknown input type", 2),
    ],
)
def test_errors_are_reported_not_raised(argv, message, status, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("hello")
    assert main(argv) == status
    assert message in capsys.readouterr().err


def test_info_on_a_damaged_file_reports_a_format_error(tmp_path, capsys):
    bad = tmp_path / "bad.lrq"
    bad.write_bytes(b"\x89LRQ\r\n\x1a\n" + bytes(10))
    assert main(["info", str(bad)]) == 5  # a major version this library does not read
    assert "error" in capsys.readouterr().err


def test_console_script_and_demo_run(tmp_path):
    """The installed `lrq` command runs the quick demo and every product from the file matches."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, "-m", "lrq.cli", "demo", "--quick"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "all equal to the in-memory products" in result.stdout
    assert "signcut" in result.stdout and "lplr" in result.stdout
