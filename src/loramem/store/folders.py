"""How adapter folders enter and leave a store without racing each other, and what they keep of it.

A folder's name is the hash of its content, so identical versions share one folder (`write
--replace` of the same inputs and seed, an update that changes nothing, a second name for the same
data). A commit may therefore reuse a folder that a `gc` or `rm` in another process is about to
delete. The catalogue orders the two:

* a commit first *pins* the folder (a `pins` row, committed on its own) and only then looks for it
  on disk, reuses it or renames its own copy in, lists it, and drops the pin;
* a folder is deleted only inside a transaction that holds SQLite's write lock (BEGIN IMMEDIATE):
  when no version lists it and no commit pins it, it is renamed into `.trash/` (atomic) before the
  lock is released, and the trash is emptied after.

So a pinned folder is never moved away, and a folder moved away before a commit pinned it is seen
missing by that commit, which renames its own copy in. The folders to delete are queued
(`collect` rows) by the same transaction that unlists them, and the pins of commits whose process
died are queued the same way, so the next open finishes what a crash interrupted. A folder that the
catalogue never knew (never pinned, never listed) is never deleted.

Each folder also keeps `listings.jsonl`: a line for every version listed with it (its catalogue
row and routing embedding) and for every removal, rollback and dropped version, so `loramem
recover` can rebuild a lost catalogue from the folders alone (`recover.py`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import time
import uuid
import warnings
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (token TEXT PRIMARY KEY, folder TEXT, owner TEXT, started REAL);
CREATE TABLE IF NOT EXISTS collect (folder TEXT PRIMARY KEY);
"""
LISTINGS_FILE = "listings.jsonl"
TRASH = ".trash"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which a reused pid does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat(5), counted after the command name


def this_process() -> str:
    """An owner key for the pins this process takes: pid and start time."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid) or ''}"


def owner_alive(owner: str) -> bool:
    pid_text, _, started = owner.partition(":")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _start_time(pid) in (None, started)


def listed_folders(db: sqlite3.Connection) -> set[str]:
    """Adapter folders that some kept version (or an index-only entry) names."""
    return ({row[0] for row in db.execute("SELECT folder FROM memories")}
            | {json.loads(row[0])["folder"] for row in db.execute("SELECT record FROM versions")})


def pin(db: sqlite3.Connection, folder: str) -> str:
    """Pin `folder` for a commit under way (run in a write transaction); returns the pin's token."""
    token = uuid.uuid4().hex
    db.execute("INSERT INTO pins VALUES (?, ?, ?, ?)", (token, folder, this_process(), time.time()))
    return token


def queue(db: sqlite3.Connection, folders: set[str]) -> None:
    """Queue folders for deletion once nothing lists or pins them (run in the unlisting transaction)."""
    db.executemany("INSERT OR IGNORE INTO collect VALUES (?)", [(f,) for f in folders if f])


def collect(store: Path, write) -> int:
    """Delete the queued folders that no version lists and no commit pins; returns how many.

    `write` opens a transaction holding the write lock. Pins of dead processes are queued first.
    """
    trash = store / TRASH
    moved = []
    with write() as db:
        for token, folder, owner in db.execute("SELECT token, folder, owner FROM pins").fetchall():
            if not owner_alive(owner):
                db.execute("DELETE FROM pins WHERE token = ?", (token,))
                queue(db, {folder})
        queued = [row[0] for row in db.execute("SELECT folder FROM collect")]
        if queued:
            keep = listed_folders(db) | {row[0] for row in db.execute("SELECT folder FROM pins")}
            trash.mkdir(exist_ok=True)
            for folder in queued:
                path = store / folder
                if folder not in keep and path.exists():
                    target = trash / f"{path.name}-{uuid.uuid4().hex[:8]}"
                    path.rename(target)  # under the lock: no commit can pin it meanwhile
                    moved.append(target)
            db.execute("DELETE FROM collect")
    empty_trash(store)
    return len(moved)


def empty_trash(store: Path) -> None:
    """Delete what `collect` moved aside (everything in `.trash/` is unlisted and unpinned)."""
    trash = store / TRASH
    if trash.is_dir():
        for entry in trash.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


def note(folder: Path, entry: dict) -> None:
    """Append one line to the folder's listings (see `recover.py`). The catalogue stays the truth:
    a line that cannot be written only weakens a later recovery, so it warns instead of failing."""
    line = json.dumps({**entry, "at": time.time()}, ensure_ascii=False) + "\n"
    try:
        with (folder / LISTINGS_FILE).open("a", encoding="utf-8") as f:
            f.write(line)
    except FileNotFoundError:  # the folder was collected meanwhile: nothing left to recover from it
        pass
    except OSError as e:
        warnings.warn(f"could not note {entry.get('event')} in {folder / LISTINGS_FILE}: {e.strerror}", stacklevel=2)


def listing(record_row: dict, parent: int | None, change: dict, embedding_row: tuple | None) -> dict:
    """The listings line of a listed version: its catalogue row and its routing index (base64 float16 rows, items as JSON)."""
    emb = None
    if embedding_row is not None:
        _, rows, dim, blob, items = embedding_row
        emb = {"rows": rows, "dim": dim, "float16": base64.b64encode(blob).decode(), "items": items}
    return {"event": "listed", "name": record_row["name"], "version": record_row["version"], "parent": parent,
            "change": change, "record": record_row, "embedding": emb}
