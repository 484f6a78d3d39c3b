"""``lrq.save`` never writes a file ``lrq.open`` refuses: every decoder limit of
spec §13 (and [HDR-3], [DN-4]) is checked before anything is written.  Each
limit is saved and reopened at its value, and refused one past it with the
existing file left as it was."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import lrq
from lrq import format as lrq_format

SMALL = {"b": np.arange(3, dtype=np.float32)}


@pytest.fixture
def existing(tmp_path):
    path = tmp_path / "model.lrq"
    lrq.save(path, SMALL)
    return path


def reopen(path, metadata=None):
    with lrq.open(path) as f:
        if metadata is not None:
            assert f.metadata == metadata
        return {name: lrq.decode(f[name]) for name in f}


def refused(path, tensors, metadata, match):
    before = path.read_bytes()
    with pytest.raises(lrq.ArgumentError, match=match):
        lrq.save(path, tensors, metadata=metadata)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_metadata_entries(existing):
    at = {f"k{i}": "v" for i in range(lrq_format.MAX_MAP_ENTRIES)}
    lrq.save(existing, SMALL, metadata=at)
    reopen(existing, at)
    refused(existing, SMALL, dict(at, one_more="v"), r"65 entries.*at most 64.*\[LIM-1\]")


@pytest.mark.parametrize("where", ["key", "value"])
def test_metadata_string_bytes(existing, where):
    longest = "é" * (lrq_format.MAX_STRING_BYTES // 2) + "x"  # 65535 bytes of UTF-8
    assert len(longest.encode()) == lrq_format.MAX_STRING_BYTES
    at = {longest: "v"} if where == "key" else {"k": longest}
    lrq.save(existing, SMALL, metadata=at)
    reopen(existing, at)
    past = longest + "x"
    refused(existing, SMALL, {past: "v"} if where == "key" else {"k": past}, r"65536 bytes.*\[LIM-6\]")


@pytest.mark.parametrize("where", ["key", "value"])
def test_lone_surrogates_in_metadata_are_argument_errors(existing, where):
    bad = "a\ud800b"
    refused(existing, SMALL, {bad: "v"} if where == "key" else {"k": bad}, r"lone surrogate.*\[HDR-3\]")


def test_bool_arrays_holding_other_bytes_are_written_as_0_and_1(existing):
    raw = np.array([0, 1, 2, 255], dtype=np.uint8)
    lrq.save(existing, {"flags": raw.view(np.bool_)})
    values = reopen(existing)["flags"]
    np.testing.assert_array_equal(values.view(np.uint8), [0, 1, 1, 1])


def _big_tensors() -> dict:
    # Encoder maps of 64 longest strings (as a file made by another writer
    # may carry) give most of a 16 MiB header from four small tensors.
    base = lrq.encode(np.ones((2, 3)), "signcut", width=1)
    tensors = {}
    for i, entries in enumerate((64, 64, 64, 32)):
        m = lrq.loads(lrq.dumps(base))
        m._record.encoder = {f"k{j:02d}": "x" * lrq_format.MAX_STRING_BYTES for j in range(entries)}
        tensors[f"t{i}"] = m
    return tensors


def _header_length(tensors, metadata) -> int:
    records, groups = lrq.io._records(tensors)
    pieces = lrq_format.serialize(records, metadata, lrq.reference.crc32c, groups)
    next(pieces)  # the preamble
    return len(next(pieces))


def test_a_header_of_exactly_16_mib_and_one_byte_more(existing):
    tensors = _big_tensors()
    missing = lrq_format.MAX_HEADER_LENGTH - _header_length(tensors, None)
    assert 0 < missing < 60 * lrq_format.MAX_STRING_BYTES
    # Full metadata strings, then a last one sized so the header is exact:
    # a str16 (256-65535 bytes) grows the header byte for byte.
    metadata, step = {}, lrq_format.MAX_STRING_BYTES
    while missing > step:
        metadata[f"p{len(metadata):02d}"] = "x" * step
        missing -= step
    last = f"p{len(metadata):02d}"
    metadata[last] = "x" * 256
    metadata[last] += "x" * (lrq_format.MAX_HEADER_LENGTH - _header_length(tensors, metadata))
    assert 256 <= len(metadata[last]) <= step
    lrq.save(existing, tensors, metadata=metadata)
    with open(existing, "rb") as fh:
        assert int.from_bytes(fh.read(64)[32:40], "little") == lrq_format.MAX_HEADER_LENGTH
    assert len(reopen(existing, metadata)) == len(tensors)
    metadata[last] = metadata[last][:-1] + "é"  # one byte more
    refused(existing, tensors, metadata, r"header would take 16,777,217 bytes.*\[PRE-6\]")


def test_structural_limits_of_every_map_and_array():
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}  # depth 8 is allowed
    lrq_format.check_header(deep)
    with pytest.raises(lrq.ArgumentError, match=r"\[LIM-3\]"):
        lrq_format.check_header({"x": deep})
    lrq_format.check_header({"tiles": [0] * lrq_format.MAX_ARRAY_ELEMENTS})
    with pytest.raises(lrq.ArgumentError, match=r"\[LIM-2\]"):
        lrq_format.check_header({"tiles": [0] * (lrq_format.MAX_ARRAY_ELEMENTS + 1)})
    # What check_header lets through, the reference parser's limits accept.
    raw = msgpack.packb(deep)
    lrq.reference.container.load_header(raw)


def test_a_matrix_with_an_oversized_encoder_map_is_refused_before_writing(existing):
    m = lrq.encode(np.random.default_rng(0).standard_normal((20, 30)), "signcut", width=3)
    m._record.encoder = {f"k{i}": i for i in range(lrq_format.MAX_MAP_ENTRIES + 1)}
    refused(existing, {"m": m}, None, r"\[LIM-1\]")
