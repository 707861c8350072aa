"""Finding passages: MiniLM embeddings (unit vectors, cosine by dot product) and BM25 (`bm25s`)."""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from loramem.errors import LoramemError
from loramem.retrieval.encoder import encoder

RETRIEVERS = ("bm25", "embedding")


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 384) unit vectors."""
    return encoder()(texts)


@lru_cache(maxsize=64)
def embed_question(question: str) -> np.ndarray:
    """One question's unit vector (384,), cached: several routers and the abstention read it per ask."""
    vector = embed([question])[0]
    vector.setflags(write=False)
    return vector


def bm25_index(texts: list[str]):
    """A `bm25s.BM25` over `texts` (English stopwords), one BM25 document per text."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    return index


def bm25_query(question: str) -> list[str]:
    """The question's BM25 terms, tokenized as `bm25_index` tokenizes its texts."""
    import bm25s

    (tokens,) = bm25s.tokenize([question], stopwords="en", return_ids=False, show_progress=False)
    return tokens


def retrieve(question: str, passages: list[str], k: int, retriever: str = "bm25") -> list[int]:
    """Indices of the `k` passages best matching `question`, in passage order."""
    if retriever not in RETRIEVERS:
        raise LoramemError(f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")
    k = min(k, len(passages))
    if k <= 0:
        return []
    if retriever == "bm25":
        tokens = bm25_query(question)
        scores = bm25_index(passages).get_scores(tokens) if tokens else np.zeros(len(passages))
        best = np.argsort(-scores, kind="stable")[:k].tolist()
    else:
        vectors = embed([question, *passages])
        best = np.argsort(-(vectors[1:] @ vectors[0]))[:k].tolist()
    return sorted(best)
