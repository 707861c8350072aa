"""Adapters applied by forward hooks, removed on exit, so the caller's model is never changed.

PEFT's `PeftModel.from_pretrained` replaces every target layer with a LoRA wrapper and reads
the file again on each load (hundreds of milliseconds on CPU for a 135M model); answering one
question takes about a second, so that cost would dominate. Here one forward hook per target
linear layer adds `scale * B(A(x))` to its output: the same function PEFT computes for plain
LoRA (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from loramem.adapters.files import LoraWeights, UnsupportedAdapter


@contextmanager
def hooked(model: torch.nn.Module, adapters: list[tuple[LoraWeights, float]]) -> Iterator[torch.nn.Module]:
    """`model` with each (adapter, weight) added to its target layers: W x + sum_i w_i s_i B_i A_i x."""
    modules = dict(model.named_modules())
    per_module: dict[str, list[tuple[torch.Tensor, torch.Tensor, float]]] = {}
    for weights, w in adapters:
        for path, (a, b) in weights.layers.items():
            if path not in modules:
                raise UnsupportedAdapter(f"adapter targets {path}, which this model lacks")
            per_module.setdefault(path, []).append((a, b, w * weights.scale))

    def make_hook(terms):
        def hook(_module, args, output):
            x = args[0]
            for a, b, s in terms:
                output = output + (x @ a.T) @ b.T * s  # (..., in) -> (..., r) -> (..., out)
            return output

        return hook

    handles = [modules[p].register_forward_hook(make_hook(t)) for p, t in per_module.items()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
