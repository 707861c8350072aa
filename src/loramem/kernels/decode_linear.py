"""Decode steps' linear layers on a CPU: a few tokens against each weight at the speed of reading it.

A decode step multiplies every weight matrix by one token per row. For a few rows, MKL's fp32
GEMM for x W^T (what `nn.Linear` runs) falls far below the speed of streaming W once. Two faster
products, picked per call:

* the compiled kernel (`loramem.kernels.few_rows`), for 1 to FEW_ROWS_MAX tokens, once built
  (`make setup` builds it);
* without it, the weight-major order W x^T (x^T a transposed view), for 2 to WEIGHT_MAJOR_MAX_ROWS.

The linear layers of a SmolLM2-135M decode step alone (30 layers' distinct weights and the output
head), fp32, 2 threads of a 2-core AMD EPYC, median of 7 (ms; two runs where they differ):

    tokens     1      2      4      8     12     16     20     26     32
    x W^T     41-46  77-81  80-88  69-91  79-102 99    97-110 113-146 118-134
    W x^T     42     30-49  31-48  53-57  93     77
    kernel    22     23-28  24-26  33     47-48  69-72  83-84  110-111 122-127

Whole decode steps (`nn.Linear` vs weight-major, ms): 2 rows 97 vs 49, 4 rows 98 vs 53, 8 rows 87
vs 73, 1 row 61 either way; with 8 rank-8 adapters stacked (`loramem.serve.stacked`), weight-major
vs kernel: 1 row 79-83 vs 49-51, 8 rows 118-138 vs 71-74. Greedy `generate` of 48 tokens alone:
2.97-3.12 s with `nn.Linear`, 2.20-2.62 s with the kernel, the same tokens. So every greedy
decode runs inside `decode_linears`: answers (`loramem.answering`), kv mode's loop, the base model
writing supervision, and the serving engine. Products of more tokens (prefills of longer prompts
or of several rows) run at MKL's compute rate and keep `nn.Linear`, as do training (autograd
records `nn.Linear`), other dtypes and devices (a GPU's GEMM has no such gap). Each product sums
in its own order: the logits differ by ~5e-5 (tests/test_kernels.py pins them to `nn.Linear`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

from loramem.kernels.few_rows import MAX_ROWS as FEW_ROWS_MAX
from loramem.kernels.few_rows import few_rows, kernel

WEIGHT_MAJOR_MAX_ROWS = 8  # tokens up to which W x^T beats x W^T without the kernel (above)


def _plain(w: torch.Tensor, x: torch.Tensor) -> bool:
    return (w.device.type == "cpu" and w.dtype == x.dtype == torch.float32 and w.is_contiguous()
            and not torch.is_grad_enabled())


def kernel_fits(w: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether x (..., in) times w (out, in)^T runs on the compiled kernel: built, few tokens, fp32 CPU, no autograd."""
    tokens = x.numel() // w.shape[1]
    return 1 <= tokens <= FEW_ROWS_MAX and _plain(w, x) and kernel() is not None


def linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` (..., out), contiguous, by the fastest product for x's token count (above)."""
    w, tokens = module.weight, x.numel() // module.in_features
    if kernel_fits(w, x):
        y = few_rows(x.reshape(tokens, -1).contiguous(), w)
    elif 2 <= tokens <= WEIGHT_MAJOR_MAX_ROWS and _plain(w, x):
        y = torch.mm(w, x.reshape(tokens, -1).t()).t().contiguous()
    else:
        return F.linear(x, w, module.bias)
    if module.bias is not None:
        y.add_(module.bias)
    return y.view(*x.shape[:-1], w.shape[0])


@contextmanager
def decode_linears(model: torch.nn.Module) -> Iterator[int]:
    """Inside the block, `model`'s fp32 CPU `nn.Linear` layers take few-token products by `linear`.

    Yields how many layers changed (0 on a GPU or a half-precision model: nothing to gain there).
    Layers whose forward is already replaced (`loramem.serve.stacked`, which takes the same
    products itself) are left alone; forward hooks still run around the layers.
    """
    changed = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
               and m.weight.dtype == torch.float32 and "forward" not in vars(m)]
    for m in changed:
        m.forward = partial(linear, m)
    try:
        yield len(changed)
    finally:
        for m in changed:
            vars(m).pop("forward", None)
