"""Merge methods: how several active memories' adapters combine, registered by name (as mergekit does).

Each method is registered with the PEFT `add_weighted_adapter` combination it reproduces, the
reference every fast path is tested against, and the fallback for adapters the hooks cannot
apply. A method without a fast path (`combine=None`) is computed by PEFT itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loramem.registry import Registry

if TYPE_CHECKING:
    from loramem.adapters.files import LoraWeights

Adapters = list[tuple["LoraWeights", float]]  # (adapter, weight) pairs, one per memory, in the caller's order


@dataclass(frozen=True)
class Merge:
    """How several active memories combine: the method's name and its settings."""

    method: str = "sum"
    weights: tuple[float, ...] | None = None  # one per memory; default 1 each
    density: float = 0.5  # ties / dare: share of entries kept
    seed: int = 0  # dare drops entries at random


Combine = Callable[[Adapters, Merge], Adapters]


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method.

    `combine` maps the loaded (adapter, weight) pairs to the pairs the hooks apply (None: PEFT
    computes it). `peft` is PEFT's combination_type for the same merge, None for the exact sum,
    which PEFT gets from `set_adapter` on all adapters. `one_rank`: PEFT merges the A and the B
    factors separately, so every memory needs the same rank.
    """

    summary: str
    reference: str
    peft: str | None
    combine: Combine | None = None
    one_rank: bool = False


MERGES: Registry[MergeMethod] = Registry("merge method")


def merge_method(name: str, *aliases: str, peft: str | None, reference: str,
                 one_rank: bool = False) -> Callable[[Combine], Combine]:
    """Register the decorated function as the fast path of merge method `name` (and `aliases`); its
    docstring's first line is the summary."""

    def decorator(combine: Combine) -> Combine:
        summary = (combine.__doc__ or name).strip().splitlines()[0]
        MERGES.register(name, *aliases)(MergeMethod(summary, reference, peft, combine, one_rank))
        return combine

    return decorator


def check_merge(method: str) -> str:
    """`method` if it is a registered merge; else a LoramemError listing the valid names."""
    MERGES.get(method)
    return method
