"""BM25 routing over the memories' source text (`bm25s`), one BM25 document per memory passage."""

from __future__ import annotations

import numpy as np

from loramem.routing.base import ROUTERS, Route, Router
from loramem.routing.embedding import passages


@ROUTERS.register("bm25")
class BM25Router(Router):
    def __init__(self, store) -> None:
        self.store = store
        self._index = None  # (key, retriever, owners) for the last candidate set

    def _build(self, candidates):
        import bm25s

        key = tuple((c.name, c.created, c.folder) for c in candidates)
        if self._index is None or self._index[0] != key:
            texts, owners = [], []
            for i, c in enumerate(candidates):
                for p in passages(c.document):
                    texts.append(p)
                    owners.append(i)
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            self._index = (key, retriever, np.array(owners))
        return self._index

    def route(self, question, candidates, k):
        import bm25s

        _, retriever, owners = self._build(candidates)
        n = len(owners)
        docs, scores = retriever.retrieve(bm25s.tokenize([question], stopwords="en", show_progress=False),
                                          k=n, show_progress=False)
        best = np.zeros(len(candidates), dtype=np.float32)
        np.maximum.at(best, owners[docs[0]], scores[0])
        order = np.argsort(-best, kind="stable")[:k]
        return [Route(candidates[i].name, float(best[i])) for i in order]
