"""Long documents are cut into chunks of at most N tokens, neighbours overlapping by a few.

Chunks end at sentence boundaries where they can, so a generator never sees half a sentence;
a single sentence longer than a chunk is cut by tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a document, headings and list items kept as their own lines."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*#])", text):
        block = " ".join(block.split()).lstrip("#-* ").strip()
        out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


@dataclass(frozen=True)
class Chunk:
    index: int  # 0-based position in the document
    text: str


def _word_count(text: str) -> int:
    return len(text.split())


def chunk_text(
    text: str, max_tokens: int = 384, overlap: int = 48, count: Callable[[str], int] | None = None
) -> list[Chunk]:
    """Chunks of at most `max_tokens` (as `count` measures them; words when None).

    Each chunk after the first starts with the last sentences of the one before, up to
    `overlap` tokens, so a fact cut at a boundary still appears whole in one chunk.
    """
    if max_tokens <= 0 or overlap < 0 or overlap >= max_tokens:
        raise ValueError("need max_tokens > overlap >= 0")
    count = count or _word_count
    pieces: list[tuple[str, int]] = []
    for sentence in split_sentences(text):
        n = count(sentence)
        if n <= max_tokens:
            pieces.append((sentence, n))
            continue
        words = sentence.split()  # an over-long "sentence" (a table, a code block): cut it
        step = max(1, len(words) * max_tokens // (n + 1))
        pieces.extend((" ".join(words[i : i + step]), count(" ".join(words[i : i + step])))
                      for i in range(0, len(words), step))
    chunks: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    fresh = 0  # sentences in `current` that the previous chunk did not hold
    for piece in pieces:
        if current and fresh and sum(n for _, n in current) + piece[1] > max_tokens:
            chunks.append(current)
            carry: list[tuple[str, int]] = []
            for s in reversed(current):
                if sum(n for _, n in carry) + s[1] > overlap:
                    break
                carry.insert(0, s)
            current, fresh = carry, 0
            while current and sum(n for _, n in current) + piece[1] > max_tokens:
                current.pop(0)
        current.append(piece)
        fresh += 1
    if fresh:
        chunks.append(current)
    return [Chunk(i, " ".join(s for s, _ in c)) for i, c in enumerate(chunks)]
