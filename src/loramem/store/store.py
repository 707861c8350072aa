"""A folder holding `catalogue.sqlite` and `adapters/<id>/` PEFT folders.

Crash safety: an adapter is saved into `.staging/`, renamed into `adapters/` (atomic on one
file system), and only then listed by a committed SQLite transaction. A write killed at any
moment leaves at worst an unlisted folder, which the next open removes. A replaced or removed
memory is unlisted first and its folder deleted after, with the same clean-up as a fallback.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import numpy as np

from loramem.errors import LoramemError, UnknownMemoryError
from loramem.store.records import MemoryRecord

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ORPHAN_AGE_S = 600
_COLUMNS = [f.name for f in fields(MemoryRecord)]
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS memories (
    {", ".join(c + (" TEXT PRIMARY KEY" if c == "name" else "") for c in _COLUMNS)}
);
CREATE TABLE IF NOT EXISTS embeddings (name TEXT PRIMARY KEY, rows INTEGER, dim INTEGER, vectors BLOB);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
_BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'generation'"
_INSERT = f"INSERT INTO memories ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_INSERT_EMBEDDING = "INSERT INTO embeddings VALUES (?, ?, ?, ?)"


def _embedding_row(name: str, embedding: np.ndarray) -> tuple:
    vectors = np.ascontiguousarray(embedding, dtype=np.float16)
    return name, vectors.shape[0], vectors.shape[1], vectors.tobytes()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_store_path() -> Path:
    env = os.environ.get("LORAMEM_STORE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("loramem")) / "store"


def validate_name(name: str) -> str:
    if not _NAME.match(name or "") or ".." in name:
        raise LoramemError(
            f"invalid memory name {name!r}: use letters, digits, '.', '_' and '-' "
            "(no path separators, no '..', at most 128 characters)"
        )
    return name


class MemoryStore:
    """The catalogue and adapter folders of one store directory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            (self.path / "adapters").mkdir(parents=True, exist_ok=True)
            (self.path / ".staging").mkdir(exist_ok=True)
        except OSError as e:
            raise LoramemError(f"cannot create store at {self.path}: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise LoramemError(f"store {self.path} is not writable; choose another with --store")
        try:
            with self._db() as db:
                db.executescript(_SCHEMA)
                present = {row[1] for row in db.execute("PRAGMA table_info(memories)")}
                for column in _COLUMNS:  # a store made by an older version gains the new columns
                    if column not in present:
                        db.execute(f"ALTER TABLE memories ADD COLUMN {column}")
                        db.execute(f"UPDATE memories SET {column} = ?", (MemoryRecord.column_default(column),))
        except sqlite3.DatabaseError as e:
            raise LoramemError(f"cannot open catalogue in {self.path}: {e}") from None
        self._collect_garbage()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path / "catalogue.sqlite", timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def _collect_garbage(self) -> None:
        """Remove what killed writes left: staging folders of dead processes, unlisted adapters.

        Another process may be writing right now, so a staging folder is removed only when the
        process named in it is gone, and an unlisted adapter folder only once it is old enough
        that no commit can still be between its rename and its transaction.
        """
        for entry in (self.path / ".staging").iterdir():
            pid = entry.name.split("-", 1)[0]
            if not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(entry, ignore_errors=True)
        with self._db() as db:
            listed = {row[0] for row in db.execute("SELECT folder FROM memories")}
        now = time.time()
        for entry in (self.path / "adapters").iterdir():
            if f"adapters/{entry.name}" not in listed and now - entry.stat().st_mtime > ORPHAN_AGE_S:
                shutil.rmtree(entry, ignore_errors=True)

    # -- reading -----------------------------------------------------------------------------
    def list(self) -> list[MemoryRecord]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM memories ORDER BY name").fetchall()
        return [MemoryRecord.from_row(dict(r)) for r in rows]

    def get(self, name: str) -> MemoryRecord:
        with self._db() as db:
            row = db.execute("SELECT * FROM memories WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r.name for r in self.list()]
            hint = f"; the store holds: {', '.join(known)}" if known else "; the store is empty"
            raise UnknownMemoryError(f"no memory named {name!r} in {self.path}{hint}")
        return MemoryRecord.from_row(dict(row))

    def exists(self, name: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM memories WHERE name = ?", (name,)).fetchone() is not None

    def generation(self) -> int:
        """Changes whenever a memory is added, replaced or removed (routers rebuild their indexes)."""
        with self._db() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]

    def count(self, collection: str | None = None) -> int:
        with self._db() as db:
            if collection is None:
                return db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM memories WHERE collection = ?", (collection,)).fetchone()[0]

    def names(self, collection: str | None = None) -> list[str]:
        with self._db() as db:
            if collection is None:
                return [r[0] for r in db.execute("SELECT name FROM memories ORDER BY name")]
            return [r[0] for r in db.execute("SELECT name FROM memories WHERE collection = ? ORDER BY name",
                                             (collection,))]

    def documents(self) -> list[tuple[str, str]]:
        """(name, source text) of every memory, for text routers."""
        with self._db() as db:
            return [(r[0], r[1]) for r in db.execute("SELECT name, document FROM memories ORDER BY name")]

    def embeddings(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Routing embeddings (rows, dim) float16 by memory name; memories without one are absent."""
        with self._db() as db:
            rows = db.execute("SELECT name, rows, dim, vectors FROM embeddings").fetchall()
        wanted = set(names) if names is not None else None
        return {r["name"]: np.frombuffer(r["vectors"], dtype=np.float16).reshape(r["rows"], r["dim"])
                for r in rows if wanted is None or r["name"] in wanted}

    def adapter_path(self, record: MemoryRecord) -> Path:
        return self.path / record.folder

    # -- writing -----------------------------------------------------------------------------
    def check_writable_name(self, name: str, replace: bool) -> None:
        validate_name(name)
        if self.exists(name) and not replace:
            raise LoramemError(f"a memory named {name!r} already exists; pass --replace to overwrite it")

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder to save an adapter into; removed unless committed."""
        folder = self.path / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staged: Path, record: MemoryRecord, replace: bool = False,
               embedding: np.ndarray | None = None) -> MemoryRecord:
        """Move a staged adapter folder into the store and list it (with its routing embedding), atomically."""
        for required in ("adapter_config.json", "adapter_model.safetensors"):
            if not (staged / required).is_file():
                raise LoramemError(f"adapter folder is missing {required}; nothing was stored")
        folder = f"adapters/{uuid.uuid4().hex}"
        os.rename(staged, self.path / folder)
        record.folder = folder
        old = None
        try:
            with self._db() as db:
                row = db.execute("SELECT folder FROM memories WHERE name = ?", (record.name,)).fetchone()
                if row is not None and not replace:
                    raise LoramemError(f"a memory named {record.name!r} already exists; pass --replace")
                old = row["folder"] if row is not None else None
                db.execute("DELETE FROM memories WHERE name = ?", (record.name,))
                db.execute("DELETE FROM embeddings WHERE name = ?", (record.name,))
                if embedding is not None:
                    db.execute(_INSERT_EMBEDDING, _embedding_row(record.name, embedding))
                db.execute(_INSERT, [record.to_row()[c] for c in _COLUMNS])
                db.execute(_BUMP)
        except BaseException:
            shutil.rmtree(self.path / folder, ignore_errors=True)
            raise
        if old:
            shutil.rmtree(self.path / old, ignore_errors=True)
        return record

    def add_index_only(self, entries: Sequence[tuple[MemoryRecord, np.ndarray | None]]) -> None:
        """List memories that have no adapter folder, with their routing embeddings, in one transaction.

        Routers read only the catalogue, so router benchmarks index many memories this way in seconds
        instead of training each; asking such a memory fails, as its adapter is absent.
        """
        with self._db() as db:
            db.executemany(_INSERT, [[record.to_row()[c] for c in _COLUMNS] for record, _ in entries])
            db.executemany(_INSERT_EMBEDDING, [_embedding_row(record.name, v) for record, v in entries
                                               if v is not None])
            db.execute(_BUMP)

    def remove(self, name: str) -> MemoryRecord:
        record = self.get(name)
        with self._db() as db:
            db.execute("DELETE FROM memories WHERE name = ?", (name,))
            db.execute("DELETE FROM embeddings WHERE name = ?", (name,))
            db.execute(_BUMP)
        shutil.rmtree(self.path / record.folder, ignore_errors=True)
        return record
