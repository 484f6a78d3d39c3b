"""Order-d tensors as signed cuts (spec §10.5, format 1.3).

A tensor of order d = 3 … 8 is stored as

    A ≈ Σ_k c_k · s_k⁽⁰⁾ ⊗ s_k⁽¹⁾ ⊗ … ⊗ s_k⁽ᵈ⁻¹⁾,   s_k⁽ᵃ⁾ ∈ {±1}^{n_a},

found greedily by the C encoder (``lrq_tensor_encoder``, ``encode/tensor.c``)
with the remainder's norm exact after every term, so ``width=``, ``bits=``
and ``rel_error=`` targets work as for matrices.  Each mode's vectors are
one sign matrix (n_a rows, w columns) in the kernels' interleaved layout.

Computing on the factors: a contraction with a vector along mode k is
``y = S_kᵀ x`` (w sums over n_k signs), then the tensor of the other modes
with weights c ⊙ y.  That tensor, like the decoded one, is evaluated by the
C signcut matrix kernels: its modes are split into a leading and a trailing
group whose Kronecker sign matrices (each about √(size) × w bits) are the
S and T of one signcut tile, so the work is the kernels' w sign-MACs per
output entry and the temporary is far smaller than the output.

The other route to a tensor, reshaping it to a matrix and encoding that
with any scheme, needs nothing from this module (``bench/tensors.py``
compares the two at equal bits).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from . import _native
from . import format as container
from .errors import ArgumentError, BudgetError, FormatError
from .matrix import Matrix

_SAFE_SUM = (1.0 - 2.0**-16) * 2.0**128  # binary32-safe bound of Σ|c| [NUM-3]


def stored(record: container.TensorRecord, **kwargs) -> Matrix:
    """The object for a tensor record: a :class:`Tensor` for an order-d signcut
    tensor (spec §10.5), else a :class:`lrq.Matrix`."""
    tile = record.tiles[0] if len(record.tiles) == 1 else None
    if tile is not None and container.is_tensor_tile(tile.scheme, tile.shape):
        return Tensor(record, **kwargs)
    return Matrix(record, **kwargs)


def balanced_split(shape: tuple) -> int:
    """How many leading modes form the rows of a tensor's matrix K_P · diag(c) · K_Qᵀ
    (spec §10.5, note): the split, at least one mode each side, with the fewest
    rows plus columns, so the two Kronecker sign matrices stay near √(size) × w."""
    return min(range(1, len(shape)), key=lambda k: math.prod(shape[:k]) + math.prod(shape[k:]))


def _kron_bits(bits: list) -> np.ndarray:
    """The Kronecker product of sign matrices given as 0/1 bits (rows × w each),
    C order (the last varies fastest): (Π rows) × w, bit 1 meaning −1."""
    out = bits[0]
    for b in bits[1:]:
        out = (out[:, None, :] ^ b[None, :, :]).reshape(out.shape[0] * b.shape[0], out.shape[1])
    return out


class Tensor(Matrix):
    """An order-d tensor (3 ≤ d ≤ 8) stored as signed cuts (spec §10.5).

    Made by ``lrq.encode(T, scheme="signcut")`` for a 3-D or higher float
    array, or read by :func:`lrq.loads` / :func:`lrq.open`.  It has the
    stored-tensor attributes of :class:`lrq.Matrix` (``shape``, ``dtype``,
    ``scheme``, ``width``, ``nbytes``, ``bits_per_entry``, ``rel_error``,
    ``name``), goes through ``lrq.decode``, ``lrq.dumps``, ``lrq.save`` and
    pickling, and computes :meth:`contract` on its factors.  Matrix products
    (``@``, ``.T``) need a matrix: contract, or reshape and encode a matrix.
    """

    # ---------------------------------------------------------- properties
    @property
    def width(self) -> int:
        """The number of rank-one terms w."""
        return int(self._record.tiles[0].params["width"])

    @property
    def T(self):
        raise ArgumentError(f"a {self.ndim}-D lrq.Tensor has no transpose; use contract(x, axis=k)")

    def __repr__(self) -> str:
        err = f", rel_error {self.rel_error:.3g}" if self.rel_error is not None else ""
        return (f"<lrq.Tensor {'×'.join(map(str, self.shape))} {self._record.dtype} signcut width {self.width}, "
                f"{self.nbytes} bytes, {self.bits_per_entry:.3g} bits/entry{err}>")

    # ------------------------------------------------------------- factors
    def _where(self) -> str:
        return f"tensor '{self.name}' tile #0" if self.name is not None else "tile #0"

    def _kernel(self, index: int, tile):
        """The factors (c as float32, one 0/1 bit matrix per mode), read and
        checked on first use: CRCs [SEC-6], c finite [SC-2], padding [LAY-1]."""
        factors = self._tiles.get(0)
        if factors is not None:
            return factors
        tile = self._record.tiles[0]
        crc = _native.crc32c
        w = self.width
        c = np.frombuffer(tile.section("c", crc), dtype="<f4")
        if not np.isfinite(c).all():
            raise FormatError(f"[SC-2] {self._where()} section 'c': a weight is not finite")
        bits = []
        for mode, n in enumerate(tile.shape):
            try:
                bits.append(_native.unpack_interleaved(tile.section(f"s{mode}", crc), n, w, 1, self._record.panel))
            except FormatError:
                raise FormatError(f"[LAY-1] {self._where()} section 's{mode}': a padding bit is not zero") from None
        factors = (c.astype(np.float32), bits)
        self._tiles[0] = factors
        return factors

    def factors(self) -> tuple:
        """(c, [S_0, …, S_{d−1}]): the weights (float32, w) and each mode's
        signs as a ±1 float32 array of n_a × w (column k is term k's vector)."""
        c, bits = self._reading_source(self._kernel, 0, None)
        return c.copy(), [1.0 - 2.0 * b.astype(np.float32) for b in bits]

    def _expand(self, weights: np.ndarray, modes: list) -> np.ndarray:
        """Σ_k weights_k ⊗_{a in modes} s_k⁽ᵃ⁾ as a dense float32 array of
        the modes' sizes, on the C signcut kernels (module docstring)."""
        _, bits = self._kernel(0, None)
        shape = tuple(self.shape[a] for a in modes)
        w = len(weights)
        if w == 0:
            return np.zeros(shape, dtype=np.float32)  # [NUM-1]: exactly zero
        split = balanced_split(shape)
        rows = _kron_bits([bits[a] for a in modes[:split]])
        cols = _kron_bits([bits[a] for a in modes[split:]])
        panel = self._record.panel
        c = np.ascontiguousarray(weights, dtype="<f4")
        tile = _native.signcut_tile(rows.shape[0], cols.shape[0], w, panel, c.tobytes(),
                                    _native.pack_interleaved(np.ascontiguousarray(cols.T), 1, panel).tobytes(),
                                    _native.pack_interleaved(rows, 1, panel).tobytes())
        return tile.decode().reshape(shape)

    # ------------------------------------------------------------- compute
    def _decode(self) -> np.ndarray:
        c, _ = self._kernel(0, None)
        return self._expand(c, list(range(self.ndim))).astype(self.dtype, copy=False)

    def contract(self, x, axis: int = 0) -> np.ndarray:
        """The contraction with the vector ``x`` along mode ``axis``:
        ``np.tensordot(decode(T), x, axes=([axis], [0]))``, computed on the
        factors (``y = S_axisᵀ x`` in float64, then the other modes' tensor
        with weights ``c ⊙ y`` on the C kernels).  Returns an array of
        ``self.dtype`` with the shape of the tensor without ``axis``.

        Within [NUM-1]'s tolerance of the exact sum: 1e−5 · Σ_k |c_k| Σ_i |x_i|
        per entry plus the output type's unit roundoff.
        """
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -self.ndim <= axis < self.ndim:
            raise ArgumentError(f"axis must be an integer in [-{self.ndim}, {self.ndim}), not {axis!r}")
        axis = int(axis) % self.ndim
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"contract takes a real vector: {exc}") from None
        n = self.shape[axis]
        if x.shape != (n,):
            raise ArgumentError(f"contract along axis {axis} needs a vector of {n} values, not shape {x.shape}")
        if not np.isfinite(x).all():
            raise ArgumentError("contract: the vector holds NaN or infinite values")

        def run() -> np.ndarray:
            c, bits = self._kernel(0, None)
            y = x @ (1.0 - 2.0 * bits[axis].astype(np.float64))  # S_axisᵀ x, w values
            with np.errstate(over="ignore", invalid="ignore"):
                weights = (c.astype(np.float64) * y).astype(np.float32)
            if not np.isfinite(weights).all():
                raise ArgumentError("contract: a product with this vector overflows float32")
            others = [a for a in range(self.ndim) if a != axis]
            return np.asarray(self._expand(weights, others)).astype(self.dtype, copy=False)

        return self._reading_source(run)

    def _refuse(self, *args, **kwargs):
        raise ArgumentError(f"a {self.ndim}-D lrq.Tensor has no matrix product; use contract(x, axis=k), or reshape "
                            "the array to a matrix and encode that")

    matvec = rmatvec = matmat = rmatmat = aslinearoperator = _product = _refuse

    def __matmul__(self, x):
        return self._refuse()

    def __rmatmul__(self, x):
        return self._refuse()


# ----------------------------------------------------------------- encoding


def _planned_bytes(shape: tuple, source: str, panel: int, width: int, encoder_info: dict, name: str) -> int:
    tile = container.TileRecord((0,) * len(shape), shape, "signcut", {"width": width})
    record = container.TensorRecord(name, shape, source, shape, panel, [tile], 0.0, encoder_info)
    return container.planned_size([record])


def encode_tensor(a: np.ndarray, source: str, target, *, seed: int, panel: int, name: str, encoder_info: dict,
                  progress: Optional[Callable[[float, str], None]] = None) -> Tensor:
    """``lrq.encode(a, scheme="signcut", …)`` for an array of 3 to 8 dimensions
    (already validated by :func:`lrq.encoder.encode`)."""
    from .encoder import DEFAULT_BITS, _largest_fitting, c_encoder_goal, stepped_runs

    shape = tuple(int(d) for d in a.shape)
    size = math.prod(shape)
    values32 = np.ascontiguousarray(a, dtype=np.float32)
    norm = float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))
    # Past this width the terms cost as much as dense float32.
    dense_width = max(1, (32 * size) // (32 + sum(shape)))
    goal = None
    if target.kind == "width":
        width = min(int(target.value), size)
    elif target.kind == "rel_error":
        width, goal = dense_width, float(target.value)
    else:
        bits = DEFAULT_BITS if target.kind == "default" else float(target.value)
        budget = math.floor(bits * size / 8)
        width = _largest_fitting(1, dense_width,
                                 lambda w: _planned_bytes(shape, source, panel, w, encoder_info, name) <= budget)
        if width is None:
            if target.strict:
                smallest = _planned_bytes(shape, source, panel, 1, encoder_info, name)
                raise BudgetError(f"no signcut encoding of a {'×'.join(map(str, shape))} tensor fits {bits:g} "
                                  f"bits/entry (one term, headers included, takes {8 * smallest / size:.3g}); "
                                  "raise bits=")
            width = 1
    enc = _native.TensorEncoder(values32, seed)
    failure = ArgumentError("signcut cannot encode this tensor: a term weight is not a finite float32")
    for _ in stepped_runs(enc, width, c_encoder_goal(goal, norm, enc.input_norm), failure):
        if progress is not None:
            err = enc.remainder_norm() / enc.input_norm if enc.input_norm > 0 else 0.0
            progress(min(enc.width / width, 1.0), f"signcut {enc.width}/{width} terms, error {err:.4g}")
    error = enc.remainder_norm()
    if goal is not None and error > goal * norm:
        raise BudgetError(f"scheme 'signcut' cannot reach rel_error={goal:g} on this {'×'.join(map(str, shape))} "
                          "tensor within the size of dense float32; reshape it to a matrix or use scheme='dense'")
    sections = enc.sections(panel)
    c = np.frombuffer(sections["c"], dtype="<f4")
    if float(np.abs(c.astype(np.float64)).sum()) > _SAFE_SUM:
        raise ArgumentError("signcut cannot encode this tensor: its weights are too large for float32 [NUM-3]")
    crc = _native.crc32c
    tile = container.TileRecord((0,) * len(shape), shape, "signcut", {"width": enc.width},
                                {kind: container.make_section(kind, data, crc) for kind, data in sections.items()})
    rel = error / norm if norm > 0 else 0.0
    record = container.TensorRecord(name, shape, source, shape, panel, [tile], float(np.float32(rel)), encoder_info)
    if progress is not None:
        progress(1.0, "done")
    return Tensor(record)
