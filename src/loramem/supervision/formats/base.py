"""Supervision formats: how one chunk of a document becomes training examples.

A format spec names formats with optional per-chunk counts, as in the seed paper's mixtures:
`qa:40,summary:8,rewrite:4,raw` (counts per chunk), or per document with `/doc`:
`qa:40/doc,summary:8/doc,rewrite:4/doc,raw`, the seed paper's counts for a whole introduction,
spread evenly over its chunks. `mixed` is all four at their default counts; `auto` is QA.
Records (.jsonl/.csv) are always trained on as they are, whatever the format.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from loramem.errors import LoramemError
from loramem.registry import Registry
from loramem.supervision.chunking import Chunk
from loramem.supervision.examples import Example
from loramem.supervision.generators.base import Generator

FORMATS: Registry[type[Format]] = Registry("format")
ALIASES = {"auto": "qa", "mixed": "qa,summary,rewrite,raw"}

_WORD = re.compile(r"[a-z0-9]+")


def supported(text: str, passage: str, threshold: float = 0.7) -> bool:
    """True when at least `threshold` of the words of `text` occur in the passage."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    vocab = set(_WORD.findall(passage.lower()))
    return sum(w in vocab for w in words) / len(words) >= threshold


@dataclass
class Made:
    """A format's output for one chunk; `note` says when it made fewer examples than asked."""

    examples: list[Example]
    note: str = ""


@dataclass
class Part:
    """Where a format's examples come from: one chunk of a titled document."""

    chunk: Chunk
    n_chunks: int
    title: str

    def label(self) -> str:
        return f'"{self.title}"' + (f", part {self.chunk.index + 1} of {self.n_chunks}" if self.n_chunks > 1 else "")


class Format(ABC):
    name: str = ""
    default_count: int = 1
    takes_count: bool = True
    uses_generator: bool = True
    template: str | None = None  # file in supervision/templates, versioned in the cache key
    version: int = 1  # bump when the format's parsing or filtering changes: cached output is stale

    @abstractmethod
    def make(self, part: Part, n: int, generator: Generator | None, seed: int) -> Made: ...


@dataclass
class FormatSpec:
    """A parsed `--format` value: (format name, count per chunk) in the order given."""

    parts: list[tuple[str, int]] = field(default_factory=list)
    per_document: set[str] = field(default_factory=set)  # formats whose count is per document, not per chunk

    def __str__(self) -> str:
        return ",".join((f"{name}:{n}" + ("/doc" if name in self.per_document else ""))
                        if FORMATS.get(name).takes_count else name for name, n in self.parts)

    def count(self, name: str, n: int, chunks: int) -> int:
        """Examples per chunk: `n`, or a per-document `n` spread over the document's chunks."""
        return max(1, -(-n // chunks)) if name in self.per_document else n


def parse_format(spec: str) -> FormatSpec:
    """`qa:40,summary:8,rewrite:4,raw` → FormatSpec; errors name the valid formats."""
    valid = (f"valid formats: {', '.join(FORMATS.names())} (with :N counts per chunk, or :N/doc per document, "
             f"e.g. qa:40/doc,summary:8/doc,raw), or {', '.join(ALIASES)}")
    text = ALIASES.get(spec.strip().lower(), spec.strip().lower())
    parts: list[tuple[str, int]] = []
    per_document: set[str] = set()
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, count = item.partition(":")
        name = name.strip()
        if count.strip().endswith("/doc"):
            count = count.strip()[:-4]
            per_document.add(name)
        if name not in FORMATS.names():
            raise LoramemError(f"cannot parse format {spec!r}: unknown format {name!r}; {valid}")
        fmt = FORMATS.get(name)
        if count and not fmt.takes_count:
            raise LoramemError(f"cannot parse format {spec!r}: {name} takes no count; {valid}")
        if count and not (count.strip().isdigit() and int(count) > 0):
            raise LoramemError(f"cannot parse format {spec!r}: count {count!r} for {name} is not a positive integer")
        if any(name == n for n, _ in parts):
            raise LoramemError(f"cannot parse format {spec!r}: {name} appears twice")
        parts.append((name, int(count) if count else fmt.default_count))
    if not parts:
        raise LoramemError(f"cannot parse format {spec!r}: it names no format; {valid}")
    return FormatSpec(parts, per_document)
