"""Text retrieval, one module for the routers and the `rag` modes: a document's passages, the
MiniLM encoder (`encoder.py`) and BM25 (`bm25s`). It imports neither, so both can import it."""

from loramem.retrieval.passages import MAX_PASSAGES, PASSAGE_WORDS, chunk_passages, passages
from loramem.retrieval.search import RETRIEVERS, bm25_index, bm25_query, embed, embed_question, retrieve

__all__ = ["MAX_PASSAGES", "PASSAGE_WORDS", "RETRIEVERS", "bm25_index", "bm25_query", "chunk_passages", "embed",
           "embed_question", "passages", "retrieve"]
