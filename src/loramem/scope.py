"""Scope: a fact-table memory's adapter answers only the questions the memory is about.

A LoRA memory changes the base model for every question, not only for its own. A 12-record
PhoneBook memory on SmolLM2 written with anchors still loses a fifth of the country capitals
the base model knows, and half after ten updates ("The capital of Qatar is the 212-232-1",
`loramem bench updates`). Editing methods that must leave the rest alone apply an edit only to
inputs near the keys it was made for (GRACE, Hartvigsen et al. 2023; WISE, Wang et al. 2024). A
fact-table memory has such keys, its records: a question is in its scope when the question's
MiniLM embedding has cosine at least `SCOPE` to one of the records the version holds (the
routing embedding every version stores, "question answer"). Out of scope, the memory's adapter
stays off and the base model answers; the answer says so (`Answer.out_of_scope`).

Measured with all-MiniLM-L6-v2 on three 12-record PhoneBook memories: a record's own question
scores at least 0.92, a paraphrase ("How can I reach NAME by phone?", "NAME's number?") at least
0.76 (0.60 for "What's Ada's number?", the first name alone), the same question about a name the
memory does not hold 0.58-0.77; the 128 anchor prompts (general questions and tasks) at most
0.36, capital questions at most 0.27. On made-up tables of birth dates, e-mail addresses and
prices the anchors reach at most 0.28 and capital questions 0.30; on a table of home cities
capital questions reach 0.48, and on a table of capitals of fictional countries 0.56 (in scope:
such a memory is about capitals). `SCOPE = 0.5` keeps every paraphrase tried and holds back
every general prompt. Memories written from documents are not gated: a PaperQA paper's gold
questions score as low as 0.10 against its own passages, below general prompts (up to 0.31), so
no cut keeps them all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loramem.store.records import MemoryRecord
from loramem.supervision.stored import is_fact_table

SCOPE = 0.5  # cosine to the nearest record; 0 applies a memory to every question
CACHED = 64  # versions whose embeddings stay in memory


def gated(record: MemoryRecord) -> bool:
    """Whether `record` is a fact-table memory: every example a record (anchors and forget targets aside)."""
    return is_fact_table(record.formats)


@dataclass(frozen=True)
class Scoped:
    inside: list[MemoryRecord]  # whose adapters answer
    outside: list[dict]  # {name, version, score}: held back, best cosine below the threshold


class ScopeGate:
    """Splits the memories of an answer into those whose scope holds the question and the rest."""

    def __init__(self, store) -> None:
        self.store = store
        self._vectors: OrderedDict[tuple[str, int, str], np.ndarray | None] = OrderedDict()
        self._lock = threading.Lock()

    def _embedding(self, record: MemoryRecord) -> np.ndarray | None:
        # A version is immutable, but `rm` and a new write reuse its number: the content-addressed
        # folder tells the two apart.
        key = (record.name, record.version, record.folder)
        with self._lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        vectors = self.store.version_embedding(record.name, record.version)
        vectors = vectors.astype(np.float32) if vectors is not None else None
        with self._lock:
            self._vectors[key] = vectors
            while len(self._vectors) > CACHED:
                self._vectors.popitem(last=False)
        return vectors

    def split(self, question: str, records: Sequence[MemoryRecord], threshold: float = SCOPE) -> Scoped:
        """`records` parted by whether `question` is in their scope; ungated memories are always inside."""
        inside, outside = [], []
        query = None
        for record in records:
            vectors = self._embedding(record) if threshold > 0 and gated(record) else None
            if vectors is None:
                inside.append(record)
                continue
            if query is None:
                from loramem.retrieval import embed

                query = embed([question])[0].astype(np.float32)
            score = float((vectors @ query).max())
            if score >= threshold:
                inside.append(record)
            else:
                outside.append({"name": record.name, "version": record.version, "score": round(score, 4)})
        return Scoped(inside, outside)
