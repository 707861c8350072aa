"""Routing: which memories answer a question. `auto` is the hybrid router.

One file per router: every module of this package is imported here so that its
`@ROUTERS.register` runs, and a new router is one new file (the CLI and server offer it by name).
"""

import importlib
import pkgutil

from loramem.routing.base import ROUTERS, Route, Router

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ROUTERS", "Route", "Router"]
