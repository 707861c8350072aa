"""What routers know of one memory: the texts it was written from and trained on, with their embeddings.

A write stores, per memory, a list of index items: its records ("question answer"), or its
documents' ~100-word passages plus the generated supervision it trained on (each generated
question with its answer, each summary). The generated questions are what users ask of a
document; a gold PaperQA question often shares few words with the introduction's passages but
many with a question generated from them. Each item keeps its kind, so a router can weigh or
pick them; the MiniLM embedding of each item is stored beside it (float16, (items, 384)).
Anchors and forget targets are not indexed: they say what a memory does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loramem.retrieval import MAX_PASSAGES, embed, passages

PASSAGE = "passage"  # a ~100-word passage of a document, or a record as "question answer"
QUESTION = "question"  # a generated question with its answer
SUMMARY = "summary"  # a generated summary of a chunk
INDEXED = {"qa": QUESTION, "summary": SUMMARY}  # supervision kinds a document memory is indexed by


@dataclass(frozen=True)
class MemoryIndex:
    """One memory's index: `texts[i]` of kind `kinds[i]`, embedded as `vectors[i]` ((items, 384) float16)."""

    kinds: list[str]
    texts: list[str]
    vectors: np.ndarray


def channel_rows(items: Sequence[tuple[str, str]] | None, rows: int, channel: str) -> list[int]:
    """The rows of a memory's index that a router of `channel` reads: its items of that kind, or,
    when it has none (a fact table's records, a memory indexed before items were kept), all of them."""
    chosen = [i for i, (kind, _) in enumerate(items or ()) if kind == channel]
    return chosen or list(range(rows))


def index_items(sources: Sequence, examples: Sequence = ()) -> list[tuple[str, str]]:
    """(kind, text) items of a memory: its sources' passages or records, then its generated supervision."""
    items = [(PASSAGE, p) for s in sources for p in passages(s.text, s.records)]
    generated = [(INDEXED[e.kind], f"{e.prompt} {e.target}" if e.kind == "qa" else e.target)
                 for e in examples if e.kind in INDEXED and e.target.strip()]
    room = MAX_PASSAGES - min(len(items), MAX_PASSAGES)
    if len(generated) > room:  # keep an even spread of what fits
        step = len(generated) / max(room, 1)
        generated = [generated[int(i * step)] for i in range(room)]
    return items[:MAX_PASSAGES] + generated


def memory_index(sources: Sequence, examples: Sequence = ()) -> MemoryIndex | None:
    """The index a write stores for `sources` (`loramem.supervision.Source`s) trained on `examples`;
    None when they hold no text."""
    items = index_items(sources, examples)
    if not items:
        return None
    kinds, texts = (list(x) for x in zip(*items))
    return MemoryIndex(kinds, texts, embed(texts).astype(np.float16))
