"""Abstention: a routed question that no memory holds is answered without a memory, and says so.

A router always ranks something first; among papers of one field the first is often a paper
that merely shares the question's words. Whether the first route holds the answer is judged by
how close the question comes to what that memory was trained on: the best cosine between the
question's MiniLM embedding and the memory's index items (its generated questions, passages,
records), the same rows routing reads. Below HOLDS, the memory does not hold it.

Measured on PaperQA dev (10 introductions written with default settings, 300 gold questions,
the fused router's top 1): below 0.41 fell 5.0% of the collection's own questions, and 55% of
the same questions routed with their own paper left out of the collection (0.45: 8.3% and 72%;
0.40: 4.7% and 50%). So HOLDS keeps 95% of a collection's own questions and turns away about
half of those about other papers of the same field; a question far from every memory (another
field) scores lower still. Where the rerank router finds its four channels agree, it says
so itself (`Route.holds`); the likelihood gain separated worse than closeness (README).
"""

from __future__ import annotations

import numpy as np

from loramem.errors import LoramemError

ABSTAIN = ("base", "rag", "never")  # what a routed question no memory holds is answered with
HOLDS = 0.41  # measured: see the module docstring


def check_abstain(abstain: str) -> str:
    if abstain not in ABSTAIN:
        raise LoramemError(f"abstain must be one of {', '.join(ABSTAIN)}; got {abstain!r}")
    return abstain


def holds(store, question: str, routes) -> bool:
    """Whether the first route's memory is close enough to `question` to hold its answer."""
    if not routes:
        return False
    score = closeness(store, question, routes[0].name)
    return score is None or score >= HOLDS  # a memory with no index rows cannot be judged: it is used


def closeness(store, question: str, name: str) -> float | None:
    """The best cosine between `question` and memory `name`'s index rows; None when it has none."""
    from loramem.retrieval import embed_question

    vectors = store.embeddings([name]).get(name)
    if vectors is None or not len(vectors):
        return None
    query = embed_question(question)
    return float((vectors.astype(np.float32) @ query).max())
