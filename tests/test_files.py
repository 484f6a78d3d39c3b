"""``lrq.save`` and ``lrq.open``: many named tensors in one file, written
atomically and byte-for-byte reproducibly, read lazily from a memory map with
each section's checksum verified on first use."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lrq
from lrq import format as lrq_format
from _support import random_matrix, section_position, split

W = lrq.encode(random_matrix((40, 24), seed=11, dtype=np.float32), "signcut", width=6)
L = lrq.encode(random_matrix((30, 20), seed=12), "lplr", rank=4, bits_l=2, bits_r=5, group=16)
BIAS = np.arange(5, dtype=np.float32)
IDS = np.arange(6, dtype=np.int64).reshape(2, 3)
FLAG = np.array([True, False])
TENSORS = {"W": W, "b": BIAS, "ids": IDS, "flag": FLAG, "L": L}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.lrq"
    lrq.save(path, TENSORS, metadata={"k": "v", "source": "unit test"})
    return path


def leftovers(folder) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".lrq-"))


def test_open_lists_the_names_in_order(saved):
    with lrq.open(saved) as f:
        assert list(f) == list(TENSORS)
        assert len(f) == len(TENSORS)
        assert "W" in f and "missing" not in f
        with pytest.raises(KeyError):
            f["missing"]


def test_matrices_from_the_file_compute_like_the_originals(saved):
    rng = np.random.default_rng(0)
    with lrq.open(saved) as f:
        for name, original in (("W", W), ("L", L)):
            m, n = original.shape
            x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(m).astype(np.float32)
            np.testing.assert_array_equal(f[name] @ x, original @ x)
            np.testing.assert_array_equal(f[name].T @ y, original.T @ y)
            np.testing.assert_array_equal(lrq.decode(f[name]), lrq.decode(original))
            assert (f[name].shape, f[name].dtype, f[name].scheme, f[name].rel_error) == (
                original.shape, original.dtype, original.scheme, original.rel_error)


def test_raw_arrays_come_back_exactly(saved):
    with lrq.open(saved) as f:
        for name, original in (("b", BIAS), ("ids", IDS), ("flag", FLAG)):
            out = np.asarray(f[name])
            assert out.dtype == original.dtype and out.shape == original.shape
            np.testing.assert_array_equal(out, original)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int32", "int16", "int8",
                                   "uint64", "uint32", "uint16", "uint8", "bool"])
def test_every_raw_dtype_is_lossless(tmp_path, dtype):
    rng = np.random.default_rng(1)
    if dtype == "bool":
        value = rng.integers(0, 2, size=(3, 4)).astype(bool)
    elif np.dtype(dtype).kind == "f":
        value = rng.standard_normal((3, 4)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        value = rng.integers(info.min, info.max, size=(3, 4), dtype=dtype, endpoint=True)
        value[0, :2] = info.min, info.max
    lrq.save(tmp_path / "t.lrq", {"v": value, "scalar": value[0, 0], "cube": value.reshape(1, 3, 4)})
    with lrq.open(tmp_path / "t.lrq") as f:
        for name, want in (("v", value), ("scalar", np.asarray(value[0, 0])), ("cube", value.reshape(1, 3, 4))):
            out = lrq.decode(f[name])
            assert out.dtype == want.dtype and out.shape == want.shape, name
            np.testing.assert_array_equal(out, want)


def test_metadata_round_trips(saved, tmp_path):
    with lrq.open(saved) as f:
        assert f.metadata == {"k": "v", "source": "unit test"}
    lrq.save(tmp_path / "plain.lrq", {"b": BIAS})
    with lrq.open(tmp_path / "plain.lrq") as f:
        assert f.metadata == {}


def test_saving_twice_gives_identical_bytes(saved, tmp_path):
    again = tmp_path / "again.lrq"
    lrq.save(str(again), TENSORS, metadata={"k": "v", "source": "unit test"})
    assert again.read_bytes() == saved.read_bytes()


def test_resaving_what_was_opened_gives_identical_bytes(saved, tmp_path):
    with lrq.open(saved) as f:
        lrq.save(tmp_path / "copy.lrq", {name: f[name] for name in f}, metadata=f.metadata)
    assert (tmp_path / "copy.lrq").read_bytes() == saved.read_bytes()


def test_a_saved_matrix_equals_its_dumps(tmp_path):
    lrq.save(tmp_path / "one.lrq", {"tensor": W})
    assert (tmp_path / "one.lrq").read_bytes() == lrq.dumps(W)


def test_an_empty_file_of_tensors(tmp_path):
    lrq.save(tmp_path / "empty.lrq", {})
    with lrq.open(tmp_path / "empty.lrq") as f:
        assert len(f) == 0 and dict(f) == {}


def test_save_replaces_an_existing_file(saved):
    lrq.save(saved, {"only": BIAS})
    with lrq.open(saved) as f:
        assert list(f) == ["only"]
    assert leftovers(saved.parent) == []


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("failure, raised", [
    (RuntimeError("writer bug"), RuntimeError),
    (KeyboardInterrupt(), KeyboardInterrupt),
    (OSError(28, "No space left on device"), lrq.ResourceError),
])
def test_failed_save_leaves_the_old_file_and_no_temporary(saved, monkeypatch, failure, raised):
    before = saved.read_bytes()
    real = lrq_format.serialize

    def failing(*args, **kwargs):
        pieces = real(*args, **kwargs)
        yield next(pieces)  # the preamble is written, then the "disk" fails
        raise failure

    monkeypatch.setattr(lrq_format, "serialize", failing)
    with pytest.raises(raised):
        lrq.save(saved, {"other": np.ones(1000, dtype=np.float32)})
    assert saved.read_bytes() == before
    assert leftovers(saved.parent) == []
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.lrq"]


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("writer bug")
        yield b""  # pragma: no cover

    monkeypatch.setattr(lrq_format, "serialize", failing)
    with pytest.raises(RuntimeError):
        lrq.save(tmp_path / "new.lrq", {"b": BIAS})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- lazy verification


def corrupt_on_disk(path, tensor: int, kind: str, offset: int = 0) -> None:
    """Flip one byte of one section of the file at ``path``, CRCs untouched."""
    data = bytearray(path.read_bytes())
    header, _ = split(bytes(data))
    entries = [e for t in header["tensors"] for tile in t["tiles"] for e in tile["sections"]]
    entry = entries[section_position(header, kind, tensor=tensor)]
    data[entry[1] + offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_damaged_tensor_fails_only_when_used(saved):
    corrupt_on_disk(saved, tensor=0, kind="s", offset=3)  # W's S matrix
    with lrq.open(saved) as f:  # only the header is checked here
        np.testing.assert_array_equal(np.asarray(f["b"]), BIAS)
        x = np.ones(20, dtype=np.float32)
        np.testing.assert_array_equal(f["L"] @ x, L @ x)
        with pytest.raises(lrq.ChecksumError):
            f["W"] @ np.ones(24, dtype=np.float32)
        with pytest.raises(lrq.ChecksumError):  # and again: a failure is not cached as success
            lrq.decode(f["W"])
        with pytest.raises(lrq.ChecksumError):
            f["W"].T @ np.ones(40, dtype=np.float32)
        assert list(f) == list(TENSORS)


def test_a_damaged_raw_array_fails_only_when_used(saved):
    corrupt_on_disk(saved, tensor=2, kind="values")  # ids
    with lrq.open(saved) as f:
        assert lrq.decode(f["W"]).shape == W.shape
        with pytest.raises(lrq.ChecksumError):
            np.asarray(f["ids"])


def test_a_damaged_header_fails_at_open(saved):
    data = bytearray(saved.read_bytes())
    data[80] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(lrq.ChecksumError):
        lrq.open(saved)


def test_a_truncated_file_fails_at_open(saved):
    saved.write_bytes(saved.read_bytes()[:-1])
    with pytest.raises(lrq.FormatError):
        lrq.open(saved)


# ---------------------------------------------------------------- lifetime


def test_matrices_outlive_the_closed_file(saved):
    with lrq.open(saved) as f:
        w = f["W"]
    x = np.ones(24, dtype=np.float32)
    np.testing.assert_array_equal(w @ x, W @ x)
    with pytest.raises(lrq.LrqError):
        f["W"]


def test_close_twice_is_harmless(saved):
    f = lrq.open(saved)
    f.close()
    f.close()


def test_open_accepts_str_and_pathlike(saved):
    for path in (saved, str(saved), os.fsencode(saved)):
        with lrq.open(path) as f:
            assert "W" in f
