"""Updating memories in place: plans, update methods (one file each, registered in UPDATES), and
the update itself. Every module of this package is imported here so that its registration runs.
"""

import importlib
import pkgutil

from loramem.updates.base import DEFAULT_UPDATE, UPDATES, Trained, UpdateJob, UpdateMethod, update_method
from loramem.updates.plan import Plan, plan_update

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "apply":  # apply imports the API, which imports this package
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DEFAULT_UPDATE", "UPDATES", "Plan", "Trained", "UpdateJob", "UpdateMethod", "plan_update", "update_method"]
