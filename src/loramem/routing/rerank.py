"""Rerank routing: the fused router's candidates, checked by the memories themselves where it is unsure.

The fused router ranks with four signals (MiniLM and BM25, over passages and over trained
questions). When all four put the same memory first, that memory is taken, and said to hold the
answer: on PaperQA dev this happened for 70% of the questions and was right every time, while
for questions of a paper left out of the collection the four agreed on another paper 8% of the
time. Otherwise the top CANDIDATES memories are scored by how much likelier each makes the
question than the base model does (`likelihood.py`), in one batched forward, their adapters read
through the answering adapter cache, and reordered by that gain.

Measured on PaperQA dev (10 introductions written with default settings, 300 gold questions):
the gain alone picks the right paper among all ten for 70% of the questions (the fused router
90%), so it is a weak signal for these 135M memories: reranking the top 2 left hit@1 at 0.900,
the top 4 lowered it to 0.850. So `auto` is `fused`, and this router reranks two candidates.
"""

from __future__ import annotations

from dataclasses import replace

from loramem.errors import LoramemError, UnsupportedAdapter
from loramem.routing.base import ROUTERS, Router
from loramem.routing.fused import FusedRouter

CANDIDATES = 2  # reranked where the channels disagree: the best of 2-5 measured (see above)


@ROUTERS.register("rerank")
class RerankRouter(Router):
    needs_adapters = True

    def __init__(self, store, memory=None) -> None:
        super().__init__(store, memory)
        if memory is None:
            raise LoramemError("the rerank router reads adapters: route through loramem.Memory")
        self.first = FusedRouter(store)

    def gains(self, question: str, names: list[str]) -> list[float]:
        """Each named memory's likelihood gain on `question` (nats a token over the base model)."""
        base = self.memory.base
        weights = [self.memory.adapters.get(self.store.adapter_path(record), base.device, base.model.dtype, record.name)
                   for record in map(self.store.get, names)]
        from loramem.routing.likelihood import likelihood_gains  # torch: loaded when a question is reranked

        return likelihood_gains(base.model, base.tokenizer, question, weights)

    def route(self, question, k, collection=None):
        candidates, parts = self.first.rankings(question, max(k, CANDIDATES), collection)
        if all(ranking and ranking[0].name == candidates[0].name for ranking in parts):  # unanimous
            return [replace(candidates[0], holds=True), *candidates[1:k]]
        try:
            gains = self.gains(question, [c.name for c in candidates])
        except UnsupportedAdapter:  # an adapter the batched layer cannot apply (DoRA, ...): the fused order
            return candidates[:k]
        order = sorted(range(len(candidates)), key=lambda i: (-gains[i], i))[:k]
        return [replace(candidates[i], gain=gains[i]) for i in order]
