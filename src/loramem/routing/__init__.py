"""Routing: which memories answer a question. `auto` names the router measured best (AUTO).

One file per router: every module of this package is imported here so that its
`@ROUTERS.register` runs, and a new router is one new file (the CLI and server offer it by name).
"""

from loramem.registry import discover
from loramem.routing.base import ROUTERS, Route, Router

discover(__name__, __path__, skip=["likelihood"])  # the reranker's signal (torch): loaded when it scores

AUTO = "fused"  # what `auto` routes with: the best by measurement (fused.py; README, "A knowledge base")


def resolve_router(name: str) -> str:
    """The registered router `name` stands for (`auto`: AUTO); unknown names fail with the valid ones."""
    name = AUTO if name == "auto" else name
    ROUTERS.get(name)
    return name


def router_names() -> list[str]:
    """What a user may pick: auto, then every registered router."""
    return ["auto", *ROUTERS.names()]


def first_stage_routers() -> list[str]:
    """Routers that read only the catalogue (they route index-only memories too)."""
    return [n for n in ROUTERS.names() if not ROUTERS.get(n).needs_adapters]


__all__ = ["AUTO", "ROUTERS", "Route", "Router", "first_stage_routers", "resolve_router", "router_names"]
