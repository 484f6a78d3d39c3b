"""lrq.private_covariance (spec §10.6): what a user of a private release relies on.

The record says how the release was made and never holds the noise; the noise
has the calibrated scale and the shape the mechanism says; bad input fails
before anything is drawn or written; more budget (ε) means less error; the
error stays under the paper's rate; the complex mechanism is no worse than the
real one once the gap at k is large, and more accurate below the noise.  Randomness is seeded through the
testing-only ``generator`` argument.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import msgpack
import numpy as np
import pytest

import lrq
import lrq.reference
from lrq import private
from lrq.reference import container, surgery

RECORD_KEYS = {"mechanism", "epsilon", "delta", "rank", "clip", "sensitivity", "noise_scale", "library"}


def spiked_rows(n, d, k, strength, seed):
    """n unit-norm rows whose Gram matrix has k planted directions above the bulk."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = rng.standard_normal((n, d)) * np.r_[np.full(k, strength), np.ones(d - k)] @ basis.T
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def best_rank_k(M, k):
    w, V = np.linalg.eigh(M)
    return (V[:, -k:] * w[-k:]) @ V[:, -k:].T


def release_error(X, k, epsilon, mechanism, seed, delta=1e-6):
    result = lrq.private_covariance(X, k=k, epsilon=epsilon, delta=delta, clip=1.0, mechanism=mechanism,
                                    generator=np.random.default_rng(seed))
    return float(np.linalg.norm(result.release() - best_rank_k(X.T @ X, k))), result


@pytest.fixture(scope="module")
def release():
    X = spiked_rows(3000, 40, 3, 8.0, seed=1)
    return X, lrq.private_covariance(X, k=3, epsilon=0.5, delta=1e-5, clip=1.0, generator=np.random.default_rng(7))


def test_the_record_says_how_the_release_was_made(release):
    _, r = release
    p = r.matrix.privacy
    assert set(p) == RECORD_KEYS and p == r.privacy
    assert p["mechanism"] == "complex-gaussian" and p["rank"] == 3 and p["library"] == f"lrq {lrq.__version__}"
    assert p["epsilon"] == 0.5 and p["delta"] <= 1e-5 and p["delta"] == float(np.float32(p["delta"]))
    assert p["clip"] == 1.0 and p["sensitivity"] == 1.0
    assert p["noise_scale"] >= math.sqrt(2 * math.log(1.25 / p["delta"])) / p["epsilon"]


def test_round_trip_keeps_the_record_and_the_file_holds_no_noise(release, tmp_path):
    X, r = release
    path = tmp_path / "cov.lrq"
    lrq.save(path, {"cov": r.matrix})
    data = path.read_bytes()
    with lrq.open(path) as f:
        assert f.format_version == (1, 4) and f["cov"].privacy == r.privacy
        np.testing.assert_allclose(lrq.decode(f["cov"]), lrq.decode(r.matrix))
    assert lrq.loads(lrq.dumps(r.matrix)).privacy == r.privacy
    record = container.parse(data, lrq.reference.crc32c)
    assert record.optional_features == 1 and record.required_features == 0
    assert record.tensors[0].privacy == r.privacy
    # Nothing beyond the rank-k release: one tensor, a rank-k factorization,
    # no encoder map (its seed could be mistaken for the noise's), no other key.
    header = surgery.header(data)
    assert [t["name"] for t in header["tensors"]] == ["cov"] and "metadata" not in header
    tmap = header["tensors"][0]
    assert set(tmap) == {"name", "shape", "dtype", "tile_shape", "panel", "tiles", "rel_error", "privacy"}
    assert set(tmap["privacy"]) == RECORD_KEYS
    assert [tile["rank"] for tile in tmap["tiles"]] == [3]
    assert np.linalg.matrix_rank(lrq.decode(r.matrix), tol=1e-6 * np.abs(r.eigenvalues).max()) == 3


def test_a_decoder_of_1_2_reads_the_release_alike(release):
    _, r = release
    data = lrq.dumps(r.matrix)
    saved = container.KNOWN_OPTIONAL_FEATURES
    container.KNOWN_OPTIONAL_FEATURES = 0  # as a decoder that does not know private_release
    try:
        plain = container.parse(data, lrq.reference.crc32c)
        arrays = lrq.reference.decode(data)
    finally:
        container.KNOWN_OPTIONAL_FEATURES = saved
    assert plain.tensors[0].privacy is None
    np.testing.assert_allclose(arrays["covariance"], lrq.reference.decode(data)["covariance"])


@pytest.mark.parametrize("edit, rule", [
    (lambda p: p.update(noise_scale=p["noise_scale"] / 2), "PRV-6"),
    (lambda p: p.pop("clip"), "PRV-5"),
    (lambda p: p.update(seed=42), "PRV-1"),
])
def test_both_decoders_refuse_missing_or_inconsistent_fields(release, tmp_path, edit, rule):
    _, r = release
    data = lrq.dumps(r.matrix)
    header = surgery.header(data)
    edit(header["tensors"][0]["privacy"])
    bad = surgery.assemble(header, surgery.payloads(data), minor=4, optional=1)
    path = tmp_path / "bad.lrq"
    path.write_bytes(bad)
    with pytest.raises(lrq.FormatError, match=rf"\[{rule}\]"):
        lrq.open(path)
    with pytest.raises(lrq.FormatError, match=rf"\[{rule}\]"):
        lrq.loads(bad)
    with pytest.raises(lrq.FormatError, match=rf"\[{rule}\]"):
        lrq.reference.decode(bad)


def test_noise_has_the_calibrated_scale_and_the_mechanisms_shape():
    d, draws, sigma = 40, 60, 3.0
    zero = np.zeros((d, d))
    upper = np.triu_indices(d, 1)
    real_off, real_diag, imag_off, products = [], [], [], []
    for seed in range(draws):
        noise = private.noisy_matrix(zero, "complex-gaussian", sigma, np.random.default_rng(seed))
        assert np.array_equal(noise, noise.conj().T)  # Hermitian
        assert not np.diag(noise).imag.any()
        # the real part is exactly the real mechanism's noise for the same generator state
        assert np.array_equal(noise.real, private.noisy_matrix(zero, "real-gaussian", sigma, np.random.default_rng(seed)))
        real_off.append(noise.real[upper]); real_diag.append(np.diag(noise).real); imag_off.append(noise.imag[upper])
        products.append(noise.real[upper] * noise.imag[upper])
    real_off, real_diag, imag_off = map(np.concatenate, (real_off, real_diag, imag_off))

    def within_band(samples, variance):  # 6 standard errors of a sample variance
        return abs(np.mean(samples**2) / variance - 1) < 6 * math.sqrt(2 / samples.size)

    assert within_band(real_off, sigma**2) and within_band(imag_off, sigma**2)
    assert within_band(real_diag, 2 * sigma**2)
    assert abs(np.mean(real_off)) < 6 * sigma / math.sqrt(real_off.size)
    # real and imaginary parts independent: their correlation is within noise of 0
    assert abs(np.mean(np.concatenate(products))) / sigma**2 < 6 / math.sqrt(real_off.size)


def test_the_release_uses_the_recorded_noise_scale():
    """With no data and k = d the real mechanism releases its noise itself."""
    d = 30
    variances = []
    for seed in range(20):
        r = lrq.private_covariance(np.zeros((1, d)), k=d, epsilon=0.3, delta=1e-4, clip=2.0, mechanism="real-gaussian",
                                   scheme="dense", storage="float64", generator=np.random.default_rng(seed))
        noise = lrq.decode(r.matrix)
        variances.append(np.mean(noise[np.triu_indices(d, 1)] ** 2))
    sigma = r.privacy["noise_scale"]
    assert r.privacy["sensitivity"] == 4.0 and sigma == pytest.approx(4.0 * math.sqrt(2 * math.log(1.25e4)) / 0.3, rel=1e-6)
    samples = 20 * d * (d - 1) // 2
    assert abs(np.mean(variances) / sigma**2 - 1) < 6 * math.sqrt(2 / samples)


X_SMALL = np.random.default_rng(0).standard_normal((50, 8)) / 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(epsilon=0.0), "epsilon"), (dict(epsilon=-1.0), "epsilon"), (dict(epsilon=1.0), "epsilon"),
    (dict(epsilon=float("nan")), "epsilon"),
    (dict(delta=0.0), "delta"), (dict(delta=1.0), "delta"), (dict(delta=2.0), "delta"),
    (dict(k=0), "k must"), (dict(k=9), "k must"), (dict(k=2.5), "k must"), (dict(k=True), "k must"),
    (dict(clip=0.0), "clip"), (dict(clip=float("inf")), "clip"),
    (dict(mechanism="laplace"), "mechanism"),
    (dict(generator=1234), "generator"),
])
def test_bad_parameters_are_argument_errors_and_nothing_is_written(tmp_path, kwargs, message):
    args = dict(k=2, epsilon=0.5, delta=1e-5, clip=1.0, path=tmp_path / "out.lrq")
    args.update(kwargs)
    with pytest.raises(lrq.ArgumentError, match=message):
        lrq.private_covariance(X_SMALL, **args)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("X, message", [
    (np.full((3, 4), np.nan), "NaN"), (np.array([[1.0, np.inf]]), "NaN or infinity"),
    (np.ones((2, 2), dtype=complex), "real numbers"), (np.ones(4), "2-D"), (np.ones((0, 3)), "2-D"),
    ([["a", "b"]], "real numbers"),
])
def test_bad_data_are_argument_errors(tmp_path, X, message):
    with pytest.raises(lrq.ArgumentError, match=message):
        lrq.private_covariance(X, k=1, epsilon=0.5, delta=1e-5, clip=1.0, path=tmp_path / "out.lrq")
    assert os.listdir(tmp_path) == []


def test_rows_over_the_clip_norm_are_clipped_or_refused(tmp_path):
    X = np.array([[3.0, 4.0], [0.3, 0.4]])
    with pytest.raises(lrq.ArgumentError, match="row 0"):
        lrq.private_covariance(X, k=1, epsilon=0.5, delta=1e-5, clip=1.0, clip_rows=False, path=tmp_path / "o.lrq")
    assert os.listdir(tmp_path) == []
    # clipped, the big row counts as (0.6, 0.8): with no noise that is the whole difference
    r = lrq.private_covariance(X, k=2, epsilon=0.999, delta=0.999, clip=1.0, mechanism="real-gaussian",
                               scheme="dense", storage="float64", generator=np.random.default_rng(0))
    clipped = np.array([[0.6, 0.8], [0.3, 0.4]])
    noise = private.noisy_matrix(np.zeros((2, 2)), "real-gaussian", r.privacy["noise_scale"], np.random.default_rng(0))
    np.testing.assert_allclose(lrq.decode(r.matrix), clipped.T @ clipped + noise, atol=1e-9)


def test_path_writes_the_release_atomically(tmp_path):
    r = lrq.private_covariance(X_SMALL, k=2, epsilon=0.5, delta=1e-5, clip=1.0, path=tmp_path / "cov.lrq",
                               generator=np.random.default_rng(3))
    with lrq.open(tmp_path / "cov.lrq") as f:
        assert list(f) == ["covariance"] and f["covariance"].privacy == r.privacy


def test_error_decreases_as_epsilon_grows():
    X = spiked_rows(4000, 60, 3, 10.0, seed=2)
    means = [np.mean([release_error(X, 3, eps, "complex-gaussian", seed)[0] for seed in range(4)])
             for eps in (0.1, 0.3, 0.9)]
    assert means[0] > 1.5 * means[1] > 1.5 * 1.5 * means[2]


@pytest.mark.parametrize("mechanism", ["complex-gaussian", "real-gaussian"])
def test_error_is_below_the_evaluated_bound_when_the_gap_at_k_is_large(mechanism):
    X = spiked_rows(20000, 80, 4, 12.0, seed=3)
    for seed in range(3):
        error, r = release_error(X, 4, 0.5, mechanism, seed)
        assert r.diagnostics["gap_over_noise"] > 2  # the regime the bound is for
        assert error < r.diagnostics["utility_bound"]
        assert r.diagnostics["noisy_gap"] == pytest.approx(r.diagnostics["noisy_eigenvalues"][3]
                                                           - r.diagnostics["noisy_eigenvalues"][4])


def test_complex_mechanism_is_no_worse_than_the_real_one_in_the_gap_regime():
    """Paired draws (the complex mechanism's real part is the real mechanism's
    noise): once the gap at k is several times the noise's norm the two errors
    agree to first order, and the complex one is within 1 % of the real one."""
    X = spiked_rows(40000, 80, 4, 12.0, seed=4)
    complex_errors, real_errors = [], []
    for seed in range(8):
        error, r = release_error(X, 4, 0.5, "complex-gaussian", seed)
        assert r.diagnostics["gap_over_noise"] > 4
        complex_errors.append(error)
        real_errors.append(release_error(X, 4, 0.5, "real-gaussian", seed)[0])
    assert np.mean(complex_errors) <= 1.01 * np.mean(real_errors)


def test_lrq_info_shows_the_privacy_parameters(release, tmp_path):
    _, r = release
    path = tmp_path / "cov.lrq"
    lrq.save(path, {"cov": r.matrix})
    out = subprocess.run([sys.executable, "-m", "lrq", "info", str(path)], capture_output=True, text=True, check=True).stdout
    assert "private release" in out and "complex-gaussian" in out and "0.5" in out and "1e-05" in out
    listing = subprocess.run([sys.executable, "-m", "lrq", "info", "--json", str(path)], capture_output=True, text=True,
                             check=True).stdout
    assert '"noise_scale"' in listing and '"mechanism": "complex-gaussian"' in listing


def test_complex_noise_repels_eigenvalues_more_than_real_noise():
    """The paper's mechanism rests on GUE eigenvalues repelling more than GOE
    ones (gap tail s^(β+1), β = 2 against 1): near-collisions at k are rarer."""
    d, k, draws = 20, 10, 2000
    zero = np.zeros((d, d))
    collisions = {}
    for mechanism in private.MECHANISMS:
        gaps = []
        for seed in range(draws):
            values = np.linalg.eigvalsh(private.noisy_matrix(zero, mechanism, 1.0, np.random.default_rng(seed)))[::-1]
            gaps.append(values[k - 1] - values[k])
        gaps = np.array(gaps) / np.mean(gaps)
        collisions[mechanism] = int(np.sum(gaps < 0.2))
    # Wigner surmise: about 3 % of GOE gaps and under 1 % of GUE gaps are below 0.2 of the mean
    assert collisions["complex-gaussian"] * 2 < collisions["real-gaussian"]


def test_complex_mechanism_is_more_accurate_when_the_gap_at_k_is_below_the_noise():
    d, k = 120, 4
    rng = np.random.default_rng(11)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    gap = 0.5 * 2 * math.sqrt(d)  # half the real noise's spectral norm for σ = 1
    M = (basis * np.r_[np.full(k, gap + 1.0), np.linspace(1, 0, d - k)]) @ basis.T
    target = best_rank_k(M, k)
    errors = {}
    for mechanism in private.MECHANISMS:
        values = []
        for seed in range(6):
            mu, V, _ = private.release_factors(private.noisy_matrix(M, mechanism, 1.0, np.random.default_rng(seed)), k)
            values.append(np.linalg.norm((V * mu) @ V.T - target))
        errors[mechanism] = np.mean(values)
    assert errors["complex-gaussian"] < 0.95 * errors["real-gaussian"]
