"""One autograd node per LoRA layer while training, in place of PEFT's five.

PEFT's LoRA layer computes `base(x) + B(A(x)) * scale` as separate ops: two extra linears, a
multiply and an add forward, their backward nodes, and a gradient add for x. On a CPU a training
step of the 135M model runs ~200 such layers, so the elementwise passes over (tokens x features)
and the autograd bookkeeping cost a sizeable share of a step. Here the scale and the add go into
the GEMMs (`addmm` with alpha), and the backward is written out:

    h = x A^T                   y = x W^T + s h B^T
    dh = s dy B                 dB = s dy^T h        dA = dh^T x        dx = dy W + dh A

The same function as PEFT's (tests compare losses and gradients). Layers this does not cover
(dropout, DoRA and other variants, several active adapters, trainable base weights, mixed
dtypes) keep PEFT's forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class _LoraLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, a, b, scale: float):
        flat = x.reshape(-1, x.shape[-1])
        h = flat @ a.t()  # (tokens, r)
        y = flat @ weight.t() if bias is None else torch.addmm(bias, flat, weight.t())
        y.addmm_(h, b.t(), alpha=scale)
        ctx.save_for_backward(flat, h, weight, a, b)
        ctx.scale = scale
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        flat, h, weight, a, b = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        dh = (g @ b).mul_(ctx.scale)  # (tokens, r)
        dx = da = db = None
        if ctx.needs_input_grad[0]:
            dx = (g @ weight).addmm_(dh, a).view(*grad.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[3]:
            da = dh.t() @ flat
        if ctx.needs_input_grad[4]:
            db = (g.t() @ h).mul_(ctx.scale)
        return dx, None, None, da, db, None


def _covered(layer) -> str | None:
    """The adapter name when `layer` is a plain single-adapter LoRA linear this path computes."""
    names = list(getattr(layer, "active_adapters", []))
    base = getattr(layer, "base_layer", None)
    if len(names) != 1 or not isinstance(base, torch.nn.Linear) or layer.merged or layer.disable_adapters:
        return None
    name = names[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity) or base.weight.requires_grad:
        return None
    if base.bias is not None and base.bias.requires_grad:
        return None
    if layer.lora_A[name].weight.dtype != base.weight.dtype or getattr(layer, "fan_in_fan_out", False):
        return None
    return name


def _fast_forward(layer, name: str):
    peft_forward = layer.forward
    a, b, base = layer.lora_A[name].weight, layer.lora_B[name].weight, layer.base_layer
    scale = float(layer.scaling[name])

    def forward(x, *args, **kwargs):
        if args or kwargs or x.dtype != a.dtype:
            return peft_forward(x, *args, **kwargs)
        return _LoraLinear.apply(x, base.weight, base.bias, a, b, scale)

    return forward


@contextmanager
def fused_lora(model: torch.nn.Module) -> Iterator[int]:
    """Inside the block, every covered LoRA layer of `model` runs as one autograd node; yields
    how many layers are covered. The layers' own forwards come back on exit."""
    from peft.tuners.lora import LoraLayer

    patched = []
    for module in model.modules():
        if isinstance(module, LoraLayer) and (name := _covered(module)) is not None:
            module.forward = _fast_forward(module, name)
            patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward  # the instance attribute: the class's forward shows through again
