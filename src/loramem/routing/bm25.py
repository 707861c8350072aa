"""BM25 routing (`bm25s`) over each memory's index items (passages, records, generated questions and
summaries: `loramem.routing.index`), one BM25 document per item; a memory scores as its best item."""

from __future__ import annotations

import numpy as np

from loramem.retrieval import bm25_index, bm25_query, passages
from loramem.routing.base import ROUTERS, Route, Router
from loramem.routing.index import channel_rows


@ROUTERS.register("bm25")
class BM25Router(Router):
    """A memory scores as its best index item; `channel` keeps items of one kind (`channel_rows`)."""

    def __init__(self, store, memory=None, channel: str | None = None) -> None:
        super().__init__(store, memory)
        self.channel = channel

    def _index(self):
        if not self._fresh():
            texts, owners = [], []
            self.names = []
            items = self.store.index_items()
            for i, (name, document) in enumerate(self.store.documents()):
                self.names.append(name)
                # a memory indexed before items were kept: its document's passages
                texts_of = [t for _, t in items[name]] if name in items else passages(document)
                if self.channel is not None and name in items:
                    texts_of = [texts_of[j] for j in channel_rows(items[name], len(texts_of), self.channel)]
                for text in texts_of:
                    texts.append(text)
                    owners.append(i)
            self.retriever = bm25_index(texts)
            # texts are listed memory by memory: each memory's best is one reduceat over its run
            self.holders, self.starts = np.unique(np.array(owners, dtype=np.int64), return_index=True)
        return self.names, self.retriever, self.holders, self.starts

    def route(self, question, k, collection=None):
        names, retriever, holders, starts = self._index()
        allowed = self.members(collection)
        # Every passage is scored (a sparse dot product, cheap next to answering): a top-n cut of
        # passages could be filled by one long memory and leave the rest of the top k unranked.
        tokens = bm25_query(question)
        best = np.zeros(len(names))
        if tokens and len(starts):
            best[holders] = np.maximum.reduceat(retriever.get_scores(tokens), starts)  # a memory scores as its best item
        if allowed is not None:
            best = np.where(np.fromiter((n in allowed for n in names), bool, len(names)), best, -np.inf)
            k = min(k, len(allowed))
        order = np.argsort(-best, kind="stable")[:k]  # stable: ties (no word shared) in name order
        return [Route(names[i], float(best[i])) for i in order]
