"""Generated supervision on disk, keyed by (chunk hash, format, count, generator, prompt version, seed).

Generating QA with a model is the slow part of writing a document; a rerun (another rank,
another objective, a crashed write) reads the cache and costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from loramem.supervision.examples import Example
from loramem.supervision.formats.base import Made


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


class SupervisionCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> Made | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
            return Made([Example(**e) for e in data["examples"]], data.get("note", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: generate again

    def put(self, key: str, made: Made) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"examples": [e.to_dict() for e in made.examples], "note": made.note}))
        os.replace(tmp, path)  # atomic: a reader sees the old entry or the whole new one
