"""auto (the default): the best scheme's error, at little more than the
cost of the scheme it picks (spec §10; the choice is made by estimates)."""

from __future__ import annotations

import numpy as np
import pytest

import lrq
from lrq import encoder


def _matrices():
    rng = np.random.default_rng(3)
    return {
        "gauss": rng.standard_normal((300, 400)),
        "low_rank": rng.standard_normal((300, 8)) @ rng.standard_normal((8, 400)) + 0.05 * rng.standard_normal((300, 400)),
        "decaying": (rng.standard_normal((300, 300)) * 0.97 ** np.arange(300)) @ rng.standard_normal((300, 400)),
    }


@pytest.mark.parametrize("bits", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("kind", ["gauss", "low_rank", "decaying"])
def test_auto_matches_the_best_scheme(kind, bits):
    a = _matrices()[kind].astype(np.float32)
    best = min(lrq.encode(a, "signcut", bits=bits).rel_error,
               lrq.encode(a, "quant", bits=bits).rel_error if bits >= 2 else 1.0,
               lrq.encode(a, "lplr", bits=bits).rel_error,
               lrq.encode(a, "lplr", bits=bits, variant="svd").rel_error)
    auto = lrq.encode(a, bits=bits)
    assert auto.rel_error <= best * 1.01 + 1e-4
    if kind != "gauss":
        assert auto.scheme == "lplr"


def _flat(shape):
    return np.random.default_rng(4).standard_normal(shape)


# A flat spectrum near full rank (as MiniLM's weights have): quantizing the
# left factor costs nearly all of its noise there, so lplr cannot win and
# is not fitted (and from 2 bits up plain quantization wins on noise).
@pytest.mark.parametrize("a, bits, scheme, most", [
    (_matrices()["gauss"], 2.0, "quant", 0),
    (_flat((2048, 256)), 4.0, "quant", 0),
    (_flat((384, 384)), 1.0, "signcut", 0),
    (_matrices()["low_rank"], 2.0, "lplr", encoder._AUTO_LPLR_FITS),
], ids=["gauss", "flat_tall_4bits", "flat_square_1bit", "low_rank"])
def test_auto_fits_lplr_only_where_it_may_win(monkeypatch, a, bits, scheme, most):
    fits = []
    original = encoder._lplr_one
    monkeypatch.setattr(encoder, "_lplr_one", lambda *args, **kw: fits.append(1) or original(*args, **kw))
    assert lrq.encode(a.astype(np.float32), bits=bits).scheme == scheme
    assert len(fits) <= most and (most == 0 or fits)


def test_auto_on_a_photograph_is_signcut():
    sklearn = pytest.importorskip("sklearn.datasets")
    pytest.importorskip("PIL")
    a = sklearn.load_sample_image("china.jpg").mean(axis=2).astype(np.float32)
    for bits in (1.0, 2.0, 4.0):
        auto = lrq.encode(a, bits=bits)
        assert auto.rel_error <= lrq.encode(a, "signcut", bits=bits).rel_error * 1.01


# Budgets where signcut is the best scheme (from 3 bits up quant wins).
@pytest.mark.parametrize("shape, tile_shape, bits", [((80, 80), None, 1.5), ((300, 400), None, 1.5),
                                                     ((128, 192), (64, 64), 1.5), ((64, 48), None, 2.0)])
def test_auto_that_picks_signcut_gets_signcut_s_room(shape, tile_shape, bits):
    """The header bound of the schemes auto did not pick costs it no cut:
    where it picks signcut it makes signcut's cuts, tile by tile."""
    a = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    auto = lrq.encode(a, bits=bits, tile_shape=tile_shape)
    signcut = lrq.encode(a, "signcut", bits=bits, tile_shape=tile_shape)
    assert auto.scheme == "signcut"
    # Every tile gets at least signcut's cuts (the header bound is taken
    # from the scheme with the smallest entry, so rounding may leave auto
    # one cut more), and the budget holds.
    assert all(t[3]["width"] >= u[3]["width"] for t, u in zip(auto.tiles, signcut.tiles))
    assert auto.rel_error <= signcut.rel_error and auto.nbytes <= (bits or encoder.DEFAULT_BITS) * a.size / 8


def test_auto_finds_singular_vectors_only_for_an_lplr_fit(monkeypatch):
    """The estimate needs only the eigenvalues of the Gram matrix."""
    calls = []
    original = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda *args, **kw: calls.append(1) or original(*args, **kw))
    assert lrq.encode(_matrices()["gauss"].astype(np.float32), bits=2.0).scheme == "quant"
    assert calls == []
    assert lrq.encode(_matrices()["low_rank"].astype(np.float32), bits=2.0).scheme == "lplr"
    assert calls
