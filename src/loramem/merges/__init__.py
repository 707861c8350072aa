"""Merge methods, one file each, registered by name in MERGES (the CLI and server list its names).

Every module of this package is imported here so that its registration runs: a new merge
method is one new file.
"""

from loramem.merges.base import MERGES, Adapters, Merge, MergeMethod, check_merge, merge_method
from loramem.merges.svd import svd_merge
from loramem.merges.ties import ties_merge
from loramem.registry import discover

discover(__name__, __path__)

__all__ = ["MERGES", "Adapters", "Merge", "MergeMethod", "check_merge", "merge_method", "svd_merge", "ties_merge"]
