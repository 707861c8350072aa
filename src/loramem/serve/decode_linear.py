"""Decode steps' linear layers on a CPU: a few rows multiplied weight-major, W x^T, instead of x W^T.

A decode step multiplies every weight matrix by one token per row. For a few rows, MKL's fp32
GEMM for x W^T (what `nn.Linear` runs) is far slower than the same product taken the other way
round, W x^T with x^T a transposed view: with M rows (M from 2 to 16) it is no longer a
matrix-vector product and the kernel MKL picks for a short, wide x falls well below the speed of
streaming W once. Whole SmolLM2-135M decode steps, fp32, 2 threads of a 2-core AMD EPYC (median of
6 steps, best of 3 interleaved repeats; `nn.Linear` vs weight-major, ms):

    rows    1     2     3     4     5     6     7     8    10    12    16
    x W^T  61    97   120    98    90   132   105    87   100   116   118
    W x^T  61    49    58    53    58    78    78    73    94   111    90

The output head alone (49152 x 576), 8 rows: 19.1 ms against 8.9 ms. One row is a matrix-vector
product either way, so it keeps `nn.Linear`; so do prefills (tens of tokens a row, where the GEMM
runs at its compute rate), training (autograd records `nn.Linear`), other dtypes and devices (a
GPU's GEMM has no such gap). The two orders sum the same products in another order: the logits
differ by ~5e-5 (tests/serve/test_decode_linear.py pins them to `nn.Linear`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

WEIGHT_MAJOR_MAX_ROWS = 8  # tokens per forward up to which W x^T is used: it won at every M from 2 to 8 (above)


def weight_major_fits(module: torch.nn.Linear, x: torch.Tensor, max_rows: int = WEIGHT_MAJOR_MAX_ROWS) -> bool:
    """Whether `module(x)` is one the weight-major product speeds up (see above)."""
    w = module.weight
    tokens = x.numel() // module.in_features
    return (2 <= tokens <= max_rows and w.device.type == "cpu" and w.dtype == x.dtype == torch.float32
            and not torch.is_grad_enabled())


def weight_major(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`module`'s product W x^T + b for x (..., in): (out, tokens), for a caller to add to and transpose."""
    y = torch.mm(module.weight, x.reshape(-1, module.in_features).t())
    if module.bias is not None:
        y.add_(module.bias[:, None])
    return y


def rows_major(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`weight_major`'s (out, tokens) as `nn.Linear` returns it: (..., out), contiguous."""
    return y.t().contiguous().view(*x.shape[:-1], y.shape[0])


def _forward(module: torch.nn.Linear, max_rows: int, x: torch.Tensor) -> torch.Tensor:
    if not weight_major_fits(module, x, max_rows):
        return F.linear(x, module.weight, module.bias)
    return rows_major(weight_major(module, x), x)


@contextmanager
def weight_major_linears(model: torch.nn.Module, max_rows: int = WEIGHT_MAJOR_MAX_ROWS) -> Iterator[int]:
    """Inside the block, `model`'s fp32 CPU `nn.Linear` layers multiply 2..`max_rows` tokens weight-major.

    Yields how many layers changed (0 on a GPU or a half-precision model: nothing to gain there).
    Layers whose forward is already replaced (`loramem.serve.stacked`, which takes the same
    product itself) are left alone; forward hooks still run around the layers.
    """
    changed = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
               and m.weight.dtype == torch.float32 and "forward" not in vars(m)]
    for m in changed:
        m.forward = partial(_forward, m, max_rows)
    try:
        yield len(changed)
    finally:
        for m in changed:
            vars(m).pop("forward", None)
