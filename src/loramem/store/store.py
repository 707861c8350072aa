"""A folder holding `catalogue.sqlite` and `adapters/<content hash>/` PEFT folders.

Crash safety: an adapter is saved into `.staging/`, pinned in the catalogue, renamed into
`adapters/` (atomic on one file system), and only then listed by a committed SQLite transaction.
A write killed at any moment leaves at worst a pinned, unlisted folder, which the next open
removes (`folders.py` orders commits and deletions under the catalogue's lock). Every write and
update adds a version (see `versions.py`); the folders of older versions stay until `gc`, and a
removed memory is unlisted first and its folders deleted after.

Nothing the catalogue never knew is deleted, and a store whose `adapters/` holds folders but
whose catalogue is missing, empty or new is refused rather than opened as an empty store:
`loramem recover` rebuilds the catalogue from the folders (`recover.py`). A store in a folder
this process cannot write opens read-only: it can be listed and asked, not changed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from loramem.errors import LoramemError, UnknownMemoryError
from loramem.store import folders as f_
from loramem.store import versions as v
from loramem.store.catalogue import (
    BUMP,
    COLUMNS,
    INDEXES,
    INSERT,
    INSERT_EMBEDDING,
    SCHEMA,
    add_column,
    embedding_row,
    make_current,
    stored_vectors,
)
from loramem.store.lost import refuse_lost_catalogue
from loramem.store.names import default_store_path, validate_name
from loramem.store.records import MemoryRecord
from loramem.store.versions import Version, split_pinned

if TYPE_CHECKING:
    from loramem.routing.index import MemoryIndex

class MemoryStore:
    """The catalogue and adapter folders of one store directory."""

    def __init__(self, path: str | Path | None = None, *, check: bool = True) -> None:
        """Open (or create) the store at `path`; `check=False` skips the lost-catalogue check (for `recover`)."""
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = self.path.is_dir() and not os.access(self.path, os.W_OK)
        if check:
            refuse_lost_catalogue(self.path)
        if self.readonly:
            if not (self.path / "catalogue.sqlite").is_file():
                raise LoramemError(f"store {self.path} is read-only and has no catalogue; choose another with --store")
            return
        try:
            (self.path / "adapters").mkdir(parents=True, exist_ok=True)
            (self.path / ".staging").mkdir(exist_ok=True)
        except OSError as e:
            raise LoramemError(f"cannot create store at {self.path}: {e.strerror}") from None
        try:
            with self._write() as db:
                db.executescript(SCHEMA)
                present = {row[1] for row in db.execute("PRAGMA table_info(memories)")}
                for column in COLUMNS:  # a store made by an older version gains the new columns
                    if column not in present:
                        db.execute(f"ALTER TABLE memories ADD COLUMN {column}")
                        db.execute(f"UPDATE memories SET {column} = ?", (MemoryRecord.column_default(column),))
                db.executescript(INDEXES)
                db.executescript(v.SCHEMA + f_.SCHEMA)
                add_column(db, "embeddings", "items TEXT")  # stores from before routing indexes kept texts
                add_column(db, "versions", "emb_items TEXT")
                v.migrate(db)
        except sqlite3.DatabaseError as e:
            raise LoramemError(f"cannot open catalogue in {self.path}: {e}") from None
        self._collect_garbage()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        catalogue = self.path / "catalogue.sqlite"
        if self.readonly:
            db = sqlite3.connect(f"{catalogue.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        else:
            db = sqlite3.connect(catalogue, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the catalogue's write lock from its first statement.

        A deferred transaction that reads before it writes can fail to upgrade its lock when
        another writer got there first; BEGIN IMMEDIATE waits (up to the timeout) instead.
        """
        self.check_writable()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            yield db

    def _collect_garbage(self) -> None:
        """Remove what killed writes left: staging folders of dead processes, folders their pins held.

        Another process may be writing right now, so a staging folder is removed only when the
        process named in it is gone, and an adapter folder only when no version lists it and no
        live commit pins it (see `folders.py`). A folder the catalogue never knew stays.
        """
        for entry in (self.path / ".staging").iterdir():
            pid = entry.name.split("-", 1)[0]
            if not (pid.isdigit() and f_.owner_alive(pid)):
                shutil.rmtree(entry, ignore_errors=True)
        with self._db() as db:
            pins = db.execute("SELECT owner FROM pins").fetchall()
            queued = db.execute("SELECT 1 FROM collect LIMIT 1").fetchone()
        if queued or any(not f_.owner_alive(row[0]) for row in pins):
            f_.collect(self.path, self._write)
        else:
            f_.empty_trash(self.path)

    # -- reading -----------------------------------------------------------------------------
    def list(self) -> list[MemoryRecord]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM memories ORDER BY name").fetchall()
        return [MemoryRecord.from_row(dict(r)) for r in rows]

    def get(self, name: str) -> MemoryRecord:
        """The current version of memory `name`, or the version pinned by `name@N`."""
        name, pinned = split_pinned(name)
        if pinned is not None:
            return self.version(name, pinned).record
        with self._db() as db:
            row = db.execute("SELECT * FROM memories WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r.name for r in self.list()]
            hint = f"; the store holds: {', '.join(known)}" if known else "; the store is empty"
            raise UnknownMemoryError(f"no memory named {name!r} in {self.path}{hint}")
        return MemoryRecord.from_row(dict(row))

    def versions(self, name: str) -> list[Version]:
        """Every version of memory `name` still kept, oldest first."""
        current = self.get(name).version
        with self._db() as db:
            rows = db.execute("SELECT * FROM versions WHERE name = ? ORDER BY version", (name,)).fetchall()
        return [v.read_version(row, current) for row in rows]

    def version(self, name: str, number: int) -> Version:
        current = self.get(name).version
        with self._db() as db:
            row = None
            if abs(number) <= v.MAX_VERSION:  # a larger number is no version (and an OverflowError to SQLite)
                row = db.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, number)).fetchone()
            if row is None:
                known = [r[0] for r in db.execute("SELECT version FROM versions WHERE name = ? ORDER BY version",
                                                  (name,))]
                raise v.unknown_version(name, number, known)
        return v.read_version(row, current)

    def exists(self, name: str) -> bool:
        """Whether memory `name` (or, for `name@N`, that version of it) is in the store."""
        name, pinned = split_pinned(name)
        if pinned is not None and pinned > v.MAX_VERSION:
            return False
        with self._db() as db:
            if pinned is not None:
                return db.execute("SELECT 1 FROM versions WHERE name = ? AND version = ? AND "
                                  "EXISTS (SELECT 1 FROM memories WHERE name = ?)", (name, pinned, name)).fetchone() is not None
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
            if names is None:
                rows = db.execute("SELECT name, rows, dim, vectors FROM embeddings").fetchall()
            else:  # a few: read only theirs (an ask reads one memory's rows from a catalogue of thousands)
                rows = [r for n in dict.fromkeys(names)
                        for r in db.execute("SELECT name, rows, dim, vectors FROM embeddings WHERE name = ?", (n,))]
        return {r["name"]: stored_vectors(r["rows"], r["dim"], r["vectors"]) for r in rows}

    def index_items(self) -> dict[str, list[tuple[str, str]]]:
        """Each memory's routing index items, (kind, text) in the order of its embedding's rows;
        a memory indexed before items were kept is absent (text routers read its document)."""
        with self._db() as db:
            rows = db.execute("SELECT name, items FROM embeddings WHERE items IS NOT NULL").fetchall()
        return {r["name"]: [tuple(item) for item in json.loads(r["items"])] for r in rows}

    def version_embedding(self, name: str, version: int) -> np.ndarray | None:
        """The routing embedding (rows, dim) float16 that version `version` of memory `name` was listed with."""
        with self._db() as db:
            row = db.execute("SELECT emb_rows, emb_dim, emb_vectors FROM versions WHERE name = ? AND version = ?",
                             (name, version)).fetchone()
        if row is None or row[2] is None:
            return None
        return stored_vectors(*row)

    def adapter_path(self, record: MemoryRecord) -> Path:
        return self.path / record.folder

    # -- writing -----------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise unless this process may change the store (before any training is spent on a change)."""
        if self.readonly:
            raise LoramemError(f"store {self.path} is read-only (this user cannot write its folder): it can be "
                               "listed and asked, not changed; choose another with --store")

    def check_writable_name(self, name: str, replace: bool) -> None:
        self.check_writable()
        validate_name(name)
        if self.exists(name) and not replace:
            raise LoramemError(f"a memory named {name!r} already exists; pass --replace to overwrite it")

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder to save an adapter into; removed unless committed."""
        self.check_writable()
        folder = self.path / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staged: Path, record: MemoryRecord, replace: bool = False,
               index: MemoryIndex | None = None, parent: int | None = None,
               change: dict | None = None) -> MemoryRecord:
        """Move a staged adapter folder into the store and list it as the memory's next version, atomically.

        `parent` is the version an update started from: the commit is refused if another writer
        made a newer version meanwhile. Without it, an existing memory is rewritten only with
        `replace`. `change` says what the version changed, for `loramem log`. `index` is what
        routers will know of it (`loramem.routing.index.memory_index`).
        """
        for required in ("adapter_config.json", "adapter_model.safetensors"):
            if not (staged / required).is_file():
                raise LoramemError(f"adapter folder is missing {required}; nothing was stored")
        folder = f"adapters/{v.content_hash(staged)}"
        with self._write() as db:  # pinned first: no gc or rm can take the folder from here on
            token = f_.pin(db, folder)
        try:
            self._place(staged, self.path / folder)
            record.folder = folder
            with self._write() as db:
                row = db.execute("SELECT version FROM memories WHERE name = ?", (record.name,)).fetchone()
                if parent is not None:
                    if row is None or row["version"] != parent:
                        now = "was removed" if row is None else f"is at version {row['version']}"
                        raise LoramemError(f"memory {record.name!r} {now} since this update started from version "
                                           f"{parent}; nothing was changed, run the update again")
                elif row is not None and not replace:
                    raise LoramemError(f"a memory named {record.name!r} already exists; pass --replace")
                record.version = v.next_version(db, record.name)
                kind = "update" if parent is not None else ("rewrite" if row is not None else "write")
                emb = embedding_row(record.name, index) if index is not None else None
                row = record.to_row()
                make_current(db, row, emb)
                change = {"kind": kind, **(change or {})}
                v.insert_version(db, record, parent, change, emb)
                db.execute("DELETE FROM pins WHERE token = ?", (token,))
        except BaseException:
            with self._write() as db:  # unpinned and queued: deleted unless another version lists it
                db.execute("DELETE FROM pins WHERE token = ?", (token,))
                f_.queue(db, {folder})
            f_.collect(self.path, self._write)
            raise
        f_.note(self.path / folder, f_.listing(row, parent, change, emb))
        return record

    @staticmethod
    def _place(staged: Path, target: Path) -> None:
        """Rename `staged` to `target`, or drop it when `target` (the same content) is already there."""
        if target.exists():
            shutil.rmtree(staged, ignore_errors=True)  # the same content: one folder serves both versions
            return
        try:
            os.rename(staged, target)
        except OSError:
            if not target.exists():  # not another commit of the same content winning the race
                raise
            shutil.rmtree(staged, ignore_errors=True)

    def rollback(self, name: str, number: int) -> MemoryRecord:
        """Make version `number` of memory `name` its current version again (no version is deleted)."""
        target = self.version(name, number)
        record = target.record
        with self._write() as db:
            row = db.execute("SELECT emb_rows, emb_dim, emb_vectors, emb_items FROM versions "
                             "WHERE name = ? AND version = ?", (name, number)).fetchone()
            if row is None:
                raise v.unknown_version(name, number, [])
            emb = (name, *row) if row["emb_vectors"] is not None else None
            make_current(db, record.to_row(), emb)
        if (self.path / record.folder).is_dir():
            f_.note(self.path / record.folder, {"event": "current", "name": name, "version": number})
        return record

    def gc(self, name: str | None = None, keep: int = 0) -> tuple[int, int]:
        """Drop the versions of memory `name` (or of every memory) but the current one and the `keep`
        newest others, and delete the folders no kept version uses. Returns (versions, folders) removed."""
        if keep < 0:
            raise LoramemError(f"gc --keep takes a number of versions >= 0, got {keep}")
        names = [self.get(name).name] if name is not None else self.names()
        dropped: list[tuple[str, int, str]] = []
        with self._write() as db:
            for n in names:
                current = db.execute("SELECT version FROM memories WHERE name = ?", (n,)).fetchone()
                if current is None:  # removed since `names` was read
                    continue
                rows = db.execute("SELECT version, record FROM versions WHERE name = ? AND version != ? "
                                  "ORDER BY version DESC", (n, current["version"])).fetchall()
                for row in rows[keep:]:
                    db.execute("DELETE FROM versions WHERE name = ? AND version = ?", (n, row["version"]))
                    dropped.append((n, row["version"], json.loads(row["record"])["folder"]))
            f_.queue(db, {folder for _, _, folder in dropped})
        removed = f_.collect(self.path, self._write)
        for n, number, folder in dropped:
            if (self.path / folder).is_dir():  # still used by a kept version: recover must not bring this one back
                f_.note(self.path / folder, {"event": "dropped", "name": n, "version": number})
        return len(dropped), removed

    def add_index_only(self, entries: Sequence[tuple[MemoryRecord, MemoryIndex | None]]) -> None:
        """List memories that have no adapter folder, with their routing indexes, in one transaction.

        Routers read only the catalogue, so router benchmarks index many memories this way in seconds
        instead of training each; asking such a memory fails, as its adapter is absent.
        """
        with self._write() as db:
            db.executemany(INSERT, [[record.to_row()[c] for c in COLUMNS] for record, _ in entries])
            embeddings = {record.name: embedding_row(record.name, e) for record, e in entries if e is not None}
            db.executemany(INSERT_EMBEDDING, list(embeddings.values()))
            for record, _ in entries:
                v.insert_version(db, record, None, {"kind": "write", "index_only": True}, embeddings.get(record.name))
            db.execute(BUMP)

    def remove(self, name: str) -> MemoryRecord:
        """Unlist memory `name` with all its versions, then delete the folders no other memory uses."""
        record = self.get(name)
        with self._write() as db:
            folders = {json.loads(r[0])["folder"] for r in db.execute("SELECT record FROM versions WHERE name = ?",
                                                                      (name,))} | {record.folder}
            db.execute("DELETE FROM memories WHERE name = ?", (name,))
            db.execute("DELETE FROM embeddings WHERE name = ?", (name,))
            db.execute("DELETE FROM versions WHERE name = ?", (name,))
            db.execute(BUMP)
            f_.queue(db, folders)
        f_.collect(self.path, self._write)
        for folder in folders:
            if folder and (self.path / folder).is_dir():  # shared with another memory
                f_.note(self.path / folder, {"event": "removed", "name": name})
        return record
