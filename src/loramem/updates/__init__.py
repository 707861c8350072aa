"""Updating memories in place: plans, update methods (one file each, registered in UPDATES), and
the update itself. Every module of this package is imported here so that its registration runs.
"""

from loramem.registry import discover
from loramem.updates.base import DEFAULT_UPDATE, UPDATES, Trained, UpdateJob, UpdateMethod, update_method
from loramem.updates.plan import Plan, plan_update

discover(__name__, __path__, skip=["apply"])  # apply imports the API, which imports this package

__all__ = ["DEFAULT_UPDATE", "UPDATES", "Plan", "Trained", "UpdateJob", "UpdateMethod", "plan_update", "update_method"]
