"""A lost catalogue: a store whose `adapters/` holds folders but whose `catalogue.sqlite` is
missing, empty or new (never listed anything, pins nothing) is refused by every command: opened as
it was, it would look empty, and a later write would list new memories over folders nothing names.
`loramem recover` (`recover.py`) rebuilds it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loramem.errors import LoramemError

CATALOGUE = "catalogue.sqlite"


def adapter_folders(path: Path) -> list[Path]:
    adapters = path / "adapters"
    return sorted(p for p in adapters.iterdir() if p.is_dir()) if adapters.is_dir() else []


def catalogue_state(path: Path) -> str | None:
    """Why the catalogue at `path` cannot account for any folder ('missing', 'empty', 'new'), or None."""
    catalogue = path / CATALOGUE
    if not catalogue.is_file():
        return "missing"
    if catalogue.stat().st_size == 0:
        return "empty"
    try:
        db = sqlite3.connect(f"{catalogue.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "memories" not in tables:
                return "empty"
            used = [db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("memories", "versions", "pins")
                    if t in tables]
            generation = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone() \
                if "meta" in tables else None
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None  # not ours to judge: opening it says what is wrong
    return None if any(used) or (generation and generation[0]) else "new"


def refuse_lost_catalogue(path: Path) -> None:
    """Raise unless `path`'s catalogue can account for the adapter folders it holds."""
    folders = adapter_folders(path)
    state = catalogue_state(path) if folders else None
    if state is not None:
        raise LoramemError(f"store {path} holds {len(folders)} adapter folders but its catalogue is {state}; "
                           f"nothing was changed: run `loramem recover --store {path}` to rebuild it from them")
