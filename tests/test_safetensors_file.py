"""``lrq.safetensors_file``: the one safetensors reader and writer."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import lrq
from lrq import files, safetensors_file
from lrq.inputs import read_tensors


def write(path, tensors, metadata=None):
    files.atomic_write(path, lambda out: safetensors_file.write(out, tensors, metadata))


def bf16_bits(rng, shape):
    # Every finite bfloat16 pattern class: normal, subnormal, signed zero.
    bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
    exponent = (bits >> 7) & 0xFF
    bits[exponent == 0xFF] &= 0x807F  # no NaN or infinity
    bits.flat[:3] = (0x0000, 0x8000, 0x0001)
    return bits


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int32", "int16", "int8",
                                   "uint64", "uint32", "uint16", "uint8", "bool"])
def test_every_dtype_round_trips(tmp_path, dtype):
    rng = np.random.default_rng(3)
    value = (rng.standard_normal((3, 5)) * 100).astype(dtype) if dtype != "bool" else rng.random((3, 5)) > 0.5
    write(tmp_path / "t.safetensors", {"v": value, "s": value[0, 0]})
    tensors, metadata = safetensors_file.read(tmp_path / "t.safetensors")
    assert [(t.name, t.dtype, t.values.shape) for t in tensors] == [("v", dtype, (3, 5)), ("s", dtype, ())]
    np.testing.assert_array_equal(tensors[0].values, value)
    assert metadata == {}


def test_bfloat16_is_written_bit_for_bit_from_bits_or_from_widened_values(tmp_path):
    bits = bf16_bits(np.random.default_rng(4), (7, 9))
    widened = safetensors_file.widen(bits, "bfloat16")
    assert widened.dtype == np.float32
    write(tmp_path / "a.safetensors", {"w": (bits, "bfloat16")})
    write(tmp_path / "b.safetensors", {"w": (widened, "bfloat16")})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    (tensor,), _ = safetensors_file.read(tmp_path / "b.safetensors")
    assert tensor.dtype == "bfloat16" and tensor.values.dtype == np.uint16
    np.testing.assert_array_equal(tensor.values, bits)


def test_bfloat16_values_round_to_nearest_even():
    values = np.array([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -(1.0 + 2.0**-9)], dtype=np.float32)
    bits = lrq.format.bfloat16_bits(values)
    np.testing.assert_array_equal(lrq.format.bfloat16_to_float32(bits),
                                  np.array([1.0, 1.0 + 2.0**-6, -1.0], dtype=np.float32))


def test_metadata_round_trips_and_the_file_reads_as_safetensors(tmp_path):
    meta = {"format": "pt", "note": "é ✓"}
    write(tmp_path / "m.safetensors", {"x": np.arange(4, dtype=np.float32)}, meta)
    raw = (tmp_path / "m.safetensors").read_bytes()
    (length,) = struct.unpack_from("<Q", raw)
    assert length % 8 == 0
    header = json.loads(raw[8 : 8 + length])
    assert header["__metadata__"] == meta
    assert header["x"] == {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    _, metadata = safetensors_file.read(tmp_path / "m.safetensors")
    assert metadata == meta


def test_the_cli_reader_goes_through_it(tmp_path):
    bits = bf16_bits(np.random.default_rng(5), (4, 4))
    write(tmp_path / "c.safetensors", {"w": (bits, "bfloat16"), "i": np.arange(3)})
    (w, i) = read_tensors(str(tmp_path / "c.safetensors"))
    assert (w.name, w.dtype, i.name, i.dtype) == ("w", "bfloat16", "i", "int64")
    np.testing.assert_array_equal(w.as_float(), safetensors_file.widen(bits, "bfloat16"))


def damaged(tmp_path, header: dict, data: bytes = b"") -> str:
    text = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return str(path)


@pytest.mark.parametrize("header, data, message", [
    ({"b": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02", "other than 0 or 1"),
    ({"__metadata__": {"k": 3}}, b"", "map of strings to strings"),
    ({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8), "unsupported dtype"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4), "wrong size"),
])
def test_damaged_files_are_format_errors(tmp_path, header, data, message):
    with pytest.raises(lrq.FormatError, match=message):
        safetensors_file.read(damaged(tmp_path, header, data))


def test_unwritable_dtypes_and_names_are_argument_errors(tmp_path):
    with pytest.raises(lrq.ArgumentError, match="complex128"):
        write(tmp_path / "x.safetensors", {"z": np.zeros(2, dtype=complex)})
    with pytest.raises(lrq.ArgumentError, match="__metadata__"):
        write(tmp_path / "x.safetensors", {"__metadata__": np.zeros(2)})
    assert list(tmp_path.iterdir()) == []


def test_a_bfloat16_checkpoint_survives_lrq_bit_for_bit_with_its_metadata(tmp_path):
    """safetensors -> .lrq (lossless) -> safetensors gives the same bytes, and
    the .lrq file is no larger than about the checkpoint (bfloat16 stays 2 bytes)."""
    rng = np.random.default_rng(6)
    source = {"w": (bf16_bits(rng, (256, 384)), "bfloat16"), "ids": np.arange(7, dtype=np.int32),
              "half": rng.standard_normal((5, 3)).astype(np.float16)}
    meta = {"format": "pt", "model": "unit"}
    write(tmp_path / "in.safetensors", source, meta)
    tensors, metadata = safetensors_file.read(tmp_path / "in.safetensors")
    lrq.save(tmp_path / "m.lrq", {t.name: t for t in tensors}, metadata=metadata)
    assert (tmp_path / "m.lrq").stat().st_size < 1.02 * (tmp_path / "in.safetensors").stat().st_size + 4096
    with lrq.open(tmp_path / "m.lrq") as f:
        assert f.metadata == meta
        assert [f[name].source_dtype for name in f] == ["bfloat16", "int32", "float16"]
        write(tmp_path / "out.safetensors", {name: (lrq.decode(f[name]), f[name].source_dtype) for name in f},
              f.metadata)
    assert (tmp_path / "out.safetensors").read_bytes() == (tmp_path / "in.safetensors").read_bytes()
