"""Order-d signcut tensors (spec §10.5, format 1.3): the greedy's published
behaviour, decoding and contraction against NumPy within [NUM-1]-style
tolerances, targets, the file format in both decoders, and byte-identical
files across instruction sets and thread counts.
"""

from __future__ import annotations

import hashlib
import pickle
import struct

import numpy as np
import pytest

import lrq
from lrq import _native
from lrq import format as container
from lrq import reference
from lrq.errors import ArgumentError, BudgetError, FormatError, UnsupportedError
from _support import digests_across_isas
from c_harness import needs_gcc, run_sanitized

SHAPES = [(5, 7, 9), (17, 33, 20), (4, 3, 5, 6), (1, 8, 1, 3)]


def random_tensor(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rel(a, b):
    return float(np.linalg.norm((np.asarray(a, np.float64) - b).ravel()) / np.linalg.norm(np.asarray(a, np.float64).ravel()))


def term_magnitude(tensor):
    """M of [NUM-1] for every entry of a signcut tensor: Σ_k |c_k|."""
    c, _ = tensor.factors()
    return float(np.abs(c.astype(np.float64)).sum())


def exact_decode(tensor):
    """Σ_k c_k ⊗ s_k in float64 from the factors."""
    c, signs = tensor.factors()
    letters = "abcdefgh"[: len(signs)]
    spec = ",".join(f"{x}k" for x in letters) + ",k->" + letters
    return np.einsum(spec, *[s.astype(np.float64) for s in signs], c.astype(np.float64))


# ------------------------------------------------------------- published behaviour


def test_error_decreases_with_width():
    a = random_tensor((17, 97, 31), seed=1)
    errors = [lrq.encode(a, "signcut", width=w).rel_error for w in (1, 4, 16, 64, 256)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.8


def test_error_decreases_with_every_term_in_the_encoder():
    a = random_tensor((9, 11, 13, 3), seed=2)
    enc = _native.TensorEncoder(a, seed=0)
    norms = [enc.remainder_norm()]
    for _ in range(60):
        enc.run(1)
        norms.append(enc.remainder_norm())
    assert all(b < n for n, b in zip(norms, norms[1:]))


@pytest.mark.parametrize("shape", [(4, 6, 7), (3, 5, 2, 8), (64, 1, 65)])
def test_rank_one_sign_tensor_is_exact_in_one_cut(shape):
    rng = np.random.default_rng(3)
    vectors = [np.where(rng.random(n) < 0.5, -1.0, 1.0) for n in shape]
    a = 2.5 * vectors[0]
    for v in vectors[1:]:
        a = np.multiply.outer(a, v)
    t = lrq.encode(a.astype(np.float32), "signcut", width=5)
    assert t.width == 1  # the remainder is exactly zero after the first cut
    assert t.rel_error == 0.0
    assert np.array_equal(lrq.decode(t), a.astype(np.float32))


def test_zero_tensor_has_no_terms():
    t = lrq.encode(np.zeros((3, 4, 5), np.float32), "signcut", width=3)
    assert t.width == 0 and np.array_equal(lrq.decode(t), np.zeros((3, 4, 5), np.float32))
    assert np.array_equal(t.contract(np.ones(4), axis=1), np.zeros((3, 5), np.float32))


# ------------------------------------------------------------- decode and contract


@pytest.mark.parametrize("shape", SHAPES)
def test_decode_within_num1_of_the_exact_sum(shape):
    t = lrq.encode(random_tensor(shape, seed=4), "signcut", width=40)
    exact = exact_decode(t)
    bound = 1e-5 * term_magnitude(t) + 2.0**-24 * np.abs(exact) + 2.0**-149
    assert np.all(np.abs(lrq.decode(t) - exact) <= bound)
    assert lrq.decode(t).shape == shape and lrq.decode(t).dtype == np.float32


@pytest.mark.parametrize("shape", SHAPES)
def test_contraction_along_every_mode_equals_decode_then_numpy(shape):
    rng = np.random.default_rng(5)
    t = lrq.encode(random_tensor(shape, seed=5), "signcut", width=60)
    dense = lrq.decode(t).astype(np.float64)
    exact = exact_decode(t)
    for axis in range(len(shape)):
        x = rng.standard_normal(shape[axis])
        got = t.contract(x, axis=axis)
        assert got.shape == shape[:axis] + shape[axis + 1:]
        # [NUM-1] with the terms of the double sum: |c_k x_i| over k and i.
        magnitude = term_magnitude(t) * float(np.abs(x).sum())
        for ref in (np.tensordot(dense, x, axes=([axis], [0])), np.tensordot(exact, x, axes=([axis], [0]))):
            bound = 2e-5 * magnitude + 2.0**-24 * np.abs(ref) + 2.0**-149
            assert np.all(np.abs(got - ref) <= bound), axis
    assert np.array_equal(t.contract(x, axis=-1), t.contract(x, axis=len(shape) - 1))


def test_contract_and_products_refuse_bad_operands():
    t = lrq.encode(random_tensor((3, 4, 5)), "signcut", width=3)
    with pytest.raises(ArgumentError):
        t.contract(np.ones(5), axis=1)
    with pytest.raises(ArgumentError):
        t.contract(np.ones(4), axis=3)
    with pytest.raises(ArgumentError):
        t.contract(np.array([1.0, np.nan, 0, 0]), axis=1)
    with pytest.raises(ArgumentError):
        t @ np.ones(5)
    with pytest.raises(ArgumentError):
        t.T


# ------------------------------------------------------------------ targets


def test_bits_target_is_met_and_nearly_used():
    a = random_tensor((20, 30, 16), seed=6)
    for bits in (1.0, 2.0, 4.0):
        t = lrq.encode(a, "signcut", bits=bits)
        assert t.bits_per_entry <= bits
        more = lrq.encode(a, "signcut", width=t.width + 1)
        assert more.bits_per_entry > bits or more.width == t.width  # the next width would not fit


def test_rel_error_target_stops_at_the_first_width_meeting_it():
    a = random_tensor((12, 13, 14), seed=7, dtype=np.float64)
    t = lrq.encode(a, "signcut", rel_error=0.6)
    assert rel(a, lrq.decode(t)) <= 0.6 + 1e-6
    assert t.rel_error == pytest.approx(rel(a, lrq.decode(t)), rel=1e-4)
    shorter = lrq.encode(a, "signcut", width=t.width - 1)
    assert rel(a, lrq.decode(shorter)) > 0.6


def test_targets_that_cannot_be_met_raise():
    with pytest.raises(BudgetError):
        lrq.encode(random_tensor((2, 2, 2)), "signcut", bits=1.0)
    with pytest.raises(ArgumentError):
        lrq.encode(random_tensor((3, 3, 3)), "signcut", width=2, c_storage="float16")
    with pytest.raises(ArgumentError):
        lrq.encode(random_tensor((3, 3, 3)), "lplr", bits=4)
    with pytest.raises(ArgumentError):
        lrq.encode(np.full((2, 2, 2), np.inf, np.float32), "signcut", width=1)


def test_matrix_of_a_tensor_route_still_works():
    a = random_tensor((40, 30, 20), seed=8)
    m = lrq.encode(a.reshape(40, -1), "lplr", bits=4)
    assert lrq.decode(m).reshape(a.shape).shape == a.shape


# ------------------------------------------------------------------ the file


def test_file_is_format_1_3_with_signcut_tensor_and_reads_back():
    t = lrq.encode(random_tensor((6, 7, 8), seed=9), "signcut", width=12, name="t")
    data = lrq.dumps(t)
    major, minor, _, required = struct.unpack_from("<HHIQ", data, 8)
    assert (major, minor, required) == (1, 3, container.SIGNCUT_TENSOR)
    back = lrq.loads(data)
    assert isinstance(back, lrq.Tensor) and back.shape == (6, 7, 8) and back.width == 12
    assert np.array_equal(lrq.decode(back), lrq.decode(t))
    # the reference decoder, written from the spec alone, agrees within [NUM-1]
    ref = reference.decode(data)["t"]
    bound = 1e-5 * term_magnitude(t) + 2.0**-24 * np.abs(ref) + 2.0**-149
    assert np.all(np.abs(ref - lrq.decode(t)) <= bound)
    assert pickle.loads(pickle.dumps(back)).contract(np.ones(7), axis=1).shape == (6, 8)


def test_save_and_open_mix_tensors_and_matrices(tmp_path):
    t = lrq.encode(random_tensor((5, 6, 7, 2), seed=10), "signcut", width=9)
    m = lrq.encode(random_tensor((30, 20), seed=11), "signcut", width=5)
    path = tmp_path / "mixed.lrq"
    lrq.save(path, {"conv": t, "w": m, "b": np.arange(4.0)})
    with lrq.open(path) as f:
        assert f.format_version == (1, 3)
        assert isinstance(f["conv"], lrq.Tensor) and not isinstance(f["w"], lrq.Tensor)
        assert np.array_equal(f["conv"].contract(np.ones(6), axis=1), t.contract(np.ones(6), axis=1))
        assert np.array_equal(lrq.decode(f["w"]), lrq.decode(m))
    assert set(reference.decode(path.read_bytes())) == {"conv", "w", "b"}


def test_a_1_2_reader_refuses_a_1_3_file_as_unsupported(monkeypatch):
    data = lrq.dumps(lrq.encode(random_tensor((3, 4, 5)), "signcut", width=2))
    # Both decoders made 1.2 decoders: they know required bits 0 and 1 only.
    monkeypatch.setattr(container, "KNOWN_REQUIRED_FEATURES", container.SIGNCUT_C16 | container.SHARED_FACTOR)
    monkeypatch.setattr(reference.container, "KNOWN_REQUIRED_FEATURES",
                        reference.container.SIGNCUT_C16 | reference.container.SHARED_FACTOR)
    with pytest.raises(UnsupportedError, match="PRE-4"):
        lrq.loads(data)
    with pytest.raises(UnsupportedError, match="PRE-4"):
        reference.decode(data)


def _damaged(data: bytes, edit) -> bytes:
    """The file with its header edited and its header CRC recomputed."""
    import msgpack

    length = struct.unpack_from("<Q", data, 32)[0]
    header = msgpack.unpackb(data[64:64 + length])
    edit(header)
    raw = msgpack.packb(header, use_single_float=True)
    assert len(raw) == length  # same length, so sections stay in place
    head = bytearray(data[:64])
    crc = _native.crc32c(raw, _native.crc32c(bytes(head[:48])))
    head[48:52] = struct.pack("<I", crc)
    return bytes(head) + raw + data[64 + length:]


def test_damaged_files_are_refused_by_both_decoders():
    data = lrq.dumps(lrq.encode(random_tensor((3, 4, 5)), "signcut", width=2))

    def rename(h):
        h["tensors"][0]["tiles"][0]["sections"][1][0] = "s9"

    bad = _damaged(data, rename)
    with pytest.raises(FormatError, match="SEC-1"):
        lrq.loads(bad)
    with pytest.raises(FormatError, match="SEC-1"):
        reference.decode(bad)
    flag_only = bytearray(lrq.dumps(lrq.encode(random_tensor((4, 5)), "signcut", width=2)))
    flag_only[10:12] = struct.pack("<H", 3)
    flag_only[16:24] = struct.pack("<Q", container.SIGNCUT_TENSOR)
    crc = _native.crc32c(bytes(flag_only[64:64 + struct.unpack_from("<Q", flag_only, 32)[0]]),
                         _native.crc32c(bytes(flag_only[:48])))
    flag_only[48:52] = struct.pack("<I", crc)
    for decode in (lrq.loads, reference.decode):
        with pytest.raises(FormatError, match="TNS-3"):
            decode(bytes(flag_only))


# ------------------------------------------------------------------ determinism

_HASH_SCRIPT = """
import hashlib, sys
import numpy as np
import lrq
threads = int(sys.argv[1])
lrq.set_num_threads(threads)
digest = hashlib.sha256()
rng = np.random.default_rng(12)
cases = [((17, 33, 70), dict(width=50)), ((6, 5, 64, 3), dict(bits=2.0)), ((40, 3, 3), dict(rel_error=0.4))]
for shape, kw in cases:
    t = lrq.encode(rng.standard_normal(shape).astype(np.float32), "signcut", seed=3, threads=threads, **kw)
    digest.update(lrq.dumps(t))
    digest.update(lrq.decode(t).tobytes())
    digest.update(t.contract(np.linspace(-1, 1, shape[1]), axis=1).tobytes())
print(lrq.build_info()["isa"], digest.hexdigest())
"""


def test_files_are_byte_identical_across_isas_and_thread_counts():
    digests = digests_across_isas(_HASH_SCRIPT, (1, 2))
    assert len(digests) == 1, digests


def test_encoding_twice_gives_the_same_bytes_and_seeds_differ():
    a = random_tensor((7, 8, 9), seed=13)
    one = lrq.dumps(lrq.encode(a, "signcut", width=20, seed=1))
    assert one == lrq.dumps(lrq.encode(a, "signcut", width=20, seed=1))
    assert one != lrq.dumps(lrq.encode(a, "signcut", width=20, seed=2))
    digest = hashlib.sha256(one).hexdigest()
    stepped = _native.TensorEncoder(a, seed=1)
    for step in (1, 7, 12):
        stepped.run(step)
    whole = _native.TensorEncoder(a, seed=1)
    whole.run(20)
    assert stepped.sections(4096) == whole.sections(4096)
    assert len(digest) == 64


@needs_gcc
def test_c_tensor_encoder_under_sanitizers(tmp_path):
    run_sanitized(tmp_path, "test_tensor_encoder", isas=("scalar", "avx512"))
