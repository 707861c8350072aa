"""Rebuilding a lost catalogue (see `lost.py`) from the folders.

`loramem recover` rebuilds the catalogue from each folder's `listings.jsonl` (written at every commit,
removal, rollback and gc; see `folders.py`): every version whose line is its latest word and that
no later removal or gc dropped comes back with its record and routing embedding, and a memory's
latest rollback (or else its newest version) is current again. A folder written before folders
kept listings comes back as `recovered-<hash>`, rebuilt from its adapter config, supervision and
documents.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loramem.errors import LoramemError
from loramem.store.folders import LISTINGS_FILE
from loramem.store.lost import CATALOGUE, adapter_folders, catalogue_state
from loramem.store.records import MemoryRecord


@dataclass
class Recovered:
    """What `recover` listed again."""

    memories: list[str] = field(default_factory=list)
    versions: int = 0
    legacy: list[str] = field(default_factory=list)  # folders without listings, listed as recovered-<hash>
    set_aside: str | None = None  # where an unreadable old catalogue was moved


def _read_listings(folder: Path) -> list[dict]:
    try:
        lines = (folder / LISTINGS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return entries


def _legacy_record(folder: Path) -> MemoryRecord:
    """A record for a folder from before listings, from what the folder holds."""
    from loramem.supervision.stored import load_documents, load_supervision

    config = json.loads((folder / "adapter_config.json").read_text())
    stored = load_supervision(folder) if (folder / "supervision.jsonl").is_file() else []
    documents = load_documents(folder)
    return MemoryRecord(
        name=f"recovered-{folder.name[:12]}", folder=f"adapters/{folder.name}", source_hash="",
        sources=sorted(documents) or sorted({s.origin for s in stored}), base_model=config.get("base_model_name_or_path") or "",
        base_fingerprint="", rank=int(config.get("r", 0)), formats=sorted({s.example.kind for s in stored}),
        examples=len(stored), tokens=0, parameters=0, recall=0.0,
        created=datetime.now(UTC).isoformat(timespec="seconds"), document="\n\n".join(documents.values()),
        config={"recovered": "from the adapter folder alone; rewrite it to measure its recall"})


def _survivors(entries: list[dict]) -> tuple[dict[tuple[str, int], dict], dict[str, int]]:
    """The listed versions that no later removal or gc dropped, and each memory's latest rollback."""
    listed: dict[tuple[str, int], dict] = {}
    removed: dict[str, float] = {}
    dropped: dict[tuple[str, int], float] = {}
    current: dict[str, tuple[float, int]] = {}
    for e in entries:
        key, at = (e.get("name"), e.get("version")), e.get("at", 0.0)
        if e.get("event") == "listed" and at >= listed.get(key, {}).get("at", -1.0):
            listed[key] = e
        elif e.get("event") == "removed":
            removed[e["name"]] = max(at, removed.get(e["name"], 0.0))
        elif e.get("event") == "dropped":
            dropped[key] = max(at, dropped.get(key, 0.0))
        elif e.get("event") == "current" and at >= current.get(e["name"], (-1.0, 0))[0]:
            current[e["name"]] = (at, e["version"])
    alive = {k: e for k, e in listed.items() if e["at"] > max(removed.get(k[0], -1.0), dropped.get(k, -1.0))}
    newest = {}
    for (name, number), e in alive.items():
        if number > newest.get(name, (0, -1.0))[0]:
            newest[name] = (number, e["at"])
    chosen = {}
    for name, (number, at) in newest.items():
        rolled = current.get(name)
        chosen[name] = rolled[1] if rolled and rolled[0] > at and (name, rolled[1]) in alive else number
    return alive, chosen


def recover(store_path: Path) -> Recovered:
    """Rebuild the catalogue of `store_path` from its folders' listings (see the module note).

    A missing, empty or new catalogue is rebuilt whole; an unreadable one is set aside first. A
    readable catalogue keeps what it lists and gains the versions of folders it does not know.
    """
    from loramem.store import versions as v
    from loramem.store.catalogue import make_current
    from loramem.store.store import MemoryStore

    report = Recovered()
    catalogue = store_path / CATALOGUE
    if catalogue.is_file() and catalogue.stat().st_size and catalogue_state(store_path) is None:
        try:
            MemoryStore(store_path, check=False).list()
        except LoramemError:
            report.set_aside = str(catalogue.with_name(f"{CATALOGUE}.unreadable-{int(time.time())}"))
            catalogue.rename(report.set_aside)
    store = MemoryStore(store_path, check=False)
    with store._write() as db:
        known = {json.loads(r[0])["folder"] for r in db.execute("SELECT record FROM versions")}
        taken = {r[0] for r in db.execute("SELECT name FROM memories")}
        entries, legacy = [], []
        for folder in adapter_folders(store_path):
            if f"adapters/{folder.name}" in known:
                continue
            lines = _read_listings(folder)
            entries += lines
            if not any(e.get("event") == "listed" for e in lines) and (folder / "adapter_config.json").is_file():
                legacy.append(_legacy_record(folder))
        alive, chosen = _survivors(entries)
        for (name, number), e in sorted(alive.items()):
            if name in taken or db.execute("SELECT 1 FROM versions WHERE name = ? AND version = ?",
                                           (name, number)).fetchone():
                continue  # the catalogue already has this memory: what it says stands
            record = MemoryRecord.from_row(e["record"])
            emb = e.get("embedding")
            emb_row = (name, emb["rows"], emb["dim"], base64.b64decode(emb["float16"]), emb.get("items")) if emb else None
            v.insert_version(db, record, e.get("parent"), {**(e.get("change") or {}), "recovered": True}, emb_row)
            report.versions += 1
            if chosen.get(name) == number:
                make_current(db, record.to_row(), emb_row)
                report.memories.append(name)
        for record in legacy:
            if record.name in taken:
                continue
            make_current(db, record.to_row(), None)
            v.insert_version(db, record, None, {"kind": "write", "recovered": True}, None)
            report.legacy.append(record.name)
    return report
