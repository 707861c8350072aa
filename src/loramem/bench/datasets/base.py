"""What a benchmark writes and asks: records, documents and evaluation questions, from one loader."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loramem.errors import LoramemError
from loramem.registry import Registry
from loramem.supervision.examples import Example

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    meta: dict = field(default_factory=dict, hash=False, compare=False)  # level, document, the true answer, ...


@dataclass(frozen=True)
class Document:
    title: str
    text: str


@dataclass
class Dataset:
    name: str
    records: list[Example] = field(default_factory=list)  # facts written as they are
    documents: list[Document] = field(default_factory=list)  # texts written through a format
    questions: list[Question] = field(default_factory=list)  # what is asked afterwards
    metric: str = "exact_match"  # the metric the paper reports for it


def data_dir(path: str | Path | None = None) -> Path:
    """The seed paper's data: `path`, else $LORAMEM_DATA, else ../shared/data/lora-knowledge-memory."""
    folder = Path(path or os.environ.get("LORAMEM_DATA") or "../shared/data/lora-knowledge-memory")
    if not folder.is_dir():
        raise LoramemError(f"data folder {folder} not found; pass data_dir or set $LORAMEM_DATA")
    return folder


def sample(items: list, n: int | None, seed: int) -> list:
    """`n` items chosen with `seed` (all, in order, when n is None)."""
    import random

    if n is None or n >= len(items):
        return list(items)
    return random.Random(seed).sample(items, n)


def spread(items: list, n: int | None) -> list:
    """At most `n` of `items`, evenly spaced (PaperQA lists its questions by level: keep every level)."""
    if not n or n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]
