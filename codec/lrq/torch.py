"""The PyTorch door: ``nn.Linear`` layers that multiply with compressed weights.

    import lrq.torch
    report = lrq.torch.load_model(model, "model.lrq")   # swaps nn.Linear layers in place
    print(report.replaced)

``lrq.torch.Linear`` computes ``y = x Wᵀ + b`` with W an :class:`lrq.Matrix`
(out_features × in_features, as ``nn.Linear.weight``), on the factors in
the C core: the weight is never decoded.  It is for inference: torch
tensors in and out (CPU), float32 or bfloat16 (float16 and float64 too),
any number of batch dimensions; no gradients flow through it.

PyTorch is optional: ``import lrq`` never imports it; importing this module
without torch raises an ImportError that says what to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("lrq.torch needs PyTorch: pip install torch (CPU builds suffice)") from None

from .errors import ArgumentError
from .io import open as _open_lrq
from .matrix import Matrix

_INPUT_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


class Linear(nn.Module):
    """``nn.Linear`` for inference with an lrq-compressed weight.

    Parameters
    ----------
    weight : lrq.Matrix
        The weight, shape (out_features, in_features) like ``nn.Linear.weight``.
    bias : torch.Tensor, array or None
        Shape (out_features,); kept as a float32 buffer.

    ``forward`` takes a tensor (..., in_features) of float32, bfloat16,
    float16 or float64 on the CPU and returns (..., out_features) in the
    input's dtype.  All rows of the batch go to the kernels in one call
    (the batched product of :meth:`lrq.Matrix.matmat`); the product runs in
    float32 (float64 for float64 inputs), so a bfloat16 input is widened
    exactly and the result rounded once.
    """

    def __init__(self, weight: Matrix, bias=None):
        super().__init__()
        if not isinstance(weight, Matrix) or weight.ndim != 2:
            raise ArgumentError(f"lrq.torch.Linear needs a 2-D lrq.Matrix as weight, not {weight!r}")
        self.matrix = weight
        self.out_features, self.in_features = weight.shape
        if bias is not None:
            bias = torch.as_tensor(np.asarray(bias, dtype=np.float32) if not torch.is_tensor(bias) else bias)
            bias = bias.detach().to(torch.float32).cpu()
            if tuple(bias.shape) != (self.out_features,):
                raise ArgumentError(f"the bias has shape {tuple(bias.shape)}; it needs ({self.out_features},)")
        self.register_buffer("bias", bias)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if not torch.is_tensor(x):
            raise ArgumentError(f"lrq.torch.Linear takes a torch tensor, not {type(x).__name__}")
        if x.dtype not in _INPUT_DTYPES:
            raise ArgumentError(f"lrq.torch.Linear takes float32, bfloat16, float16 or float64 input, not {x.dtype}")
        if x.device.type != "cpu":
            raise ArgumentError(f"lrq.torch.Linear runs on the CPU; the input is on {x.device}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ArgumentError(f"the input has shape {tuple(x.shape)}; its last dimension must be {self.in_features}")
        wide = torch.float64 if x.dtype == torch.float64 else torch.float32
        rows = x.detach().reshape(-1, self.in_features).to(wide).numpy()
        # rows @ Wᵀ as W @ rowsᵀ: one batched product over every row.
        y = torch.from_numpy(np.ascontiguousarray((self.matrix @ rows.T).T))
        if self.bias is not None:
            y += self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, weight={self.matrix!r}")


@dataclass
class LoadReport:
    """What :func:`load_model` did.

    replaced : qualified names of the nn.Linear modules now lrq layers
    not_in_file : nn.Linear modules the file holds no weight for (left as they were)
    """

    replaced: list = field(default_factory=list)
    not_in_file: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"replaced {len(self.replaced)} nn.Linear layer{'s' if len(self.replaced) != 1 else ''} "
                 f"by lrq layers"] + [f"  {name}" for name in self.replaced]
        if self.not_in_file:
            lines.append(f"kept {len(self.not_in_file)} (no weight in the file): {', '.join(self.not_in_file)}")
        return "\n".join(lines)


def load_model(model: "nn.Module", path, *, rename: Optional[Callable[[str], str]] = None,
               bias_from_file: bool = True) -> LoadReport:
    """Replace ``model``'s ``nn.Linear`` layers by :class:`Linear` layers from a `.lrq` file.

    A layer at qualified name ``q`` (``model.named_modules()``) takes the
    tensor ``q + ".weight"`` of the file -- the name ``lrq compress`` gives a
    safetensors checkpoint's tensor, so a model whose ``state_dict`` names
    match its checkpoint matches its compressed file.  ``rename`` maps the
    weight's name in the model to its name in the file when they differ
    (e.g. ``lambda name: name.removeprefix("bert.")``).  With
    ``bias_from_file`` the bias comes from the file's ``q + ".bias"`` when it
    is there, else the layer keeps its own.  Layers the file has no weight
    for are left alone and listed in the report; a weight of the wrong shape
    raises :class:`lrq.ArgumentError` before anything is replaced.

    The file is memory-mapped: the lrq layers read their factors from it,
    so it must stay in place while the model is used.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"load_model takes a torch.nn.Module, not {type(model).__name__}")
    rename = rename or (lambda name: name)
    report = LoadReport()
    plan = []
    with _open_lrq(path) as f:
        for qualified, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            if not qualified:
                raise ArgumentError("load_model replaces the nn.Linear layers inside a module; this one is "
                                    "itself an nn.Linear (use lrq.torch.Linear directly)")
            weight_name = rename(f"{qualified}.weight")
            if weight_name not in f:
                report.not_in_file.append(qualified)
                continue
            weight = f[weight_name]
            if tuple(weight.shape) != (module.out_features, module.in_features):
                raise ArgumentError(f"{path}: tensor '{weight_name}' has shape {weight.shape}; layer '{qualified}' "
                                    f"needs ({module.out_features}, {module.in_features})")
            bias = module.bias
            bias_name = rename(f"{qualified}.bias")
            if bias_from_file and bias is not None and bias_name in f:
                bias = f[bias_name].decode()
                if bias.shape != (module.out_features,):
                    raise ArgumentError(f"{path}: tensor '{bias_name}' has shape {bias.shape}; layer '{qualified}' "
                                        f"needs ({module.out_features},)")
            plan.append((qualified, Linear(weight, bias)))
    for qualified, layer in plan:
        parent_name, _, child = qualified.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer)
        report.replaced.append(qualified)
    return report


__all__ = ["Linear", "LoadReport", "load_model"]
