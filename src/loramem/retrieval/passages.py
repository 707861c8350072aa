"""A document cut into passages: ~PASSAGE_WORDS-word windows, as routers index it and as `rag` puts it in context."""

from __future__ import annotations

import re

MAX_PASSAGES = 1024
PASSAGE_WORDS = 100


def passages(text: str, records: list | None = None) -> list[str]:
    """What a memory is indexed as: its records as 'question answer', else ~100-word passages (at most
    MAX_PASSAGES, evenly spread)."""
    if records:
        items = [f"{r.prompt} {r.target}" for r in records]
    else:
        words = re.sub(r"\s+", " ", text).split(" ")
        items = [" ".join(words[i : i + PASSAGE_WORDS]) for i in range(0, len(words), PASSAGE_WORDS)]
    if len(items) > MAX_PASSAGES:  # keep an even spread
        step = len(items) / MAX_PASSAGES
        items = [items[int(i * step)] for i in range(MAX_PASSAGES)]
    return [p for p in items if p.strip()]


def chunk_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """`words`-word windows with a quarter overlap, so that a retrieved passage does not cut a sentence
    its neighbour holds whole (what `rag` puts in context)."""
    tokens = re.sub(r"\s+", " ", text).strip().split(" ")
    step = max(1, words - words // 4)
    return [" ".join(tokens[i : i + words]) for i in range(0, max(1, len(tokens) - words // 4), step) if tokens[i:i + 1]]
