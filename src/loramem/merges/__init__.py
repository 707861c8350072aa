"""Merge methods, one file each, registered by name in MERGES (the CLI and server list its names).

Every module of this package is imported here so that its registration runs: a new merge
method is one new file.
"""

import importlib
import pkgutil

from loramem.merges.base import MERGES, Adapters, Merge, MergeMethod, check_merge, merge_method
from loramem.merges.svd import svd_merge
from loramem.merges.ties import ties_merge

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MERGES", "Adapters", "Merge", "MergeMethod", "check_merge", "merge_method", "svd_merge", "ties_merge"]
