"""One catalogue row: everything known about a stored memory."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields

JSON_COLUMNS = ("sources", "formats", "config")


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
    version: int = 1  # 1 for the first write; every update, rewrite or rollback target has its own number

    def summary(self) -> dict:
        """Everything but the document text, for `ls --json` and `show`."""
        d = asdict(self)
        d.pop("document")
        return d

    def to_row(self) -> dict:
        d = asdict(self)
        for key in JSON_COLUMNS:
            d[key] = json.dumps(d[key])
        return d

    @classmethod
    def from_row(cls, row: dict) -> MemoryRecord:
        d = dict(row)
        for key in JSON_COLUMNS:
            d[key] = json.loads(d[key])
        return cls(**d)

    @classmethod
    def column_default(cls, name: str) -> str | int | float:
        """The value a column added to an older store holds in its existing rows, stored as a row
        stores it (JSON columns as JSON text, so they read back)."""
        f = next(f for f in fields(cls) if f.name == name)
        value = f.default_factory() if f.default_factory is not MISSING else f.default
        if value is MISSING:  # a required field: its type's empty value
            value = {"int": 0, "float": 0.0, "str": ""}.get(str(f.type), [] if name in JSON_COLUMNS else "")
        return json.dumps(value) if name in JSON_COLUMNS else value
