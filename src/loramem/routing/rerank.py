"""Rerank routing: a first-stage router's few best candidates, reordered by the memories themselves.

The first stage (FIRST) reads only the catalogue; its top CANDIDATES memories are then scored by
how much likelier each makes the question than the base model does (`likelihood.py`), in one
batched forward, their adapters read through the answering adapter cache. The final score is
the gain; equal gains keep the first stage's order.
"""

from __future__ import annotations

from loramem.errors import LoramemError
from loramem.routing.base import ROUTERS, Route, Router
from loramem.routing.likelihood import likelihood_gains


@ROUTERS.register("rerank")
class RerankRouter(Router):
    needs_adapters = True
    FIRST = "hybrid"
    CANDIDATES = 4

    def __init__(self, store, memory=None) -> None:
        super().__init__(store, memory)
        if memory is None:
            raise LoramemError("the rerank router reads adapters: route through loramem.Memory")
        self.first = ROUTERS.get(self.FIRST)(store)

    def gains(self, question: str, names: list[str]) -> list[float]:
        """Each named memory's likelihood gain on `question` (nats a token over the base model)."""
        mem = self.memory
        base = mem.base
        weights = []
        for name in names:
            record = self.store.get(name)
            weights.append(mem.adapters.get(self.store.adapter_path(record), base.device, base.model.dtype, name))
        return likelihood_gains(base.model, base.tokenizer, question, weights)

    def route(self, question, k, collection=None):
        candidates = self.first.route(question, max(k, self.CANDIDATES), collection)
        gains = self.gains(question, [c.name for c in candidates])
        order = sorted(range(len(candidates)), key=lambda i: (-gains[i], i))[:k]
        return [Route(candidates[i].name, float(gains[i])) for i in order]
