"""`dare_ties`: DARE's random drops, then TIES's sign election, over the A and the B factors (arXiv 2311.03099).

Computed by PEFT, seeded by `Merge.seed`, so its random drops are PEFT's own.
"""

from __future__ import annotations

from loramem.merges.base import MERGES, MergeMethod

MERGES.register("dare_ties")(MergeMethod(
    summary="random drops (keep `density`, rescaled), then ties; seeded (one rank)",
    reference="https://arxiv.org/abs/2311.03099", peft="dare_ties", one_rank=True,
))
