"""Routers pick which memories of a store answer a question: top-k with scores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from loramem.registry import Registry

ROUTERS: Registry[type[Router]] = Registry("router")


@dataclass(frozen=True)
class Route:
    """A memory a router picked: its score (on the router's own scale), and where a reranker scored
    it, the likelihood gain and whether the router judges that it holds the answer."""

    name: str
    score: float
    gain: float | None = None
    holds: bool | None = None

    def summary(self) -> dict:
        return {"name": self.name, "score": round(self.score, 4),
                **({"gain": round(self.gain, 4)} if self.gain is not None else {}),
                **({"holds": self.holds} if self.holds is not None else {})}


class Router(ABC):
    """One per store; keeps an index of the store's memories, rebuilt when the store changes.

    A first-stage router reads only the catalogue; one that `needs_adapters` (a reranker) reads
    the candidates' adapters too, so it cannot route index-only memories."""

    needs_adapters = False

    def __init__(self, store, memory=None) -> None:
        self.store = store
        self.memory = memory  # the loramem.Memory that asks (its base model and adapter cache), for rerankers
        self._generation = None
        self._members: dict[str, set[str]] = {}

    def _fresh(self) -> bool:
        """True when the index still matches the store; else remember the new generation."""
        generation = self.store.generation()
        if generation == self._generation:
            return True
        self._generation = generation
        self._members = {}
        return False

    def members(self, collection: str | None) -> set[str] | None:
        """Names in `collection` (None: no restriction), cached until the store changes."""
        if collection is None:
            return None
        if collection not in self._members:
            self._members[collection] = set(self.store.names(collection))
        return self._members[collection]

    def holds(self, question: str, routes: list[Route]) -> bool:
        """Whether the first of `routes` holds the answer to `question`: the router's own word where it
        gave one (`Route.holds`), else its closeness (`loramem.routing.abstention`)."""
        from loramem.routing.abstention import holds

        if routes and routes[0].holds is not None:
            return routes[0].holds
        return holds(self.store, question, routes)

    @abstractmethod
    def route(self, question: str, k: int, collection: str | None = None) -> list[Route]:
        """The best `k` memories of the store (or of one collection) for `question`, best first."""
