"""Routers pick which memories answer a question: top-k with scores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from loramem.registry import Registry

ROUTERS: Registry[type["Router"]] = Registry("router")


@dataclass(frozen=True)
class Route:
    name: str
    score: float


class Router(ABC):
    """Built once per store (see `Memory.router`); `route` ranks the given candidate memories."""

    @abstractmethod
    def route(self, question: str, candidates: list, k: int) -> list[Route]:
        """The best `k` of `candidates` (MemoryRecords) for `question`, best first."""
