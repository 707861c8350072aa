"""`linear`: PEFT's task arithmetic over the A factors and the B factors separately (arXiv 2212.04089)."""

from __future__ import annotations

from loramem.merges.base import MERGES, MergeMethod

MERGES.register("linear")(MergeMethod(
    summary="weighted sums of the A and of the B factors (not a sum of deltas; one rank)",
    reference="https://arxiv.org/abs/2212.04089", peft="linear", one_rank=True,
))
