"""Every scheme gives the same relative error at every scale a float32 can
hold, or refuses with a clear ArgumentError; auto never fails because one
scheme cannot store the magnitude (spec §10: inputs are encoded normalised
by a power of two, folded back into c, c_scale or the lplr super-scales)."""

from __future__ import annotations

import numpy as np
import pytest

import lrq

SCALES = (1e-44, 1e-38, 1e-30, 1.0, 1e36, 1e37, 3e38)


def _gauss(scale: float, dtype=np.float64) -> np.ndarray:
    a = np.random.default_rng(0).standard_normal((200, 300))
    return (a / np.abs(a).max() * scale).astype(dtype)


def _encode(scale, scheme, **kw):
    try:
        return lrq.encode(_gauss(scale), scheme, **kw)
    except lrq.ArgumentError as exc:
        assert "magnitude" in str(exc) and "lrq_" not in str(exc), str(exc)
        return None


@pytest.mark.parametrize("scheme", ["signcut", "lplr"])
def test_factorizations_keep_their_error_at_every_scale(scheme):
    reference = lrq.encode(_gauss(1.0), scheme, bits=2.0).rel_error
    for scale in SCALES:
        M = _encode(scale, scheme, bits=2.0)
        if M is None:
            # Only where the stored weights cannot hold the magnitude.
            assert scheme == "signcut" and scale < 1e-40
            continue
        assert M.rel_error == pytest.approx(reference, abs=0.005), scale
        assert M.rel_error < 1.0


def test_power_of_two_scales_give_identical_errors():
    for scheme in ("signcut", "lplr"):
        base = lrq.encode(_gauss(1.0), scheme, bits=2.0)
        for k in (-100, -60, 60, 120):  # decoded values stay normal floats
            M = lrq.encode(np.ldexp(_gauss(1.0), k), scheme, bits=2.0)
            assert M.rel_error == base.rel_error
            np.testing.assert_array_equal(np.ldexp(lrq.decode(base).astype(np.float64), k),
                                          lrq.decode(M).astype(np.float64))


def test_signcut_refit_and_float16_weights_at_large_and_small_scales():
    reference = lrq.encode(_gauss(1.0), "signcut", bits=2.0, refit=True).rel_error
    for scale in (1e-30, 1e30):
        assert lrq.encode(_gauss(scale), "signcut", bits=2.0, refit=True).rel_error == pytest.approx(reference, abs=0.005)
        c16 = lrq.encode(_gauss(scale), "signcut", bits=2.0, c_storage="float16")
        assert c16.rel_error < 0.5
    with pytest.raises(lrq.ArgumentError, match="c_storage='float32'"):
        lrq.encode(_gauss(3e38), "signcut", bits=2.0, c_storage="float16")


def test_dense_keeps_its_storage_precision_or_refuses():
    for scale in SCALES:
        a = _gauss(scale, np.float32)
        M = lrq.encode(a, "dense", bits=40.0)
        assert M.params["storage"] == "float32" and M.rel_error == 0.0, scale  # float32 values: exact
        M = _encode(scale, "dense", bits=40.0)  # float64 values into float32
        if M is None:
            assert scale < 1.2e-38
        else:
            assert M.rel_error <= 2.0**-24
        M = _encode(scale, "dense", bits=17.0)
        if M is not None:
            assert M.rel_error <= 2.0**-8, scale


def test_auto_never_fails_because_one_scheme_did():
    at_one = lrq.encode(_gauss(1.0), bits=2.0).rel_error
    for scale in SCALES:
        M = lrq.encode(_gauss(scale), bits=2.0)
        if scale < 1e-40:  # signcut's float32 weights cannot hold it: the best of the others
            others = lrq.encode(_gauss(scale), "lplr", bits=2.0, variant="svd").rel_error
            assert M.rel_error <= others + 0.005
        else:
            assert M.rel_error == pytest.approx(at_one, abs=0.005), scale


def test_the_float32_range_edges_encode():
    tiny = np.full((4, 4), 2.0**-149, dtype=np.float32)
    assert lrq.encode(tiny, "dense").rel_error == 0.0
    peak = np.full((4, 4), np.finfo(np.float32).max, dtype=np.float32)
    # Its signcut decodes past float32 (the cuts overshoot): refused, not inf.
    with pytest.raises(lrq.ArgumentError, match="overflow float32"):
        lrq.encode(peak, "signcut", width=4)
    assert lrq.encode(peak, "dense").rel_error == 0.0
