"""One catalogue row: everything known about a stored memory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class MemoryRecord:
    name: str
    folder: str  # adapter folder, relative to the store
    source_hash: str  # sha256 of the source files' bytes
    sources: list[str]  # file names written into this memory
    base_model: str
    base_fingerprint: str
    rank: int
    formats: list[str]  # kinds of supervision: record, qa, cloze, ...
    examples: int
    tokens: int
    parameters: int
    recall: float  # read-back recall after the write
    created: str  # ISO 8601, UTC
    document: str = ""  # the source text, for in-context answering
    config: dict = field(default_factory=dict)  # resolved training settings and timings
    collection: str = ""  # the named group a partitioned write belongs to

    def summary(self) -> dict:
        """Everything but the document text, for `ls --json` and `show`."""
        d = asdict(self)
        d.pop("document")
        return d

    def to_row(self) -> dict:
        d = asdict(self)
        for key in ("sources", "formats", "config"):
            d[key] = json.dumps(d[key])
        return d

    @classmethod
    def from_row(cls, row: dict) -> MemoryRecord:
        d = dict(row)
        for key in ("sources", "formats", "config"):
            d[key] = json.loads(d[key])
        return cls(**d)
