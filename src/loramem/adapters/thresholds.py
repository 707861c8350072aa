"""TIES trimming thresholds, computed once when a memory is written and stored beside its adapter.

A TIES merge keeps each factor's top `density` share of entries by magnitude; finding that cut is
a selection over millions of values. At the default density it is read from this file instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import lazy_loader
from safetensors import SafetensorError, safe_open

if TYPE_CHECKING:
    from loramem.adapters.files import LoraWeights

torch = lazy_loader.load("torch")  # on first use: the TIES merge's registration (the CLI's help) loads no torch

THRESHOLDS_FILE = "loramem-magnitudes.safetensors"  # beside the PEFT files; PEFT ignores it
TIES_DENSITY = 0.5


def kth_largest(values: torch.Tensor, density: float) -> torch.Tensor:
    """(..., n) → (..., 1): the magnitude of the k-th largest entry, k = int(density * n) (PEFT's count)."""
    n = values.shape[-1]
    k = int(density * n)
    if k <= 0:
        return torch.full((*values.shape[:-1], 1), float("inf"), dtype=values.dtype, device=values.device)
    return values.abs().kthvalue(n - k + 1, dim=-1, keepdim=True).values  # selection, not a sort


def write_thresholds(weights: LoraWeights, folder: Path, density: float = TIES_DENSITY) -> None:
    """Store the trim points of `weights` (float32 on CPU) as two vectors, A and B, one entry per module.

    Two vectors, modules listed in the metadata: one tensor per module would cost a file read of
    hundreds of tiny tensors at every merge.
    """
    modules = sorted(weights.layers)
    a = torch.stack([kth_largest(weights.layers[m][0].reshape(1, -1), density).reshape(()) for m in modules])
    b = torch.stack([kth_largest(weights.layers[m][1].reshape(1, -1), density).reshape(()) for m in modules])
    from safetensors.torch import save_file

    save_file({"A": a, "B": b}, str(folder / THRESHOLDS_FILE),
              metadata={"density": str(density), "modules": json.dumps(modules)})


def load_thresholds(path: Path, modules) -> dict[str, tuple[float, float]] | None:
    """The saved trim points for `modules`; None when missing, incomplete or unreadable.

    The file is derived data: without it a merge selects afresh, so a damaged one is not an error.
    """
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            listed = (f.metadata() or {}).get("modules")
            if listed is not None:  # two vectors
                found = dict(zip(json.loads(listed), zip(f.get_tensor("A").tolist(), f.get_tensor("B").tolist())))
            else:  # written before: one scalar tensor per module and factor
                keys = set(f.keys())
                found = {m: (f.get_tensor(f"{m}.A").item(), f.get_tensor(f"{m}.B").item())
                         for m in modules if f"{m}.A" in keys and f"{m}.B" in keys}
    except (OSError, SafetensorError, ValueError):
        return None
    return {m: found[m] for m in modules} if all(m in found for m in modules) else None
