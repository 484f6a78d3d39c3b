"""Reading tensors from other formats for the CLI: ``.npy`` and ``.safetensors``.

The safetensors reader is our own (the format is a length, a JSON header and
raw little-endian data) so that bfloat16 tensors need no extra dependency:
they come back as their uint16 bit patterns tagged "bfloat16"
(``SourceTensor.as_float`` widens them to float32).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from . import safetensors_file
from .errors import FormatError


class SourceTensor:
    """A tensor read from an input file: its values and original dtype name."""

    def __init__(self, name: str, values: np.ndarray, dtype: str):
        self.name, self.values, self.dtype = name, values, dtype

    def as_float(self) -> np.ndarray:
        """Values as a float array an encoder takes (bfloat16 widened to float32)."""
        return safetensors_file.widen(self.values, self.dtype)

    @property
    def is_float_matrix(self) -> bool:
        return self.values.ndim == 2 and self.dtype in ("float64", "float32", "float16", "bfloat16")


def read_npy(path: str, name: str) -> Iterator[SourceTensor]:
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable .npy file: {exc}") from None
    yield SourceTensor(name, np.ascontiguousarray(values), values.dtype.name)


def read_safetensors(path: str) -> Iterator[SourceTensor]:
    """The tensors of a safetensors file (its ``__metadata__``: :func:`lrq.safetensors_file.read`)."""
    tensors, _ = safetensors_file.read(path)
    for tensor in tensors:
        yield SourceTensor(tensor.name, tensor.values, tensor.dtype)


def read_tensors(path: str) -> Iterator[SourceTensor]:
    """Tensors of an input file, by extension: ``.npy`` (one) or ``.safetensors``."""
    lower = path.lower()
    if lower.endswith(".npy"):
        stem = os.path.splitext(os.path.basename(path))[0] or "tensor"
        return read_npy(path, stem)
    if lower.endswith(".safetensors"):
        return read_safetensors(path)
    raise FormatError(f"{path}: unknown input type (expected .npy or .safetensors)")
