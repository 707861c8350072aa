"""BM25 routing over the memories' source text (`bm25s`), one BM25 document per memory passage."""

from __future__ import annotations

import numpy as np

from loramem.routing.base import ROUTERS, Route, Router
from loramem.routing.embedding import passages


@ROUTERS.register("bm25")
class BM25Router(Router):
    def _index(self):
        import bm25s

        if not self._fresh():
            texts, owners = [], []
            self.names = []
            for i, (name, document) in enumerate(self.store.documents()):
                self.names.append(name)
                for p in passages(document):
                    texts.append(p)
                    owners.append(i)
            self.retriever = bm25s.BM25()
            self.retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            self.owners = np.array(owners)
        return self.names, self.retriever, self.owners

    def route(self, question, k, collection=None):
        import bm25s

        names, retriever, owners = self._index()
        allowed = self.members(collection)
        if allowed is not None:
            k = min(k, len(allowed))
        hits = len(owners) if allowed is not None else min(len(owners), max(50, 20 * k))  # enough to fill k
        docs, scores = retriever.retrieve(bm25s.tokenize([question], stopwords="en", show_progress=False),
                                          k=hits, show_progress=False)
        best: dict[int, float] = {}
        for d, s in zip(docs[0], scores[0]):
            i = int(owners[d])
            if allowed is None or names[i] in allowed:
                best[i] = max(best.get(i, 0.0), float(s))
        order = sorted(best, key=lambda i: -best[i])[:k]
        routes = [Route(names[i], best[i]) for i in order]
        rest = (Route(n, 0.0) for i, n in enumerate(names)  # no word in common with the question
                if i not in best and (allowed is None or n in allowed))
        return routes + [next(rest) for _ in range(k - len(routes))]
