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


def _forward(module: torch.nn.Linear, max_rows: int, x: torch.Tensor) -> torch.Tensor:
    tokens = x.numel() // module.in_features
    if tokens < 2 or tokens > max_rows or torch.is_grad_enabled() or x.dtype != module.weight.dtype:
        return F.linear(x, module.weight, module.bias)
    y = torch.mm(module.weight, x.reshape(tokens, module.in_features).t())  # (out, tokens)
    if module.bias is not None:
        y.add_(module.bias[:, None])
    return y.t().contiguous().view(*x.shape[:-1], module.out_features)


@contextmanager
def weight_major_linears(model: torch.nn.Module, max_rows: int = WEIGHT_MAJOR_MAX_ROWS) -> Iterator[int]:
    """Inside the block, `model`'s fp32 CPU `nn.Linear` layers multiply 2..`max_rows` tokens weight-major.

    Yields how many layers changed (0 on a GPU or a half-precision model: nothing to gain there).
    Forward hooks still run around the layers (the serving batch's LoRA hooks add to their output).
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
