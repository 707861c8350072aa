"""The catalogue's tables and the rows a memory's current version is listed with."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np

from loramem.store.records import MemoryRecord

if TYPE_CHECKING:
    from loramem.routing.index import MemoryIndex

COLUMNS = [f.name for f in fields(MemoryRecord)]
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS memories (
    {", ".join(c + (" TEXT PRIMARY KEY" if c == "name" else "") for c in COLUMNS)}
);
CREATE TABLE IF NOT EXISTS embeddings (name TEXT PRIMARY KEY, rows INTEGER, dim INTEGER, vectors BLOB, items TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
# after the columns exist (an older store gains `collection` by migration): counting or listing one
# collection then reads the index, not every row's document text (12 ms among 10,000 memories)
INDEXES = "CREATE INDEX IF NOT EXISTS memories_by_collection ON memories (collection);"
BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'generation'"
INSERT = f"INSERT INTO memories ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_EMBEDDING = "INSERT INTO embeddings (name, rows, dim, vectors, items) VALUES (?, ?, ?, ?, ?)"


def make_current(db: sqlite3.Connection, row: dict, embedding_row: tuple | None) -> None:
    """List catalogue row `row` (`MemoryRecord.to_row()`) as its memory's current version, with its
    routing embedding (`embedding_row`, or None), in the caller's transaction; routers see a change."""
    db.execute("DELETE FROM memories WHERE name = ?", (row["name"],))
    db.execute("DELETE FROM embeddings WHERE name = ?", (row["name"],))
    if embedding_row is not None:
        db.execute(INSERT_EMBEDDING, embedding_row)
    db.execute(INSERT, [row[c] for c in COLUMNS])
    db.execute(BUMP)


def add_column(db: sqlite3.Connection, table: str, column: str) -> None:
    if column.split()[0] not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def stored_vectors(rows: int, dim: int, blob: bytes) -> np.ndarray:
    """A stored embedding, (rows, dim) float16, from its catalogue columns."""
    return np.frombuffer(blob, dtype=np.float16).reshape(rows, dim)


def embedding_row(name: str, index: MemoryIndex) -> tuple:
    """The catalogue columns of a routing index: name, rows, dim, float16 bytes, items as JSON [[kind, text]]."""
    vectors = np.ascontiguousarray(index.vectors, dtype=np.float16)
    return name, vectors.shape[0], vectors.shape[1], vectors.tobytes(), json.dumps(list(zip(index.kinds, index.texts)))
