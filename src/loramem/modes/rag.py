"""Retrieval: the passages of the memories' documents most relevant to the question go in context.

`rag` uses no adapter; `parametric+rag` adds the memories' adapters (the first paper's hybrid).
Passages are ~PASSAGE_WORDS-word windows with a quarter overlap, retrieved by BM25 (`bm25s`) or
by MiniLM embeddings, and put in context in document order so the text reads on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from loramem.errors import LoramemError
from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.options import option

PASSAGE_WORDS = 100
RETRIEVERS = ("bm25", "embedding")


def chunk_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    tokens = re.sub(r"\s+", " ", text).strip().split(" ")
    step = max(1, words - words // 4)
    return [" ".join(tokens[i : i + words]) for i in range(0, max(1, len(tokens) - words // 4), step) if tokens[i:i + 1]]


def retrieve(question: str, passages: list[str], k: int, retriever: str = "bm25") -> list[int]:
    """Indices of the `k` passages best matching `question`, in passage order."""
    if retriever not in RETRIEVERS:
        raise LoramemError(f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")
    k = min(k, len(passages))
    if retriever == "bm25":
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        index = bm25s.BM25()
        index.index(bm25s.tokenize(passages, stopwords="en", show_progress=False), show_progress=False)
        docs, _ = index.retrieve(bm25s.tokenize([question], stopwords="en", show_progress=False), k=k,
                                 show_progress=False)
        best = [int(d) for d in docs[0]]
    else:
        from loramem.routing.embedding import embed

        vectors = embed([question, *passages])
        best = np.argsort(-(vectors[1:] @ vectors[0]))[:k].tolist()
    return sorted(best)


@dataclass(frozen=True)
class RagSettings:
    """The rag modes' options (`rag_top_k`, not `top_k`: that one is the router's)."""

    rag_top_k: int = option(3, "passages put in context")
    retriever: str = option("bm25", "how passages are found", choices=RETRIEVERS)

    def check(self) -> RagSettings:
        if int(self.rag_top_k) < 1:
            raise LoramemError(f"rag top-k must be at least 1, got {self.rag_top_k}")
        return self


class _Retrieval(AnswerMode):
    settings_type = RagSettings
    with_adapters = False

    def plan(self, memories, question):
        settings = self.settings.check()
        passages = [p for m in memories for p in chunk_passages(m.document)]
        chosen = retrieve(question, passages, int(settings.rag_top_k), settings.retriever) if passages else []
        context = "\n\n".join(passages[i] for i in chosen)
        return Plan(context=context or None, adapters=list(memories) if self.with_adapters else [])


@MODES.register("rag")
class RetrievalMode(_Retrieval):
    name = "rag"


@MODES.register("parametric+rag")
class ParametricRetrievalMode(_Retrieval):
    name = "parametric+rag"
    with_adapters = True
