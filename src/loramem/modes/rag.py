"""Retrieval: the passages of the memories' documents most relevant to the question go in context.

`rag` uses no adapter; `parametric+rag` adds the memories' adapters (the first paper's hybrid).
Passages are ~100-word windows with a quarter overlap, retrieved by BM25 (`bm25s`) or by MiniLM
embeddings (`loramem.retrieval`, as the routers index memories), and put in context in document
order so the text reads on.
"""

from __future__ import annotations

from dataclasses import dataclass

from loramem.errors import LoramemError
from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.options import option
from loramem.retrieval import RETRIEVERS, chunk_passages, retrieve


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
