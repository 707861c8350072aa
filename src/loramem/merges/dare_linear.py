"""`dare_linear`: DARE's random drops, then task arithmetic, over the A and the B factors (arXiv 2311.03099).

Computed by PEFT, seeded by `Merge.seed`, so its random drops are PEFT's own.
"""

from __future__ import annotations

from loramem.merges.base import MERGES, MergeMethod

MERGES.register("dare_linear")(MergeMethod(
    summary="random drops (keep `density`, rescaled), then linear; seeded (one rank)",
    reference="https://arxiv.org/abs/2311.03099", peft="dare_linear", one_rank=True,
))
