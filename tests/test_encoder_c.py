"""The C signcut encoder (issue 4): published numbers, exact error targets,
byte-identical output across instruction sets and thread counts, the edge
cases of the algorithm, the NumPy twin, refit, tiles, progress and Ctrl-C.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lrq
from lrq import _native
from lrq.reference import signcut
from _support import digests_across_isas, random_matrix, rel_error, split
from c_harness import needs_gcc, run_sanitized

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = {1024: 0.15, 2048: 0.025, 3072: 0.005}


def factors(matrix):
    """(S m×w, c, Tᵀ w×n) of a one-tile signcut matrix, from its sections."""
    c_raw, tt_raw, s_raw = split(lrq.dumps(matrix))[1]
    (m, n), w = matrix.shape, matrix.params["width"]
    panel = 4096
    s = _native.unpack_signs_f32(s_raw, m, w, panel)
    tt = _native.unpack_signs_f32(tt_raw, w, n, panel)
    return s, np.frombuffer(c_raw, dtype="<f4"), tt


# ---------------------------------------------------------------- published numbers


@pytest.mark.slow
def test_published_widths_through_the_c_encoder():
    a = random_matrix((512, 512), seed=0, dtype=np.float32)
    enc = _native.SignCutEncoder(a, seed=0, threads=2)
    for width, bound in PUBLISHED.items():
        enc.run(width - enc.width)
        assert enc.width == width
        assert enc.remainder_norm(exact=True) / enc.input_norm < bound, width


@pytest.mark.parametrize("seed", [1, 2])
def test_published_first_width_other_seeds(seed):
    a = random_matrix((512, 512), seed=seed, dtype=np.float32)
    matrix = lrq.encode(a, "signcut", width=1024, seed=seed)
    assert matrix.rel_error < PUBLISHED[1024]
    assert rel_error(a, lrq.decode(matrix)) < PUBLISHED[1024]


# ---------------------------------------------------------------- error targets


@pytest.mark.parametrize("goal", [0.5, 0.2, 0.05])
def test_rel_error_is_met_with_the_smallest_width(goal):
    a = random_matrix((96, 80), seed=4)
    matrix = lrq.encode(a, "signcut", rel_error=goal)
    w = matrix.params["width"]
    assert rel_error(a, lrq.decode(matrix)) <= goal
    assert matrix.rel_error <= goal
    shorter = lrq.encode(a, "signcut", width=w - 1)
    assert rel_error(a, lrq.decode(shorter)) > goal
    # The cuts of a target run are those of a width run: same seed, same stream.
    assert split(lrq.dumps(shorter))[1][0] == split(lrq.dumps(matrix))[1][0][: 4 * (w - 1)]


def test_reported_error_is_the_decoded_error():
    a = random_matrix((200, 150), seed=5)
    matrix = lrq.encode(a, "signcut", bits=3.0)
    assert matrix.rel_error == pytest.approx(rel_error(a, lrq.decode(matrix)), rel=1e-5)


# ---------------------------------------------------------------- determinism

_HASH_SCRIPT = r"""
import hashlib, sys
import numpy as np
import lrq
threads = int(sys.argv[1])
rng = np.random.default_rng(11)
digest = hashlib.sha256()
cases = [
    (rng.standard_normal((130, 77)).astype(np.float32), dict(width=100)),
    (rng.standard_normal((33, 300)), dict(rel_error=0.3)),
    (rng.standard_normal((257, 190)).astype(np.float32), dict(bits=2.0, tile_shape=(128, 128))),
    (np.eye(40, dtype=np.float32), dict(width=70)),
]
for a, kw in cases:
    digest.update(lrq.dumps(lrq.encode(a, "signcut", seed=3, threads=threads, **kw)))
print(lrq.build_info()["isa"], digest.hexdigest())
"""


@pytest.mark.slow
def test_files_are_byte_identical_across_isas_and_thread_counts():
    digests = digests_across_isas(_HASH_SCRIPT, (1, 2, 3))
    assert len(digests) == 1, digests


def test_run_steps_and_threads_do_not_change_the_cuts():
    a = random_matrix((150, 211), seed=6, dtype=np.float32)
    whole = _native.SignCutEncoder(a, seed=9, threads=1)
    whole.run(200)
    stepped = _native.SignCutEncoder(a, seed=9, threads=2)
    for step in (1, 31, 32, 7, 64, 65):
        stepped.run(step)
    assert stepped.width == 200
    assert whole.sections(64) == stepped.sections(64)
    # Measuring the exact error mid-way does not change later cuts either.
    peeked = _native.SignCutEncoder(a, seed=9, threads=1)
    for _ in range(20):
        peeked.run(10)
        peeked.remainder_norm(exact=True)
    assert peeked.sections(64) == whole.sections(64)


def test_strided_float32_view_is_encoded_like_a_copy():
    big = random_matrix((60, 90), seed=7, dtype=np.float32)
    view = big[5:45, 10:80]
    a = _native.SignCutEncoder(view, seed=1)
    b = _native.SignCutEncoder(np.ascontiguousarray(view), seed=1)
    a.run(50)
    b.run(50)
    assert a.sections(64) == b.sections(64)


# ---------------------------------------------------------------- edge cases


def test_all_zero_matrix_has_width_zero():
    for kw in (dict(width=5), dict(bits=8.0), dict(rel_error=0.1)):
        matrix = lrq.encode(np.zeros((20, 30), dtype=np.float32), "signcut", **kw)
        assert matrix.params == {"width": 0}
        assert matrix.rel_error == 0.0
        np.testing.assert_array_equal(lrq.decode(matrix), 0.0)
        assert lrq.decode(lrq.loads(lrq.dumps(matrix))).shape == (20, 30)


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_sign_of_zero_is_plus_one(zero):
    # A zero row has image +0 whatever t is (sums of ±0 round to +0), and
    # sign(+0) = +1: its bit in S is 0 in the first cut.
    a = random_matrix((9, 14), seed=8)
    a[3] = zero
    for seed in range(6):
        s, _, _ = factors(lrq.encode(a, "signcut", width=1, seed=seed))
        assert s[3, 0] == 1.0


def test_ones_1x1_is_exact_and_stops():
    matrix = lrq.encode(np.ones((1, 1), dtype=np.float32), "signcut", width=5)
    assert matrix.params == {"width": 1}
    assert lrq.decode(matrix)[0, 0] == 1.0 and matrix.rel_error == 0.0


def test_identity_3x3_first_cut_one_third():
    s, c, tt = factors(lrq.encode(np.eye(3), "signcut", width=1))
    assert c[0] == np.float32(1 / 3)
    np.testing.assert_array_equal(s[:, 0], tt[0])  # s = t on the valid bits


def test_orthogonal_start_restarts():
    # R = [1 -1]: a t of equal signs has a zero image; the restart finds the cut.
    for seed in range(8):
        matrix = lrq.encode(np.array([[1.0, -1.0]], dtype=np.float32), "signcut", width=3, seed=seed)
        assert matrix.params == {"width": 1} and matrix.rel_error == 0.0


# ---------------------------------------------------------------- the NumPy twin


def test_reference_with_the_c_random_stream_matches_the_first_cut():
    # Small integers: both encoders compute the first cut exactly, so with
    # the same random t they must agree on it bit for bit.
    rng = np.random.default_rng(12)
    for shape in ((9, 11), (40, 17), (65, 70)):
        a = rng.integers(-3, 4, size=shape).astype(np.float32)
        s_ref, t_ref, c_ref, _ = signcut.encode(a, width=1, seed=5, rng="lrq")
        s, c, tt = factors(lrq.encode(a, "signcut", width=1, seed=5))
        np.testing.assert_array_equal(s, s_ref)
        np.testing.assert_array_equal(tt.T, t_ref)
        assert c[0] == c_ref[0]


@pytest.mark.parametrize("shape, width", [((64, 64), 128), ((50, 120), 90), ((200, 30), 60)])
def test_reference_and_c_reach_the_same_error(shape, width):
    a = random_matrix(shape, seed=13)
    _, _, _, errors = signcut.encode(a, width=width, seed=2, rng="lrq")
    ours = lrq.encode(a, "signcut", width=width, seed=2).rel_error
    # Different arithmetic (float64 versus float32) changes later sign
    # decisions, not the quality: errors agree within a few percent.
    assert abs(ours - errors[-1]) <= 0.05 * errors[-1], (ours, errors[-1])


def test_lrq_random_stream_is_xoshiro256starstar():
    # First outputs of xoshiro256** seeded by SplitMix64(0), and the t they give.
    gen = signcut.LrqRandom(0)
    first = gen.next()
    assert first == signcut.LrqRandom(0).next()
    t = signcut.LrqRandom(0).signs(70)
    assert t.shape == (70,) and set(np.unique(t)) <= {-1.0, 1.0}
    bits = [(first >> b) & 1 for b in range(64)]
    np.testing.assert_array_equal(t[:64], np.where(np.array(bits) == 1, -1.0, 1.0))


# ---------------------------------------------------------------- refit option


def test_refit_never_increases_the_error_and_round_trips():
    a = random_matrix((120, 100), seed=14)
    plain = lrq.encode(a, "signcut", bits=2.0)
    refit = lrq.encode(a, "signcut", bits=2.0, refit=True)
    assert refit.params == plain.params
    assert refit.rel_error <= plain.rel_error
    assert refit.rel_error == pytest.approx(rel_error(a, lrq.decode(refit)), rel=1e-4)
    again = lrq.loads(lrq.dumps(refit))
    np.testing.assert_array_equal(lrq.decode(again), lrq.decode(refit))
    with pytest.raises(lrq.ArgumentError):
        lrq.encode(a, "signcut", bits=2.0, refit="yes")


# ---------------------------------------------------------------- tiles, progress


def test_tiles_in_parallel_equal_tiles_in_sequence():
    a = random_matrix((300, 260), seed=15, dtype=np.float32)
    one = lrq.dumps(lrq.encode(a, "auto", bits=2.0, tile_shape=(128, 128), threads=1))
    two = lrq.dumps(lrq.encode(a, "auto", bits=2.0, tile_shape=(128, 128), threads=2))
    assert one == two


def test_large_matrix_is_tiled_by_default():
    a = np.zeros((4100, 3), dtype=np.float32)
    a[::7, 1] = 1.0
    matrix = lrq.encode(a, "signcut", width=2)
    assert len(matrix.tiles) == 2
    whole = lrq.encode(a, "signcut", width=2, tile_shape=a.shape)
    assert len(whole.tiles) == 1


def test_progress_is_reported_from_the_calling_thread():
    import threading

    calls = []
    main = threading.get_ident()

    def progress(fraction, message):
        calls.append((fraction, message, threading.get_ident()))

    lrq.encode(random_matrix((200, 200), seed=16), "signcut", width=300, progress=progress,
               tile_shape=(100, 200))
    assert calls and calls[-1][0] == 1.0
    assert all(ident == main for _, _, ident in calls)
    assert any("cuts" in message for _, message, _ in calls)


@pytest.mark.slow
@pytest.mark.parametrize("tile", [None, ("1024", "1024")])
def test_ctrl_c_during_compress_leaves_no_file(tmp_path, tile):
    src = tmp_path / "big.npy"
    out = tmp_path / "big.lrq"
    np.save(src, random_matrix((2048, 2048), seed=17, dtype=np.float32))
    cmd = [sys.executable, "-m", "lrq.cli", "compress", str(src), str(out), "--scheme", "signcut", "--bits", "8"]
    if tile:
        cmd += ["--tile", *tile]
    # A shell's background job inherits SIGINT ignored; a user's Ctrl-C is
    # never ignored, so the child gets the default disposition back.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = proc.stderr.readline()  # the first progress line: encoding is under way
    assert "%" in line and "big" in line, line
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 20
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy"]


# ---------------------------------------------------------------- C, under sanitizers


@needs_gcc
def test_c_encoder_under_sanitizers(tmp_path):
    run_sanitized(tmp_path, "test_encoder", isas=("scalar", "avx2", "avx512"))


@needs_gcc
def test_c_encoder_kernels_equal_scalar_under_sanitizers(tmp_path):
    """tests/c/test_encoder_kernels.c: every encoder kernel of every path against scalar."""
    run_sanitized(tmp_path, "test_encoder_kernels")


def test_encoder_digest_is_stable_within_a_process():
    a = random_matrix((64, 48), seed=18, dtype=np.float32)
    first = hashlib.sha256(lrq.dumps(lrq.encode(a, "signcut", width=40))).hexdigest()
    assert first == hashlib.sha256(lrq.dumps(lrq.encode(a, "signcut", width=40))).hexdigest()


# ---------------------------------------------------------------- lplr quantization in C


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("shape, group", [((37, 300), 16), ((200, 129), 128), ((5, 7), 16), ((64, 64), 32)])
def test_c_quantizer_matches_the_reference(bits, shape, group):
    from lrq.reference import quant

    rng = np.random.default_rng(bits * 1000 + shape[0])
    x = rng.standard_normal(shape) * rng.uniform(0.1, 10, size=(shape[0], 1))
    x[min(3, shape[0] - 1)] = 0.0  # an all-zero row: scale 0, sigma from the others
    want = quant.quantize(x, bits, group)
    got = _native.quantize(x, bits, group)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1].view(np.uint16), want[1].view(np.uint16))
    assert got[2] == want[2]


def test_c_quantizer_rejects_bad_input():
    with pytest.raises(lrq.ArgumentError):
        _native.quantize(np.array([[1.0, np.nan]]), 2, 16)
    with pytest.raises(lrq.ArgumentError):
        _native.quantize(np.ones((2, 2)), 9, 16)
    codes, scales, sigma = _native.quantize(np.zeros((0, 5)), 2, 16)
    assert codes.shape == (0, 5) and scales.shape == (0, 1) and sigma == 1.0


def test_lplr_fit_matches_the_reference_fit():
    """Production's lplr fit (normal equations, C quantizer) and the
    reference's (QR, NumPy quantizer) give the same factors' error."""
    from lrq import lplr as fast
    from lrq.reference import lplr as ref

    a = random_matrix((120, 90), seed=19).astype(np.float64)
    left0 = fast.sketch(a, 12, 0)
    np.testing.assert_array_equal(left0, ref.starting_factor(a, 12, "sketch", 0))
    left = fast.quantize(left0, 3, 16)
    l_ref, r_ref, l_hat, r_hat = ref.fit(a, left0, 3, 2, 16)
    np.testing.assert_array_equal(left.values(), l_hat)
    right = fast.quantize(fast.least_squares(left.values(), a), 2, 16)
    got = np.linalg.norm(a - left.values() @ right.values())
    want = np.linalg.norm(a - l_hat @ r_hat)
    assert got == pytest.approx(want, rel=1e-4)
