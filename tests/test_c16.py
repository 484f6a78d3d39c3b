"""Signcut weights stored as binary16 with a per-tile scale (format 1.1).

``lrq.encode(..., c_storage="float16")``: what a user relies on is that the
file decodes the same in the C core and in the reference, that the error the
encoder reports is the file's true error, that the file is smaller at the
same width, that format 1.1 and its flag appear only when a tile uses the
feature, and that a 1.0 decoder refuses such a file instead of misreading it.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrq
import lrq.reference
from lrq.reference import container


def _gauss(m, n, seed=0):
    return np.random.default_rng(seed).standard_normal((m, n)).astype(np.float32)


def _version(data: bytes) -> tuple:
    minor = struct.unpack_from("<H", data, 10)[0]
    required = struct.unpack_from("<Q", data, 16)[0]
    return minor, required


def _true_error(a, m) -> float:
    d = lrq.decode(m).astype(np.float64)
    return float(np.linalg.norm(a - d) / np.linalg.norm(a))


@pytest.mark.parametrize("shape,width", [((1, 1), 1), ((3, 3), 2), ((37, 90), 25), ((128, 64), 200)])
@pytest.mark.parametrize("refit", [False, True])
def test_round_trip_both_decoders_and_true_error(shape, width, refit):
    a = _gauss(*shape, seed=shape[0])
    m = lrq.encode(a, "signcut", width=width, c_storage="float16", refit=refit)
    data = lrq.dumps(m)
    assert _version(data) == (1, 1)
    assert "c_scale" in m.params
    mantissa, _ = np_frexp(m.params["c_scale"])
    assert mantissa == 0.5  # a power of two [SC-3]
    ours = lrq.decode(lrq.loads(data))
    theirs = lrq.reference.decode(data)["tensor"]
    c = np.abs(lrq.reference.signcut.coefficients(container.parse(data, lrq.reference.crc32c).tensors[0].tiles[0],
                                                  lrq.reference.crc32c).astype(np.float64)).sum()
    assert np.abs(ours.astype(np.float64) - theirs).max() <= 1e-5 * c + 1e-30
    assert np.array_equal(ours, lrq.decode(m))
    # The encoder's error is the file's (exact tracking with the rounded c).
    assert m.rel_error == pytest.approx(_true_error(a, m), rel=1e-5, abs=1e-7)


def np_frexp(x):
    import math
    return math.frexp(x)


@pytest.mark.parametrize("width", [64, 256])
def test_float16_is_smaller_at_the_same_width_and_as_accurate(width):
    a = _gauss(256, 256, seed=3)
    m32 = lrq.encode(a, "signcut", width=width)
    m16 = lrq.encode(a, "signcut", width=width, c_storage="float16")
    assert m16.params["width"] == m32.params["width"] == width
    # 2 bytes less per cut; the header gains "c_scale" (13 bytes), and
    # section alignment moves things by less than 64 bytes.
    assert m32.nbytes - 2 * width - 64 <= m16.nbytes <= m32.nbytes - 2 * width + 64
    assert m16.nbytes < m32.nbytes
    assert m16.rel_error == pytest.approx(m32.rel_error, rel=0.01)


def test_equal_budget_buys_more_cuts():
    a = _gauss(256, 256, seed=4)
    m32 = lrq.encode(a, "signcut", bits=6.0)
    m16 = lrq.encode(a, "signcut", bits=6.0, c_storage="float16")
    assert m16.bits_per_entry <= 6.0 and m32.bits_per_entry <= 6.0
    assert m16.params["width"] >= m32.params["width"]
    assert m16.rel_error <= m32.rel_error * 1.01


def test_flag_and_minor_only_when_needed(tmp_path):
    a = _gauss(40, 30)
    m32 = lrq.encode(a, "signcut", width=8)
    m16 = lrq.encode(a, "signcut", width=8, c_storage="float16")
    assert _version(lrq.dumps(m32)) == (0, 0)
    assert _version(lrq.dumps(lrq.encode(a, "lplr", bits=8.0))) == (0, 0)
    # A file mixing both: 1.1 with the flag; lrq.open and info report it.
    path = tmp_path / "mix.lrq"
    lrq.save(path, {"f32": m32, "f16": m16, "raw": np.arange(3.0)})
    data = path.read_bytes()
    assert _version(data) == (1, 1)
    with lrq.open(path) as f:
        assert f.format_version == (1, 1)
        assert "c_scale" in f["f16"].params and "c_scale" not in f["f32"].params
        np.testing.assert_array_equal(lrq.decode(f["f16"]), lrq.decode(m16))
        x = np.linspace(-1, 1, 30).astype(np.float32)
        np.testing.assert_array_equal(f["f16"] @ x, m16 @ x)
    # Re-saving only the 1.0 content gives a 1.0 file again.
    lrq.save(path, {"f32": m32})
    assert _version(path.read_bytes()) == (0, 0)
    # A zero matrix has no cut to store: the tile stays 1.0.
    z = lrq.encode(np.zeros((5, 5), np.float32), "signcut", width=3, c_storage="float16")
    assert z.params == {"width": 0} and _version(lrq.dumps(z)) == (0, 0)


def test_a_1_0_decoder_refuses_a_1_1_file(monkeypatch):
    data = lrq.dumps(lrq.encode(_gauss(20, 20), "signcut", width=4, c_storage="float16"))
    monkeypatch.setattr(container, "KNOWN_REQUIRED_FEATURES", 0)
    with pytest.raises(lrq.UnsupportedError, match=r"\[PRE-4\]"):
        lrq.reference.decode(data)


def test_unknown_required_bits_still_refused():
    data = bytearray(lrq.dumps(lrq.encode(_gauss(20, 20), "signcut", width=4, c_storage="float16")))
    data[16] |= 0x80  # bit 7: unassigned (bits 1 and 2 are shared_factor and signcut_tensor since 1.2, 1.3)
    for decode in (lrq.loads, lrq.reference.decode):
        with pytest.raises(lrq.UnsupportedError, match=r"PRE-4"):
            decode(bytes(data))


def test_deterministic_across_isa_and_threads():
    a = _gauss(300, 200, seed=9)
    ref = lrq.dumps(lrq.encode(a, "signcut", width=80, c_storage="float16", threads=1))
    for isa in ("scalar", "avx2", "avx512", "neon"):
        lrq._native.set_isa(isa)
        try:
            for threads in (1, 2):
                assert lrq.dumps(lrq.encode(a, "signcut", width=80, c_storage="float16", threads=threads)) == ref
        finally:
            lrq._native.set_isa(None)


def test_bad_option():
    with pytest.raises(lrq.ArgumentError, match="c_storage"):
        lrq.encode(_gauss(4, 4), "signcut", width=1, c_storage="bfloat16")
    with pytest.raises(lrq.ArgumentError, match="unknown option"):
        lrq.encode(_gauss(4, 4), "lplr", bits=4.0, c_storage="float16")


@given(st.integers(0, 2**16 - 1), st.sampled_from([2.0**-3, 2.0**-125, 2.0**112, 0.3, 0.0, -1.0, float("nan")]))
def test_c16_values_and_scales_either_decode_or_raise(half_bits, scale):
    """Any binary16 pattern and scale: both decoders agree, value or error class."""
    m = lrq.encode(_gauss(4, 6), "signcut", width=2, c_storage="float16")
    data = lrq.dumps(m)
    record = lrq.reference.parse(data, lrq.reference.crc32c)
    tile = record.tensors[0].tiles[0]
    c = bytearray(tile.sections["c"].data)
    c[0:2] = struct.pack("<H", half_bits)
    tile.params["c_scale"] = scale
    tile.sections["c"] = container.make_section("c", bytes(c), lrq.reference.crc32c)
    edited = b"".join(bytes(p) for p in container.serialize(record.tensors, None, lrq.reference.crc32c))
    outcomes = []
    for decode in (lambda d: lrq.decode(lrq.loads(d)), lambda d: lrq.reference.decode(d)["tensor"]):
        try:
            outcomes.append(np.asarray(decode(edited), dtype=np.float64))
        except lrq.LrqError as exc:
            outcomes.append(type(exc))
    if isinstance(outcomes[0], type) or isinstance(outcomes[1], type):
        assert outcomes[0] == outcomes[1] == lrq.FormatError
    else:
        halves = np.frombuffer(bytes(c), "<f2").astype(np.float64)
        assert np.isfinite(halves).all() and scale in (2.0**-3, 2.0**-125, 2.0**112)
        ours, ref = outcomes
        if np.isfinite(ours).all():  # values beyond float32 are outside [NUM-1]
            tol = 1e-5 * scale * np.abs(halves).sum() + 2.0**-24 * np.abs(ref) + 2.0**-149
            assert (np.abs(ours - ref) <= tol).all()
