"""Merge methods, one file each, registered by name in MERGES (the CLI and server list its names)."""

from loramem.merges import dare_linear, dare_ties, exact, linear, svd, ties  # noqa: F401  (registration)
from loramem.merges.base import MERGES, Adapters, Merge, MergeMethod, check_merge, merge_method
from loramem.merges.svd import svd_merge
from loramem.merges.ties import ties_merge

__all__ = ["MERGES", "Adapters", "Merge", "MergeMethod", "check_merge", "merge_method", "svd_merge", "ties_merge"]
