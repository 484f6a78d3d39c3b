"""Bounded work for any request, and no internal warnings for odd inputs."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import lrq
from lrq import encoder


def test_a_huge_width_on_a_small_matrix_is_capped_at_its_entries():
    calls = []

    def progress(fraction, message):
        calls.append(message)
        assert len(calls) < 10_000, "the encoder keeps cutting"

    a = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    M = lrq.encode(a, "signcut", width=2**31 - 1, progress=progress)
    assert M.params["width"] <= encoder.max_width(a.shape) == 64
    assert M.rel_error < 0.01


def test_cutting_stops_when_no_cut_lowers_the_remainder():
    a = np.random.default_rng(2).standard_normal((40, 30)).astype(np.float32)
    M = lrq.encode(a, "signcut", width=1200)
    assert M.rel_error < 1e-5
    assert M.params["width"] <= 1200


def test_an_exact_matrix_stops_at_the_cuts_it_needs():
    a = np.outer([1.0, -1.0, 1.0], [1.0, 1.0, -1.0, 1.0]).astype(np.float32) * 3
    M = lrq.encode(a, "signcut", width=2**20)
    assert M.params["width"] == 1 and M.rel_error == 0.0


_rng = np.random.default_rng(0)
ODD_INPUTS = {
    "constant": np.full((30, 20), 3.0, np.float32),
    "zeros": np.zeros((10, 12), np.float32),
    "rank1": np.outer(_rng.standard_normal(25), _rng.standard_normal(17)).astype(np.float32),
    "tiny": (_rng.standard_normal((20, 30)) * 1e-42).astype(np.float32),
    "huge": (_rng.standard_normal((20, 30)) * 1e37).astype(np.float32),
    "float32_max": np.full((4, 4), 3.4e38, np.float32),
    "one": np.ones((1, 1), np.float32),
    "zero_rows": np.vstack([np.zeros((5, 16)), _rng.standard_normal((5, 16))]).astype(np.float32),
    "row": _rng.standard_normal((1, 50)).astype(np.float32),
    "float64_tiny": _rng.standard_normal((8, 8)) * 1e-200,
    "subnormal": np.full((6, 6), 1e-45, np.float32),
}
OPTIONS = [("lplr", {"variant": "svd"}), ("lplr", {"rank": 1, "bits_l": 1, "bits_r": 1}),
           ("signcut", {"c_storage": "float16"}), ("signcut", {"refit": True}), ("auto", {}),
           ("dense", {"storage": "float16"})]
TARGETS = [{}, {"bits": 2.0}, {"rel_error": 0.1}]


@pytest.mark.parametrize("name", sorted(ODD_INPUTS))
def test_odd_inputs_raise_no_warning_and_name_no_c_function(name):
    a = ODD_INPUTS[name]
    for (scheme, options), target in itertools.product(OPTIONS, TARGETS):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                M = lrq.encode(a, scheme, **options, **target)
            except lrq.LrqError as exc:
                assert "lrq_" not in str(exc), (scheme, options, target, str(exc))
                continue
            assert np.isfinite(lrq.decode(M)).all(), (scheme, options, target)
