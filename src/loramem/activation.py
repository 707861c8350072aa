"""Fast adapter activation: cached LoRA weights applied by forward hooks, removed on exit.

PEFT's `PeftModel.from_pretrained` replaces every target layer with a LoRA wrapper and reads
the file again on each load (hundreds of milliseconds on CPU for a 135M model); answering one
question takes about a second, so that cost would dominate. Here an adapter's tensors are read
once into an LRU cache, and activating it registers one forward hook per target linear layer,
which adds `scale * B(A(x))` to the layer's output: the same function PEFT computes, for
plain LoRA (tests compare the two). Exiting removes the hooks, leaving the model untouched.
Adapters PEFT features outside plain LoRA (DoRA, biases, extra modules) are refused here so
the caller falls back to PEFT.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load

_PREFIX = "base_model.model."


THRESHOLDS_FILE = "loramem-magnitudes.safetensors"  # beside the PEFT files; PEFT ignores it
TIES_DENSITY = 0.5
_TIES_SLICE = 1 << 18  # entries per slice of a CPU TIES merge (~1 MB of float32)


@dataclass
class LoraWeights:
    """One adapter's tensors: for each target module path, (A (r, in), B (out, r)) and the scale.

    `thresholds[m]` holds, for module m, the magnitude at which TIES trimming at TIES_DENSITY
    cuts its A and B factors: computed once when the memory is written, so a merge needs no
    selection over millions of values.
    """

    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float
    thresholds: dict[str, tuple[float, float]] | None = None


def _kth_largest(values: torch.Tensor, density: float) -> torch.Tensor:
    """(..., n) → (..., 1): the magnitude of the k-th largest entry, k = int(density * n) (PEFT's count)."""
    n = values.shape[-1]
    k = int(density * n)
    if k <= 0:
        return torch.full((*values.shape[:-1], 1), float("inf"), dtype=values.dtype, device=values.device)
    return values.abs().kthvalue(n - k + 1, dim=-1, keepdim=True).values  # selection, not a sort


def save_thresholds(folder: Path, density: float = TIES_DENSITY) -> None:
    """Precompute the TIES trimming thresholds of the adapter in `folder` (at write time).

    Stored as two vectors (A and B, one entry per module, modules listed in the metadata):
    one tensor per module would cost a file read of hundreds of tiny tensors at every merge.
    """
    from safetensors.torch import save_file

    weights = load_lora(folder, torch.device("cpu"), torch.float32)
    modules = sorted(weights.layers)
    a = torch.stack([_kth_largest(weights.layers[m][0].reshape(1, -1), density).reshape(()) for m in modules])
    b = torch.stack([_kth_largest(weights.layers[m][1].reshape(1, -1), density).reshape(()) for m in modules])
    save_file({"A": a, "B": b}, str(folder / THRESHOLDS_FILE),
              metadata={"density": str(density), "modules": json.dumps(modules)})


def _load_thresholds(path: Path, modules) -> dict[str, tuple[float, float]] | None:
    """The saved trim points for `modules`; None when missing or incomplete."""
    from safetensors import safe_open

    if not path.exists():
        return None
    with safe_open(str(path), "pt") as f:
        listed = (f.metadata() or {}).get("modules")
        if listed is not None:  # two vectors
            found = dict(zip(json.loads(listed), zip(f.get_tensor("A").tolist(), f.get_tensor("B").tolist())))
        else:  # written before: one scalar tensor per module and factor
            keys = set(f.keys())
            found = {m: (f.get_tensor(f"{m}.A").item(), f.get_tensor(f"{m}.B").item())
                     for m in modules if f"{m}.A" in keys and f"{m}.B" in keys}
    return {m: found[m] for m in modules} if all(m in found for m in modules) else None


class UnsupportedAdapter(ValueError):
    """The adapter uses PEFT features that the hook path does not implement."""


def load_lora(folder: Path, device: torch.device, dtype: torch.dtype) -> LoraWeights:
    config = json.loads((folder / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("modules_to_save") \
            or config.get("lora_bias") or config.get("bias", "none") != "none" or config.get("fan_in_fan_out"):
        raise UnsupportedAdapter(f"{folder}: not a plain LoRA adapter")
    r, alpha = config["r"], config["lora_alpha"]
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise UnsupportedAdapter(f"{folder}: per-layer ranks")
    scale = alpha / (r**0.5) if config.get("use_rslora") else alpha / r
    # One read of the whole file, then views: safetensors' mmap path pays a page fault per page.
    tensors = load((folder / "adapter_model.safetensors").read_bytes())
    layers: dict[str, list] = {}
    for key, value in tensors.items():
        if not key.startswith(_PREFIX) or not (key.endswith(".lora_A.weight") or key.endswith(".lora_B.weight")):
            raise UnsupportedAdapter(f"{folder}: unexpected tensor {key}")
        module, which = key[len(_PREFIX):].rsplit(".lora_", 1)
        slot = 0 if which.startswith("A") else 1
        layers.setdefault(module, [None, None])[slot] = value.to(device=device, dtype=dtype)
    if any(a is None or b is None for a, b in layers.values()):
        raise UnsupportedAdapter(f"{folder}: incomplete A/B pairs")
    thresholds = _load_thresholds(folder / THRESHOLDS_FILE, layers)
    return LoraWeights({k: (a, b) for k, (a, b) in layers.items()}, scale, thresholds)


class AdapterCache:
    """LRU of loaded adapters, keyed by folder (a replaced memory gets a new folder)."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, LoraWeights] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path, device: torch.device, dtype: torch.dtype) -> LoraWeights:
        key = f"{folder.resolve()}|{device}|{dtype}"
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        weights = load_lora(folder, device, dtype)
        with self._lock:
            self._items[key] = weights
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return weights


def _ties(stack: torch.Tensor, scales: torch.Tensor, density: float,
          thresholds: torch.Tensor | None = None) -> torch.Tensor:
    """TIES over task tensors, batched: (groups, tasks, *shape) -> (groups, *shape).

    Per task tensor keep the top `density` share by magnitude, elect each entry's sign by the
    larger total mass, average the kept entries that agree with it (PEFT's `ties`, vectorized
    over groups of same-shaped tensors so a merge costs a few ops, not a few per layer). Task
    tensors are scaled by `scales` (tasks,) after trimming, which selects the same entries as
    trimming the scaled tensors; `thresholds` (groups, tasks) are precomputed trim points.
    """
    g, t = stack.shape[:2]
    flat = stack.reshape(g, t, -1)
    threshold = thresholds[..., None] if thresholds is not None else _kth_largest(flat, density)
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
        torch.mul(part, scales, out=k).mul_(m)  # trimmed, then scaled
        torch.sum(k, dim=1, keepdim=True, out=sg).sign_().add_(0.5).sign_()  # elected sign: +1 where the mass is >= 0
        torch.gt(k.mul_(sg), 0, out=m)  # entries that agree with it (trimmed zeros never do)
        torch.sum(k.clamp_(min=0), dim=1, out=tot)  # their magnitudes
        torch.sum(m, dim=1, dtype=flat.dtype, out=cnt)
        merged[:, s : s + w] = tot.div_(cnt.clamp_(min=1)).mul_(sg[:, 0])  # their mean, signed
    return merged.reshape(g, *stack.shape[2:])


def ties_merge(adapters: list[tuple[LoraWeights, float]], density: float = 0.5) -> LoraWeights:
    """TIES (arXiv 2306.01708) over LoRA factors, as PEFT's `add_weighted_adapter(..., "ties")` does it.

    Like PEFT, this merges the A factors and the B factors separately (each scaled by
    sqrt(weight * scale)), so the result is not a TIES merge of the deltas B A. Every adapter
    must target the same modules with the same rank.
    """
    modules = sorted(adapters[0][0].layers)
    for w, _ in adapters[1:]:
        if sorted(w.layers) != modules:
            raise UnsupportedAdapter("TIES needs adapters that target the same modules")
    ranks = {a.shape[0] for w, _ in adapters for a, _ in w.layers.values()}
    if len(ranks) > 1:
        raise UnsupportedAdapter(f"TIES over LoRA factors needs one rank; got ranks {sorted(ranks)}")
    factors: dict[str, list] = {m: [None, None] for m in modules}
    # each factor is scaled by sqrt(weight * scale), as PEFT does
    scales = torch.tensor([(wt * w.scale) ** 0.5 for w, wt in adapters])
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
            for m, merged in zip(names, _ties(stack, scales.to(stack.dtype), density, thresholds)):
                factors[m][slot] = merged
    return LoraWeights({m: (a, b) for m, (a, b) in factors.items()}, scale=1.0)


def svd_merge(adapters: list[tuple[LoraWeights, float]], rank: int | None = None) -> LoraWeights:
    """The weighted sum of the adapters' deltas re-factorized at `rank` (default: the largest rank),
    as PEFT's `add_weighted_adapter(..., "svd")` computes it, without a full-size SVD.

    Per module the summed delta is B_cat D A_cat, with the factors stacked (R = the sum of the
    ranks) and D = diag(weight * scale). With B_cat = Qb Rb and A_cat^T = Qa Ra (thin QR), the
    delta is Qb (Rb D Ra^T) Qa^T, so its singular values and vectors come from the R x R core.
    PEFT takes the SVD of the out x in delta instead: the same truncation, far more work (three
    rank-4 memories of the 135M model on 2 CPU cores: 18.8 s in PEFT, 0.26 s here with the
    adapters read from disk, logits within 1e-4).
    Adapters may differ in rank and in the modules they target (each module sums those present).
    """
    rank = rank or max(a.shape[0] for w, _ in adapters for a, _ in w.layers.values())
    modules = sorted({m for w, _ in adapters for m in w.layers})
    layers = {}
    for m in modules:
        present = [(w.layers[m], wt * w.scale) for w, wt in adapters if m in w.layers]
        a_cat = torch.cat([a for (a, _), _ in present])  # (R, in)
        b_cat = torch.cat([b * s for (_, b), s in present], dim=1)  # (out, R), D folded into B
        dtype = a_cat.dtype
        qb, rb = torch.linalg.qr(b_cat.double())
        qa, ra = torch.linalg.qr(a_cat.T.double())
        u, sv, vh = torch.linalg.svd(rb @ ra.T)
        k = min(rank, sv.shape[0])
        b = (qb @ u[:, :k]) * sv[:k]  # PEFT's split: B = U S, A = Vh
        a = vh[:k] @ qa.T
        layers[m] = (a.to(dtype), b.to(dtype))
    return LoraWeights(layers, scale=1.0)


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
