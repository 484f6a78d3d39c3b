"""Differentially private rank-k approximation of XᵀX (spec §10.6).

:func:`private_covariance` releases a rank-k approximation of the Gram matrix
M = XᵀX of data rows clipped to norm ``clip``, under (ε, δ)-differential
privacy (neighbouring data sets differ by adding or removing one row), with
one of two mechanisms:

- ``"complex-gaussian"`` (the default): Mangoubi & Vishnoi's complex variant
  of the Gaussian mechanism, M̂ = M + σ·(W + W*)/√2 with Re W and Im W
  independent d×d matrices of i.i.d. N(0, 1) entries — a GUE perturbation
  whose real part is exactly the noise of the real mechanism;
- ``"real-gaussian"``: the real Gaussian mechanism ("Analyze Gauss", Dwork,
  Talwar, Thakurta & Zhang), M̂ = M + σ·(G + Gᵀ)/√2 — a GOE perturbation.

σ = Δ·√(2 ln(1.25/δ))/ε with Δ = clip² (one row x changes M by x xᵀ, whose
Frobenius norm is ‖x‖² ≤ clip²), the classical calibration, valid for
0 < ε < 1.  Every off-diagonal entry of the noise's real part has variance
σ², which is what the calibration needs; the diagonal gets 2σ², because that
is what makes the noise a GOE/GUE, the ensembles whose eigenvalue repulsion
(β = 1, 2) the paper's gap bounds are about.

The release is computed from M̂ alone (post-processing, so it keeps the
guarantee): the top-k eigenpairs of M̂ give the rank-k Hermitian matrix
Ĥ = V̂ diag(λ̂) V̂*; its real part Re Ĥ (the closest real matrix to Ĥ, so
never farther from the real M_k than Ĥ) has rank at most 2k and is cut back
to its best rank-k approximation, the matrix stored.  Spec §10.6 and
docs (README) say why each choice the paper leaves open is made as it is.

The stored file records the mechanism, ε, δ, k, the clip norm, the
sensitivity, the noise scale and the library version — never the noise,
the noisy matrix, or a seed: the noise comes from the operating system's
entropy unless a test passes an explicit ``generator`` (reproducible noise
is a testing-only choice, and the generator is never stored).

This module also holds the production check of the privacy record
([PRV-1]–[PRV-8]); ``lrq.reference`` keeps its own, written from the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import format as container
from .errors import ArgumentError, FormatError

MECHANISMS = ("complex-gaussian", "real-gaussian")
# Keys of the privacy record in writer order [HDR-13], spec §10.6 [PRV-1].
RECORD_KEYS = ("mechanism", "epsilon", "delta", "rank", "clip", "sensitivity", "noise_scale", "library")
# Relative tolerance of the consistency rules [PRV-5], [PRV-6]: binary32
# rounding of each stored value is 2^-24; libm differences are far smaller.
CONSISTENCY = 2.0**-20
MAX_LIBRARY_BYTES = 256  # [PRV-7]


def calibrated_noise_scale(epsilon: float, delta: float, sensitivity: float) -> float:
    """σ = Δ·√(2 ln(1.25/δ))/ε, the Gaussian mechanism's calibration (spec [PRV-6])."""
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def utility_bound(d: int, k: int, epsilon: float, delta: float, sensitivity: float) -> float:
    """The paper's Frobenius utility rate √(kd)·√(log(1/δ))/ε (times Δ), evaluated.

    Mangoubi & Vishnoi state it as Õ(√(kd))·√(log(1/δ))/ε when the gap
    between the k-th and (k+1)-th eigenvalues is large enough.  The Õ hides
    constants and logarithmic factors the stored copies of the paper
    available to lrq do not give; lrq evaluates it with constant 1 and one
    factor ln d (spec §10.6), so it is the rate's value, not a proven bound.
    """
    return math.sqrt(k * d) * math.log(max(d, 2)) * math.sqrt(math.log(1.0 / delta)) / epsilon * sensitivity


@dataclass
class PrivateCovariance:
    """What :func:`private_covariance` returns.

    ``matrix`` is the stored release (an :class:`lrq.Matrix` carrying the
    privacy record, ``matrix.privacy``); ``eigenvalues`` (k) and
    ``eigenvectors`` (d×k, orthonormal columns) are the released rank-k
    factorization before any quantization, so the exact release is
    ``V @ diag(λ) @ V.T``.  ``privacy`` is the record the file keeps.
    ``diagnostics``, all computed from the noisy matrix (so as private as the
    release):

    - ``noisy_eigenvalues``: the k+1 largest eigenvalues of M̂;
    - ``noisy_gap``: λ̂_k − λ̂_{k+1}, the eigenvalue gap at k of the noisy spectrum;
    - ``noise_norm``: the spectral norm the noise has for large d
      (2√d·σ for the real mechanism's GOE, 2√(2d)·σ for the GUE);
    - ``gap_over_noise``: ``noisy_gap / noise_norm`` — the bound is meant for
      a gap well above the noise (≳ 1), where the top-k subspace is stable;
    - ``utility_bound``: :func:`utility_bound` for (d, k, ε, δ, Δ).
    """

    matrix: object
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    privacy: dict
    diagnostics: dict = field(default_factory=dict)

    def release(self) -> np.ndarray:
        """The released d×d matrix V·diag(λ)·Vᵀ (before the storage scheme's rounding)."""
        return (self.eigenvectors * self.eigenvalues) @ self.eigenvectors.T


def _round_f32(value: float, direction: str) -> float:
    """``value`` as the binary32 nearest on the side ``direction`` ("down", "up")."""
    rounded = float(np.float32(value))
    if direction == "down" and rounded > value:
        rounded = float(np.nextafter(np.float32(rounded), np.float32(-np.inf)))
    elif direction == "up" and rounded < value:
        rounded = float(np.nextafter(np.float32(rounded), np.float32(np.inf)))
    return rounded


def _positive_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ArgumentError(f"private_covariance: {name} must be a number, not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ArgumentError(f"private_covariance: {name} must be finite, not {value}")
    return value


def _check_arguments(X, k, epsilon, delta, clip, mechanism, clip_rows, generator) -> tuple:
    """The data and the parameters as the mechanism uses them, or ArgumentError."""
    if mechanism not in MECHANISMS:
        raise ArgumentError(f"private_covariance: mechanism must be one of {', '.join(MECHANISMS)}, not {mechanism!r}")
    epsilon = _positive_float(epsilon, "epsilon")
    if not 0 < epsilon < 1:
        raise ArgumentError(f"private_covariance: epsilon must be in (0, 1), not {epsilon}: the Gaussian "
                            "mechanism's calibration σ = Δ·√(2 ln(1.25/δ))/ε holds only for ε < 1 (spec [PRV-3])")
    delta = _positive_float(delta, "delta")
    if not 0 < delta < 1:
        raise ArgumentError(f"private_covariance: delta must be in (0, 1), not {delta} (spec [PRV-3])")
    clip = _positive_float(clip, "clip")
    if not clip > 0:
        raise ArgumentError(f"private_covariance: clip (the bound on each row's norm) must be > 0, not {clip}")
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise ArgumentError("private_covariance: generator must be a numpy.random.Generator (for tests only) or None")
    try:
        X = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - any failure to make an array is the caller's input
        raise ArgumentError(f"private_covariance: X is not an array: {exc}") from None
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ArgumentError(f"private_covariance: X must be a 2-D array of n >= 1 rows and d >= 1 columns, "
                            f"not shape {X.shape}")
    if X.dtype.kind not in "fiu":
        raise ArgumentError(f"private_covariance: X must hold real numbers, not {X.dtype}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ArgumentError("private_covariance: X holds NaN or infinity")
    d = X.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise ArgumentError(f"private_covariance: k must be an int in [1, d] = [1, {d}], not {k!r}")
    # The values the file records are binary32 ([HDR-8]); the mechanism uses
    # exactly them, each rounded to the side that keeps the guarantee at least
    # as strong as asked: ε and δ down, the clip norm up.
    epsilon32, delta32 = _round_f32(epsilon, "down"), _round_f32(delta, "down")
    clip32 = _round_f32(clip, "up")
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    over = norms > clip
    if over.any():
        if not clip_rows:
            first = int(np.argmax(over))
            raise ArgumentError(f"private_covariance: {int(over.sum())} row(s) of X have a norm above clip = {clip} "
                                f"(the first is row {first}) and clip_rows=False; clip them, or pass clip_rows=True")
        X = X * np.where(over, clip / np.where(over, norms, 1.0), 1.0)[:, None]
    return X, int(k), epsilon32, delta32, clip32


def _noise_generator(generator: Optional[np.random.Generator]) -> np.random.Generator:
    # A SeedSequence made without entropy draws 128 bits from the OS; the seed
    # lives only inside this generator, which is dropped after the draw.
    return generator if generator is not None else np.random.Generator(np.random.PCG64(np.random.SeedSequence()))


def noisy_matrix(M: np.ndarray, mechanism: str, noise_scale: float, generator: np.random.Generator) -> np.ndarray:
    """M + the mechanism's noise (spec §10.6): real symmetric, or complex Hermitian.

    The real part is σ·(G + Gᵀ)/√2 with G's d² entries drawn first, row by
    row; the complex mechanism then draws H the same way and adds
    i·σ·(H − Hᵀ)/√2.  So for one generator state the complex mechanism's real
    part is the real mechanism's noise.
    """
    d = M.shape[0]
    scale = noise_scale / math.sqrt(2.0)
    G = generator.standard_normal((d, d))
    noisy = M + scale * (G + G.T)
    del G
    if mechanism == "real-gaussian":
        return noisy
    H = generator.standard_normal((d, d))
    return noisy + 1j * (scale * (H - H.T))


def release_factors(noisy: np.ndarray, k: int) -> tuple:
    """(μ, V, top k+1 noisy eigenvalues): the rank-k real release of M̂.

    Ĥ = V̂ diag(λ̂) V̂* from the k largest eigenvalues of M̂; Re Ĥ =
    U diag(λ̂, λ̂) Uᵀ with U = [Re V̂, Im V̂], whose best rank-k approximation
    comes from a 2k×2k eigenproblem.  For the real mechanism Re Ĥ = Ĥ.
    """
    d = noisy.shape[0]
    values, vectors = np.linalg.eigh(noisy)
    order = np.argsort(values)[::-1]
    top = values[order[: min(k + 1, d)]]
    lam, vec = values[order[:k]], vectors[:, order[:k]]
    if not np.iscomplexobj(vec):
        return lam, vec, top
    U = np.concatenate([vec.real, vec.imag], axis=1)
    Q, T = np.linalg.qr(U)
    small = (T * np.concatenate([lam, lam])) @ T.T
    mu, W = np.linalg.eigh((small + small.T) / 2)
    pick = np.argsort(mu)[::-1][:k]
    return mu[pick], Q @ W[:, pick], top


def private_covariance(
    X,
    *,
    k: int,
    epsilon: float,
    delta: float,
    clip: float,
    mechanism: str = "complex-gaussian",
    clip_rows: bool = True,
    scheme: str = "lplr",
    name: Optional[str] = None,
    path=None,
    generator: Optional[np.random.Generator] = None,
    **encode_options,
) -> PrivateCovariance:
    """A rank-k approximation of XᵀX under (ε, δ)-differential privacy, stored by lrq.

    Parameters
    ----------
    X : array_like, n × d, real, finite
        One row per individual.  Neighbouring data sets differ by one row.
    k : int in [1, d]
        Rank of the release.
    epsilon : float in (0, 1); delta : float in (0, 1)
        The privacy parameters.  The mechanism uses (and the file records)
        their binary32 values rounded down, so the guarantee is never weaker
        than asked.
    clip : float > 0
        Bound on every row's Euclidean norm; the sensitivity is clip².
        Rows above it are scaled down to norm ``clip`` (``clip_rows=True``,
        the default) or refused (``clip_rows=False``: ArgumentError).  The
        bound must not be chosen by looking at the data (that would leak).
    mechanism : "complex-gaussian" (default) or "real-gaussian"
    scheme : str, default "lplr"
        How the released factors are stored: any ``lrq.encode`` scheme
        (post-processing keeps the guarantee).  The default stores an lplr
        factorization of rank k with 8-bit factors (``rank``, ``bits_l``,
        ``bits_r`` and ``variant="svd"`` unless given in ``encode_options``);
        "dense" stores the release in float32.
    name : str, optional
        The tensor's name (default "covariance").
    path : str or path-like, optional
        Also write the release to this `.lrq` file, atomically.
    generator : numpy.random.Generator, optional — FOR TESTS ONLY
        Draw the noise from this generator instead of fresh OS entropy.
        Whoever knows its seed can subtract the noise and undo the privacy;
        a release meant to be private never passes one.  It is never stored.
    **encode_options
        Passed to :func:`lrq.encode` (e.g. ``bits=``, ``rel_error=``).

    Returns
    -------
    PrivateCovariance
        The stored matrix, the rank-k factors, the privacy record and the
        diagnostics (noisy eigen-gap at k, the paper's utility rate).

    Raises
    ------
    lrq.ArgumentError
        ε ∉ (0, 1), δ ∉ (0, 1), k ∉ [1, d], clip ≤ 0, non-finite or non-real
        data, rows over ``clip`` with ``clip_rows=False``, an unknown mechanism
        — all checked before any noise is drawn; nothing is written on failure.
    """
    from . import __version__
    from .encoder import encode
    from .io import save

    X, k, epsilon, delta, clip = _check_arguments(X, k, epsilon, delta, clip, mechanism, clip_rows, generator)
    name = "covariance" if name is None else name
    d = X.shape[1]
    sensitivity = _round_f32(clip * clip, "up")
    noise_scale = _round_f32(calibrated_noise_scale(epsilon, delta, sensitivity), "up")
    record = {"mechanism": mechanism, "epsilon": epsilon, "delta": delta, "rank": k, "clip": clip,
              "sensitivity": sensitivity, "noise_scale": noise_scale, "library": f"lrq {__version__}"}
    if scheme == "lplr":
        encode_options.setdefault("rank", k)
        encode_options.setdefault("bits_l", 8)
        encode_options.setdefault("bits_r", 8)
        encode_options.setdefault("variant", "svd")
    noisy = noisy_matrix(X.T @ X, mechanism, noise_scale, _noise_generator(generator))
    mu, V, top = release_factors(noisy, k)
    del noisy  # the noisy matrix is not part of the release
    released = (V * mu) @ V.T
    matrix = encode((released + released.T) / 2, scheme, name=name, **encode_options)
    # The encoder's own informational map (its seed is a sketch seed, not the
    # noise's) is dropped so that nothing in the file resembles a noise seed.
    matrix._record.encoder = None
    matrix._record.privacy = dict(record)
    noise_norm = 2.0 * math.sqrt(d * (2 if mechanism == "complex-gaussian" else 1)) * noise_scale
    gap = float(top[k - 1] - top[k]) if k < d else float("inf")
    diagnostics = {
        "noisy_eigenvalues": top.copy(),
        "noisy_gap": gap,
        "noise_norm": noise_norm,
        "gap_over_noise": gap / noise_norm,
        "utility_bound": utility_bound(d, k, epsilon, delta, sensitivity),
    }
    result = PrivateCovariance(matrix, mu, V, dict(record), diagnostics)
    if path is not None:
        save(path, {name: matrix})
    return result


# --------------------------------------------------------------------------
# The privacy record as the production reader checks it (spec §10.6)


def _fail(where: str, message: str, rule: str):
    raise FormatError(f"{where}: {message} [{rule}]")


def _record_float(record: dict, key: str, where: str, rule: str) -> float:
    value = record.get(key)
    if key not in record or isinstance(value, bool) or not isinstance(value, float):
        _fail(where, f"privacy '{key}' must be a float", rule)
    return float(np.float32(value))  # [HDR-8]


def check_record(record, shape: tuple, dtype: str, where: str) -> dict:
    """A tensor's privacy record checked against [PRV-1]–[PRV-7]; the record as binary32 values."""
    if not isinstance(record, dict):
        _fail(where, "'privacy' must be a map", "PRV-1")
    unknown = sorted(set(record) - set(RECORD_KEYS))
    if unknown:
        _fail(where, f"the privacy record holds keys it must not have: {', '.join(unknown)[:80]}", "PRV-1")
    mechanism = record.get("mechanism")
    if type(mechanism) is not str or mechanism not in MECHANISMS:
        _fail(where, f"privacy 'mechanism' must be one of {', '.join(MECHANISMS)}", "PRV-2")
    epsilon = _record_float(record, "epsilon", where, "PRV-3")
    delta = _record_float(record, "delta", where, "PRV-3")
    if not (0 < epsilon < 1 and 0 < delta < 1):
        _fail(where, f"privacy epsilon = {epsilon} and delta = {delta} must both be in (0, 1)", "PRV-3")
    if len(shape) != 2 or shape[0] != shape[1] or not container.DTYPES[dtype][2]:
        _fail(where, f"a private release is a square float matrix, not shape {list(shape)} {dtype}", "PRV-4")
    rank = record.get("rank")
    if type(rank) is not int or not 1 <= rank <= shape[0]:
        _fail(where, f"privacy 'rank' must be an int in [1, {shape[0]}]", "PRV-4")
    clip = _record_float(record, "clip", where, "PRV-5")
    sensitivity = _record_float(record, "sensitivity", where, "PRV-5")
    if not (math.isfinite(clip) and clip > 0) or not abs(sensitivity / (clip * clip) - 1) <= CONSISTENCY:
        _fail(where, f"privacy clip = {clip} and sensitivity = {sensitivity}: the sensitivity must be clip²", "PRV-5")
    noise_scale = _record_float(record, "noise_scale", where, "PRV-6")
    want = calibrated_noise_scale(epsilon, delta, sensitivity)
    if not abs(noise_scale / want - 1) <= CONSISTENCY:
        _fail(where, f"privacy noise_scale = {noise_scale} is not Δ·√(2 ln(1.25/δ))/ε = {want:.9g}", "PRV-6")
    library = record.get("library")
    if type(library) is not str or not 1 <= len(library.encode("utf-8")) <= MAX_LIBRARY_BYTES:
        _fail(where, f"privacy 'library' must be a str of 1 to {MAX_LIBRARY_BYTES} bytes", "PRV-7")
    return {"mechanism": mechanism, "epsilon": epsilon, "delta": delta, "rank": rank, "clip": clip,
            "sensitivity": sensitivity, "noise_scale": noise_scale, "library": library}


def attach_records(header: dict, record: container.FileRecord) -> None:
    """Check the privacy records of a file that sets ``private_release`` and
    attach them to its tensors ([PRV-1]–[PRV-8]); other files' "privacy"
    keys are unknown keys ([PRV-9])."""
    if not record.optional_features & container.PRIVATE_RELEASE:
        return
    found = False
    for tmap, tensor in zip(header["tensors"], record.tensors):
        if "privacy" in tmap:
            tensor.privacy = check_record(tmap["privacy"], tuple(tensor.shape), tensor.dtype, f"tensor '{tensor.name}'")
            found = True
    if not found:
        raise FormatError("optional_features sets private_release (bit 0) but no tensor has a 'privacy' record [PRV-8]")
