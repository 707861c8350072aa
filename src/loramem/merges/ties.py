"""`ties`: TIES-Merging (arXiv 2306.01708) over LoRA factors, as PEFT's `add_weighted_adapter(..., "ties")`.

Per task tensor keep the top `density` share by magnitude, elect each entry's sign by the larger
total mass, average the kept entries that agree with it. Like PEFT this merges the A factors and
the B factors separately, so the result is not a TIES merge of the deltas B A.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from loramem.adapters.thresholds import TIES_DENSITY, kth_largest
from loramem.errors import UnsupportedAdapter
from loramem.merges.base import Adapters, Merge, merge_method

if TYPE_CHECKING:
    from loramem.adapters.files import LoraWeights

torch = lazy_loader.load("torch")  # on first use: naming the merges (the CLI's help) loads no torch

_TIES_SLICE = 1 << 18  # entries per slice of a CPU TIES merge (~1 MB of float32)


def _ties(stack: torch.Tensor, scales: torch.Tensor, density: float,
          thresholds: torch.Tensor | None = None) -> torch.Tensor:
    """TIES over task tensors, batched: (groups, tasks, *shape) -> (groups, *shape).

    Vectorized over groups of same-shaped tensors so a merge costs a few ops, not a few per
    layer. As in PEFT, trimming and the sign election see the unweighted tensors and `scales`
    (tasks,) weigh only the mean of the agreeing entries (PEFT: sum of w_i x_i over them / their
    count). `thresholds` (groups, tasks) are precomputed trim points.
    """
    g, t = stack.shape[:2]
    flat = stack.reshape(g, t, -1)
    threshold = thresholds[..., None] if thresholds is not None else kth_largest(flat, density)
    n = flat.shape[-1]
    # On CPU, cache-sized slices through scratch buffers allocated once: a fresh tensor per op
    # (tens of MB, or a MB per slice) costs more in new pages than the arithmetic. A GPU takes
    # it in one piece.
    step = n if flat.is_cuda else max(1, _TIES_SLICE // (g * t))
    merged = torch.empty(g, n, dtype=flat.dtype, device=flat.device)
    kept = flat.new_empty(g, t, step)
    mask = torch.empty(g, t, step, dtype=torch.bool, device=flat.device)
    sign, total, count = flat.new_empty(g, 1, step), flat.new_empty(g, step), flat.new_empty(g, step)
    scales = scales.view(1, t, 1)
    for s in range(0, n, step):
        w = min(step, n - s)
        part, k, m, sg, tot, cnt = flat[..., s : s + w], kept[..., :w], mask[..., :w], sign[..., :w], total[:, :w], count[:, :w]
        torch.ge(torch.abs(part, out=k), threshold, out=m)
        torch.mul(part, m, out=k)  # trimmed
        torch.sum(k, dim=1, keepdim=True, out=sg).sign_().add_(0.5).sign_()  # elected sign: +1 where the mass is >= 0
        torch.gt(k.mul_(sg), 0, out=m)  # entries that agree with it (trimmed zeros never do); k: their magnitudes
        torch.sum(k.clamp_(min=0).mul_(scales), dim=1, out=tot)  # sum of w_i |x_i| over them
        torch.sum(m, dim=1, dtype=flat.dtype, out=cnt)
        merged[:, s : s + w] = tot.div_(cnt.clamp_(min=1)).mul_(sg[:, 0])  # their weighted mean, signed
    return merged.reshape(g, *stack.shape[2:])


def factor_scales(adapters: Adapters) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's per-factor weights (tasks,): A by sign(w s) sqrt(|w s|), B by sqrt(|w s|), so B A gets w s.

    The sign sits on one factor only: a square root of a negative weight would be complex (and
    cast to float, silently zero), and a sign on both factors would cancel.
    """
    products = [wt * w.scale for w, wt in adapters]
    magnitudes = torch.tensor([abs(p) ** 0.5 for p in products])
    signs = torch.tensor([1.0 if p >= 0 else -1.0 for p in products])
    return magnitudes * signs, magnitudes


def ties_merge(adapters: Adapters, density: float = 0.5) -> LoraWeights:
    """One adapter (scale 1): the TIES merge of the A factors and of the B factors of `adapters`.

    Every adapter must target the same modules with the same rank (else UnsupportedAdapter, and
    the caller falls back to PEFT, which names the ranks).
    """
    modules = sorted(adapters[0][0].layers)
    for w, _ in adapters[1:]:
        if sorted(w.layers) != modules:
            raise UnsupportedAdapter("TIES needs adapters that target the same modules")
    ranks = {a.shape[0] for w, _ in adapters for a, _ in w.layers.values()}
    if len(ranks) > 1:
        raise UnsupportedAdapter(f"TIES over LoRA factors needs one rank; got ranks {sorted(ranks)}")
    factors: dict[str, list] = {m: [None, None] for m in modules}
    scales = factor_scales(adapters)
    precomputed = density == TIES_DENSITY and all(
        w.thresholds and next(iter(w.layers.values()))[0].dtype == torch.float32 for w, _ in adapters)
    for slot in (0, 1):  # A factors, then B factors
        by_shape: dict[tuple, list[str]] = {}
        for m in modules:
            by_shape.setdefault(tuple(adapters[0][0].layers[m][slot].shape), []).append(m)
        for names in by_shape.values():
            shape = adapters[0][0].layers[names[0]][slot].shape  # one copy: (modules x adapters, ...) viewed
            stack = torch.stack([w.layers[m][slot] for m in names for w, _ in adapters]).view(
                len(names), len(adapters), *shape)
            thresholds = torch.tensor([[w.thresholds[m][slot] for w, _ in adapters] for m in names],
                                      dtype=stack.dtype) if precomputed else None
            for m, merged in zip(names, _ties(stack, scales[slot].to(stack.dtype), density, thresholds)):
                factors[m][slot] = merged
    from loramem.adapters.files import LoraWeights

    return LoraWeights({m: (a, b) for m, (a, b) in factors.items()}, scale=1.0)


@merge_method("ties", peft="ties", reference="https://arxiv.org/abs/2306.01708", one_rank=True)
def ties(adapters: Adapters, settings: Merge) -> Adapters:
    """trim each factor to its top `density` share, elect signs, average what agrees (one rank)"""
    return [(ties_merge(adapters, settings.density), 1.0)]
