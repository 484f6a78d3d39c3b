"""The numbers the design brief publishes (§7), checked as tests.

A 512×512 N(0, 1) matrix reaches relative error < 0.15, < 0.025 and < 0.005
with 1024, 2048 and 3072 signed cuts; a 1×1 matrix of ones is exact with one
cut; the first cut of the 3×3 identity has c = 1/3.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrq
from lrq.reference import signcut
from _support import random_matrix, rel_error, split

PUBLISHED = {1024: 0.15, 2048: 0.025, 3072: 0.005}


@pytest.fixture(scope="module")
def gaussian_512():
    return random_matrix((512, 512), seed=0)


@pytest.mark.slow
def test_signcut_error_at_published_widths(gaussian_512):
    # One reference encoding of 3072 cuts gives the error after every cut.
    _, _, c, errors = signcut.encode(gaussian_512, width=3072, seed=0)
    assert len(c) == len(errors) == 3072
    for width, bound in PUBLISHED.items():
        assert errors[width - 1] < bound, (width, errors[width - 1])
    assert all(b <= a for a, b in zip(errors, errors[1:])), "the error of the greedy never grows"


@pytest.mark.slow
def test_signcut_error_at_1024_cuts_through_the_public_api(gaussian_512):
    matrix = lrq.encode(gaussian_512, scheme="signcut", width=1024)
    assert matrix.params == {"width": 1024}
    assert matrix.rel_error < PUBLISHED[1024]
    assert rel_error(gaussian_512, lrq.decode(matrix)) < PUBLISHED[1024]


def test_ones_1x1_is_exact_with_one_cut():
    matrix = lrq.encode(np.ones((1, 1)), scheme="signcut", width=1)
    assert lrq.decode(matrix)[0, 0] == 1.0
    assert matrix.rel_error == 0.0
    assert lrq.decode(lrq.loads(lrq.dumps(matrix)))[0, 0] == 1.0


def test_identity_3x3_first_cut_has_c_one_third():
    _, _, c, _ = signcut.encode(np.eye(3), width=1, seed=0)
    assert c[0] == np.float32(1 / 3)
    matrix = lrq.encode(np.eye(3, dtype=np.float32), scheme="signcut", width=1)
    c_section = split(lrq.dumps(matrix))[1][0]
    assert np.frombuffer(c_section, dtype="<f4").tolist() == [np.float32(1 / 3)]
    # decode = c·s·tᵀ with s, t ∈ {±1}³: every entry is ±1/3.
    np.testing.assert_array_equal(np.abs(lrq.decode(matrix)), np.full((3, 3), np.float32(1 / 3)))


@pytest.mark.parametrize("m, n, w", [(1, 1, 1), (5, 3, 2), (17, 33, 20), (40, 7, 0)])
def test_signcut_from_factors_decodes_to_the_product(m, n, w):
    rng = np.random.default_rng(m * n + w)
    s = rng.choice([-1.0, 1.0], size=(m, w))
    t = rng.choice([-1, 1], size=(n, w)).astype(np.int8)
    c = rng.standard_normal(w)
    matrix = lrq.signcut_from_factors(s, t, c)
    want = s @ np.diag(c.astype(np.float32).astype(np.float64)) @ t.T
    assert matrix.shape == (m, n) and matrix.params == {"width": w}
    np.testing.assert_allclose(lrq.decode(matrix), want, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(c).sum()))
    data = lrq.dumps(matrix)
    loaded = lrq.loads(data)
    assert lrq.dumps(loaded) == data
    np.testing.assert_array_equal(lrq.decode(loaded), lrq.decode(matrix))
    x = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_allclose(loaded @ x, want @ x, rtol=1e-5, atol=1e-5 * np.abs(want).sum())


def test_signcut_from_factors_matches_the_encoder():
    # Wrapping the encoder's own factors gives the encoder's own sections.
    a = random_matrix((12, 9), seed=3)
    encoded = lrq.encode(a, scheme="signcut", width=5, seed=0)
    c, tt, s = split(lrq.dumps(encoded))[1]
    S = lrq._native.unpack_signs_f32(s, 12, 5, 4096)
    T = lrq._native.unpack_signs_f32(tt, 5, 9, 4096).T
    wrapped = lrq.signcut_from_factors(S, T, np.frombuffer(c, dtype="<f4"))
    np.testing.assert_array_equal(lrq.decode(wrapped), lrq.decode(encoded).astype(wrapped.dtype))
    assert split(lrq.dumps(wrapped))[1] == split(lrq.dumps(encoded))[1]
