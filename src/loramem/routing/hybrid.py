"""Hybrid routing: reciprocal-rank fusion of the embedding and BM25 rankings (k=60, the usual constant)."""

from __future__ import annotations

from loramem.routing.base import ROUTERS, Route, Router
from loramem.routing.bm25 import BM25Router
from loramem.routing.embedding import EmbeddingRouter

RRF_K = 60


@ROUTERS.register("hybrid")
class HybridRouter(Router):
    """RRF of MiniLM and BM25, each over all of a memory's index items."""

    DEPTH = 100  # each part's ranking is fused down to this depth

    def __init__(self, store, memory=None) -> None:
        super().__init__(store, memory)
        self.parts = self.make_parts(store)

    def make_parts(self, store) -> list[Router]:
        return [EmbeddingRouter(store), BM25Router(store)]

    def rankings(self, question: str, k: int, collection: str | None = None) -> tuple[list[Route], list[list[Route]]]:
        """The fused top `k` and each part's own ranking (down to DEPTH) that it was fused from."""
        fused: dict[str, float] = {}
        depth = min(self.store.count(collection), max(k, self.DEPTH))
        parts = [router.route(question, depth, collection) for router in self.parts]
        for ranking in parts:
            for rank, r in enumerate(ranking):
                fused[r.name] = fused.get(r.name, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        return [Route(name, score) for name, score in best], parts

    def route(self, question, k, collection=None):
        return self.rankings(question, k, collection)[0]
