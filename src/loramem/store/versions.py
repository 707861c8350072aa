"""Versions of a memory: every write and update is an immutable, numbered version.

A version is a catalogue row (`versions`: the memory's full record as it was, its routing
embedding, what changed and from which version) plus its adapter folder, whose name is the
hash of its content (`adapters/<sha256 prefix>`), so identical versions share one folder and a
folder is never rewritten. The `memories` table holds the current version of each memory;
rollback makes an older version current again. Old versions stay until `gc`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from loramem.errors import UnknownMemoryError
from loramem.store.records import MemoryRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT, version INTEGER, parent INTEGER, created TEXT, change TEXT, record TEXT,
    emb_rows INTEGER, emb_dim INTEGER, emb_vectors BLOB, emb_items TEXT,
    PRIMARY KEY (name, version)
);
"""
_PINNED = re.compile(r"^(?P<name>.+)@(?P<version>\d+)$")
MAX_VERSION = 2**63 - 1  # SQLite's largest integer: no version number is larger
SUPERVISION_FILE = "supervision.jsonl"  # the examples a version was trained on, one JSON object a line


@dataclass
class Version:
    """One version of a memory as `loramem log` lists it."""

    name: str
    version: int
    parent: int | None  # the version it was updated from (None for a first write or a rewrite)
    created: str
    change: dict = field(default_factory=dict)  # kind (write, rewrite, update) and counts by what changed
    record: MemoryRecord | None = None
    current: bool = False

    def summary(self) -> dict:
        r = self.record
        return {"name": self.name, "version": self.version, "parent": self.parent, "created": self.created,
                "current": self.current, "change": self.change, "recall": r.recall if r else None,
                "examples": r.examples if r else None, "rank": r.rank if r else None,
                "seconds": self.change.get("seconds", (r.config or {}).get("train_seconds")) if r else None}


def split_pinned(name: str) -> tuple[str, int | None]:
    """`facts@3` → ('facts', 3); `facts` → ('facts', None)."""
    m = _PINNED.match(name)
    return (m["name"], int(m["version"])) if m else (name, None)


def content_hash(folder: Path) -> str:
    """The sha256 of a staged folder's files (names and bytes), which names its place in the store."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:32]


def next_version(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()
    return (row[0] or 0) + 1


def insert_version(db: sqlite3.Connection, record: MemoryRecord, parent: int | None, change: dict,
                   embedding_row: tuple | None) -> None:
    rows, dim, vectors, items = embedding_row[1:] if embedding_row is not None else (None,) * 4
    db.execute("INSERT INTO versions (name, version, parent, created, change, record, emb_rows, emb_dim, "
               "emb_vectors, emb_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (record.name, record.version, parent, record.created, json.dumps(change),
                json.dumps(record.to_row()), rows, dim, vectors, items))


def read_version(row: sqlite3.Row, current: int | None) -> Version:
    return Version(name=row["name"], version=row["version"], parent=row["parent"], created=row["created"],
                   change=json.loads(row["change"] or "{}"), record=MemoryRecord.from_row(json.loads(row["record"])),
                   current=row["version"] == current)


def migrate(db: sqlite3.Connection) -> None:
    """A store from before versions: each memory becomes its own version 1 (its folder as it is)."""
    missing = db.execute("SELECT m.* FROM memories m WHERE NOT EXISTS "
                         "(SELECT 1 FROM versions v WHERE v.name = m.name)").fetchall()
    for row in missing:
        record = MemoryRecord.from_row(dict(row))
        emb = db.execute("SELECT name, rows, dim, vectors, items FROM embeddings WHERE name = ?", (record.name,)).fetchone()
        insert_version(db, record, None, {"kind": "write"}, tuple(emb) if emb is not None else None)


def unknown_version(name: str, version: int, known: list[int]) -> UnknownMemoryError:
    listed = ", ".join(map(str, known)) if known else "none"
    return UnknownMemoryError(f"memory {name!r} has no version {version}; its versions: {listed} (see loramem log {name})")
