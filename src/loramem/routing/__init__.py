"""Routing: which memories answer a question. `auto` is the hybrid router."""

from loramem.routing import bm25, embedding, hybrid  # noqa: F401  (registration)
from loramem.routing.base import ROUTERS, Route, Router

__all__ = ["ROUTERS", "Route", "Router"]
